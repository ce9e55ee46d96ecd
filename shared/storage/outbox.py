"""The outbox: events written in the transaction of the state change that caused them.

The relay (shared/messaging/relay.py) publishes committed rows; a commit hands its rows to it
directly (handoff.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Integer, LargeBinary, MetaData, String, Table, insert

from shared.storage.columns import JSONText, UTCDateTime
from shared.storage.fastpath.declare import hot_once
from shared.storage.indexes import partial_index


def outbox_table(metadata: MetaData) -> Table:
    outbox = Table(
        "outbox",
        metadata,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("message_id", String(64), nullable=False, unique=True),
        Column("op", String(16), nullable=False, default="publish"),  # publish | cancel_timer
        Column("subject", String(255), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", JSONText, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("sent_at", UTCDateTime, nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
    )
    partial_index("ix_outbox_unsent", outbox.c.seq, where=outbox.c.sent_at.is_(None))
    return outbox


def outbox_insert(outbox: Table) -> Any:
    """The commit's one statement for its outbox rows, built once per table. Rows of a multi-row
    INSERT … RETURNING come in no promised order: the caller matches them by message id."""
    return hot_once(("outbox insert", outbox), lambda: insert(outbox).returning(outbox.c.seq, outbox.c.message_id))


class OutboxWrites:
    """The unit of work's outbox side: events queued in the transaction, written at its commit."""

    cause: Any
    db: Any  # the Database (its sealer seals personal fields)
    producer: str
    now: Callable[[], datetime]
    _messages: list[dict[str, Any]]
    _routed: list[tuple[dict[str, Any], Any]]  # staff-facing events: their subject is routed at commit
    _projecting: list[tuple[Any, Any]]  # (handler, published form): the service's own projections, run at commit

    def envelope(self, model: Any, **payload: Any) -> Any:
        """The event ``model`` with ``payload`` and the envelope filled in: producer (this service),
        case and causation (the request or event being handled), occurred_at (the clock). A field
        given in ``payload`` wins (e.g. a timer's own moment, or the case a new referral opened)."""
        from shared.contracts.base import TRUSTED, field_or_none

        cause = self.cause
        if "case_id" not in payload:
            payload["case_id"] = field_or_none(cause, "case_id")
        if "causation_id" not in payload:
            payload["causation_id"] = field_or_none(cause, "command_id") or field_or_none(cause, "event_id")
        payload.setdefault("occurred_at", self.now())
        payload.setdefault("producer", self.producer)

        return model.model_validate(payload, context=TRUSTED)

    def emit(self, event: Any, /, *, subject: str | None = None, headers: dict[str, str] | None = None, **payload: Any) -> Any:
        """Queue an event to be published after commit (same transaction as the state change).

        ``uow.emit(SomeEvent, field=value, ...)`` builds the event with its envelope filled in
        (:meth:`envelope`); an already built event is queued as it is. Returns the event."""
        from shared.telemetry import inject_context

        if isinstance(event, type):
            event = self.envelope(event, **payload)

        # A version with contact details goes out as its public successor and the notifications
        # service's private copy, in this same transaction (shared/contracts/directory.py).
        forms = [(str(event.event_id), event)] if subject or not hasattr(event, "published") else event.published()
        sealer = self.db.sealer
        for message_id, form in forms:
            hdrs = {"Koolle-Event-Type": form.event_type, "Koolle-Case-Id": str(form.case_id or "")}
            inject_context(hdrs)
            if headers:
                hdrs.update(headers)
            row = {
                "message_id": message_id,
                "op": "publish",
                "subject": subject or form.subject(),
                "payload": form.to_json() if sealer is None else sealer.payload(form),
                "headers": hdrs,
                "created_at": self.now(),
            }
            self._messages.append(row)
            if subject is None and getattr(form, "routed", False):
                self._routed.append((row, form))
            if subject is None:
                self._projecting.extend((handler, form) for handler in self.db.own_projections.get(type(form), ()))
        return event

    def schedule(self, event: Any, *, timer_subject: str, at: datetime, timer_id: str) -> None:
        """A durable timer: ``event`` is emitted once ``at`` has passed (shared/messaging/timers.py:
        never early, stamped with the time it fired).

        ``timer_subject`` (``timers.<service>.<name>``) is the timer's identity: scheduling it again
        replaces it; :meth:`cancel_timer` removes it. ``timer_id`` must be unique per scheduling (it
        is the schedule message's id).
        """
        from shared.messaging.timers import schedule_headers

        self.emit(event, subject=timer_subject, headers=schedule_headers(event, timer_subject, at))
        self._messages[-1]["message_id"] = timer_id

    def cancel_timer(self, timer_subject: str, cancel_id: str) -> None:
        self._messages.append(
            {
                "message_id": cancel_id,
                "op": "cancel_timer",
                "subject": timer_subject,
                "payload": b"",
                "headers": {},
                "created_at": self.now(),
            }
        )
