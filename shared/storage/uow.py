"""The unit of work: one transaction holding the state change, the events it causes (outbox) and the
events it consumed (inbox).

Its parts, by job: outbox.py (``emit``, ``schedule``), inbox.py (``claim_many``), commandlog.py
(``recall_reply``), statements.py (``insert``, ``row`` …) and fastpath/routing.py (``execute``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts.base import time_ordered_id
from shared.storage.commandlog import CommandReplies
from shared.storage.database import Database
from shared.storage.deferred import Held
from shared.storage.handoff import hand_off
from shared.storage.inbox import InboxClaims
from shared.storage.outbox import OutboxWrites
from shared.storage.statements import TableStatements


class UnitOfWork(OutboxWrites, InboxClaims, CommandReplies, TableStatements):
    """One transaction: the state change, the events it causes (outbox) and the events it consumed (inbox).

    Services subclass it to attach their repositories in :meth:`_attach`.
    """

    producer = ""
    """The service name written into every event's envelope (set by the runtime)."""

    def __init__(self, db: Database, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self.now = clock or (lambda: datetime.now(UTC))
        self.session: AsyncSession
        # What is being handled: the request or the event (the envelope's case and causation come
        # from it) and, for a request, the verified caller. Set by the runtime, never by a handler.
        self.cause: Any = None
        self.principal: Any = None
        self.actor = ""  # who acted, as records name them: a staff id or a guardian's pseudonym
        self._messages: list[dict[str, Any]] = []
        self._routed: list[tuple[dict[str, Any], Any]] = []
        self._projecting: list[tuple[Any, Any]] = []
        self._held = Held()
        self._locked = False
        self._inline: Any = None  # SQLite: the writer's InlineConnection (fast path, BEGIN, COMMIT)
        self._attached: list[str] = []  # what _attach added, dropped again when the transaction ends

    def _attach(self, session: AsyncSession) -> None:  # pragma: no cover - overridden
        """Attach repositories to the session."""

    async def __aenter__(self) -> UnitOfWork:
        if self.db.write_lock is not None:
            await self.db.write_lock.acquire()
            self._locked = True
            try:
                # SQLite: the process's one writer connection, kept open (our writers take turns on
                # the lock anyway); a session and a pool checkout per transaction cost more than a
                # small transaction itself (bench/). It has the AsyncSession methods used here.
                self.session = await self.db.writer()
                # BEGIN IMMEDIATE now, on the driver: SQLAlchemy's begin (events, an execution
                # context for the BEGIN statement) cost ≈ 0.2 ms per transaction at a trickle.
                self._inline = self.db.writer_inline
                await self._inline.begin_immediate()
            except BaseException:
                self._locked = False
                self.db.write_lock.release()
                raise
        else:
            self.session = self.db.sessionmaker()
            await self.session.begin()
        self._messages = []
        self._routed = []
        self._projecting = []
        self._held = Held()
        self._after_commit: list[Callable[[], None]] = []
        before = set(self.__dict__)
        self._attach(self.session)
        self._attached = [name for name in self.__dict__ if name not in before]
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if self._inline is not None:
                try:
                    await self._end(commit=False)
                except BaseException:
                    await self.db.drop_writer()  # a broken connection: the next transaction opens a new one
                    raise
            else:
                await self._end(commit=False)
                await self.session.close()
        finally:
            if self._locked:
                self._locked = False
                assert self.db.write_lock is not None
                self.db.write_lock.release()
            self._detach()

    def _detach(self) -> None:
        """Drop what :meth:`_attach` attached. The repositories refer back to this unit of work, and
        that cycle left every finished batch (its events, screenings, held rows) to the cyclic
        garbage collector: ≈ 29,000 objects every 3 s in the intake under load (bench/README.md,
        nineteenth session). Without it, reference counting frees them when the transaction ends."""
        for name in self._attached:
            self.__dict__.pop(name, None)
        self._attached = []

    async def _end(self, commit: bool) -> None:
        """End the transaction: through the session when it has one (PostgreSQL, or a SQLAlchemy
        statement joined SQLite's), else on SQLite's driver, where it was begun."""
        if self.session.in_transaction():
            await (self.session.commit() if commit else self.session.rollback())
        elif self._inline is not None and self._inline.in_transaction:
            await (self._inline.commit() if commit else self._inline.rollback())

    async def commit(self) -> None:
        seqs: list[int] = []
        # The service's projections of the events it emitted, in this transaction and in emit order
        # (one may emit again: run until none is left).
        done = 0
        while done < len(self._projecting):
            handler, form = self._projecting[done]
            done += 1
            await handler(form, self)
        self._projecting = []
        if self._routed:  # the case's municipality and team go into the subject (shared/messaging/routing.py)
            from shared.messaging.routing import route

            await route(self, self._routed)
            self._routed = []
        sealing = self.db.sealer.complete(self._messages) if self._messages and self.db.sealer is not None else None
        if self._messages:
            # The held writes (deferred.py) go while the keys not yet cached (a new case's: a
            # JetStream write) are fetched or created; the outbox rows go with their last round.
            inserted = await self.send_held_and_insert(self.db.outbox_insert, self._messages, sealing)
            seq_of = {r.message_id: r.seq for r in inserted}
            for message in self._messages:
                message["seq"] = seq_of[message["message_id"]]
            seqs = list(seq_of.values())
            self.db.inflight.update(seqs)
        elif self._held:
            await self.send_held(last=True)
        try:
            await self._end(commit=True)
        finally:
            self.db.inflight.difference_update(seqs)
        if self._messages:
            hand_off(self.db, self._messages)  # no await since the commit (handoff.py)
            self._messages = []
        callbacks, self._after_commit = self._after_commit, []
        for cb in callbacks:
            cb()

    def new_case_id(self) -> UUID:
        """The id of a case this transaction opens: one whose key is made already where the service
        keeps a reserve (shared/key_reserve.py), so that the commit waits for no key-bucket write."""
        reserve = self.db.key_reserve
        return reserve.new_case_id() if reserve is not None else time_ordered_id()

    def case_id_unused(self, case_id: UUID) -> None:
        """``case_id`` (from :meth:`new_case_id`) opened nothing: nothing was stored under it."""
        if self.db.key_reserve is not None:
            self.db.key_reserve.give_back(case_id)

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this transaction has committed (e.g. wake a dispatcher)."""
        self._after_commit.append(callback)

    async def rollback(self) -> None:
        self._messages = []
        self._routed = []
        self._projecting = []
        self._held.clear()
        self._after_commit = []
        await self._end(commit=False)
