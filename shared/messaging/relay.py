"""The outbox relay: publishes committed outbox rows to JetStream and marks them sent after the PubAck.

``Nats-Msg-Id`` is the row's message id, so a publish repeated after a crash (published, not yet
marked) is dropped by JetStream's duplicate window instead of doubling the event; consumers' inboxes
catch what the window no longer covers. Rows are published pipelined, in commit order, and the relay
retries forever with a capped backoff.

A scan's plain events bound for one stream go out as one JetStream *atomic batch* when there are
enough of them (``ATOMIC_BATCH_MIN``): the server stores them with one write (one fsync with
``sync_interval: always``) instead of one per event, which is most of what makes the relay keep up
under load (bench/). A few events (a trickle) go out one by one, pipelined: cheaper than a batch. A batch is all or nothing, and the server refuses a batch
holding an id it has already stored: that is the "published, not yet marked" case after a crash, so
the relay then publishes that batch's rows one by one and JetStream drops the duplicates as before.
Timers (schedules, rollup tombstones) are always published one by one.

Rounds of handed-off rows overlap: the relay publishes a round as soon as rows are handed to it
and does not wait for the previous round's PubAcks first (at most ``ROUNDS_IN_FLIGHT`` waiting).
Waiting had held every event committed meanwhile behind the slowest acknowledgement: at 300
referrals/s, 23 ms at p99 between a commit and its events' publish (bench/README.md,
twenty-second session). Publishes stay in commit order on the connection, as those of one round
always were; only a failed publish, published again later, can land after rows committed after
it, as within a round. A round holding a timer (a schedule or a cancel) waits for every earlier
round to be acknowledged first, so a timer's messages are never reordered by a failure.

Published rows are kept for a while (``keep``, ``KOOLLE_OUTBOX_RETENTION_HOURS``) and then deleted,
hourly, oldest first: the stream holds the events, so the table stays as large as a week of events
instead of growing with every event the service has ever emitted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from nats.js import JetStreamContext
from sqlalchemy import bindparam, delete, func, select, update

from shared.clock import Clock
from shared.faults import crash_point
from shared.internals.natspy import core_client
from shared.messaging.atomic import ATOMIC_BATCH_MAX, ATOMIC_BATCH_MIN, ATOMIC_DISABLED, BatchRefused, publish_atomic
from shared.messaging.streams import stream_of
from shared.storage.database import Database
from shared.storage.fastpath.declare import hot_once
from shared.storage.uow import UnitOfWork

log = logging.getLogger("koolle.outbox")

# How many batches' worth of handed-over rows one relay round publishes at once.
ROUND_BATCHES = 8
# Hand-off rounds published and waiting for their PubAcks at once; the next waits for the oldest.
ROUNDS_IN_FLIGHT = 8
# How often published rows past their retention are deleted, and at most how many per transaction:
# SQLite's writer is shared with the service's own transactions, which go between the rounds
# (200 rows held it ≈ 2.7 ms at p50, 1,000 rows ≈ 26 ms; bench/README.md, twenty-third session).
PURGE_INTERVAL_SECONDS = 3600.0
PURGE_BATCH = 200


def _schedules(row: Any) -> bool:
    """Whether an outbox row schedules a durable timer (shared/messaging/timers.py)."""
    return "Nats-Schedule" in row.headers


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        js: JetStreamContext,
        *,
        batch: int = 500,
        poll_seconds: float = 1.0,
        metrics: object = None,
        atomic: bool = True,
        keep: timedelta | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.atomic = atomic
        self.keep = keep  # how long a published row stays in the table; None: for ever
        self.now = now or Clock().now
        self.metrics = metrics
        self.db = db
        self.js = js
        self.batch = batch
        self.poll_seconds = poll_seconds
        self._stopping = asyncio.Event()
        self.published = 0
        # Published (PubAck received) but not yet marked sent. Marking is batched off the hot path;
        # after a crash these rows are simply published again and JetStream drops the copies.
        self._unmarked: set[int] = set()
        # Every row published by this relay whose "sent" mark may not be visible to the next scan
        # yet (the scan reads a snapshot that can predate the mark). Pruned by the scan itself.
        self._published: set[int] = set()
        # Hand-off rounds waiting for their PubAcks (oldest first), their rows' seqs (which the
        # scan leaves alone), and the first failure of one, raised in the relay's loop.
        self._rounds: list[asyncio.Task[int]] = []
        self._sending: set[int] = set()
        self._round_failed: BaseException | None = None
        self._mark_wanted = asyncio.Event()
        self.mark_delay = 0.25
        self._no_atomic: set[str] = set()  # streams that refuse atomic batches (configured elsewhere)
        outbox = db.outbox
        self._mark_statement = hot_once(
            ("outbox mark", outbox),
            lambda: update(outbox).where(outbox.c.seq.in_(bindparam("seqs", expanding=True))).values(sent_at=bindparam("now")),
        )
        # Oldest first along the primary key, so that no index on sent_at is kept up at every mark:
        # a read finds how far the next round reaches (past the recent rows, at the end, without
        # the writer), and the delete takes that range of the key.
        oldest = select(outbox.c.seq).where(outbox.c.sent_at < bindparam("before")).order_by(outbox.c.seq).limit(bindparam("n"))
        self._purge_reach = select(func.max(oldest.subquery().c.seq))
        self._purge_statement = delete(outbox).where(outbox.c.seq <= bindparam("upto"), outbox.c.sent_at < bindparam("before"))
        self.batches = 0

    def stop(self) -> None:
        self._stopping.set()
        self.db.outbox_written.set()

    async def run(self) -> None:
        helpers = [asyncio.create_task(self._marker())]
        if self.keep is not None:
            helpers.append(asyncio.create_task(self._purger()))
        try:
            await self._run()
        finally:
            await self._settle_rounds()
            await self._mark_pending()
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _purger(self) -> None:
        assert self.keep is not None
        while True:
            try:
                deleted = await self.purge_published(self.now() - self.keep)
                if deleted:
                    log.info("deleted %d published outbox rows past their retention", deleted)
                    if self.metrics is not None:
                        self.metrics.purged.inc(deleted)  # type: ignore[attr-defined]
            except Exception as exc:  # noqa: BLE001 - the next round tries again; nothing unsent is touched
                log.warning("outbox purge failed (%s)", type(exc).__name__)
            await asyncio.sleep(PURGE_INTERVAL_SECONDS)

    async def purge_published(self, before: datetime, batch: int = PURGE_BATCH) -> int:
        """Delete the rows marked sent before ``before``, oldest first, ``batch`` per transaction.
        A row not yet published is never deleted, however old. Returns how many were deleted."""
        deleted = 0
        while True:
            async with self.db.read_sessionmaker() as session:
                upto = await session.scalar(self._purge_reach, {"before": before, "n": batch})
            if upto is None:
                return deleted
            async with UnitOfWork(self.db) as uow:
                result = await uow.execute(self._purge_statement, {"before": before, "upto": upto})
                await uow.commit()
            deleted += int(result.rowcount)

    async def _marker(self) -> None:
        while True:
            await self._mark_wanted.wait()
            # Coalesce: one "sent" transaction (one fsync) for everything published in the next
            # moment, and the consumers' own transactions are not kept waiting for the write lock.
            await asyncio.sleep(self.mark_delay)
            self._mark_wanted.clear()
            try:
                await self._mark_pending()
            except Exception as exc:  # noqa: BLE001 - rows stay unmarked; they will be marked later
                log.warning("outbox mark failed (%s)", type(exc).__name__)
                await asyncio.sleep(0.5)
                self._mark_wanted.set()

    async def _mark_pending(self) -> None:
        if not self._unmarked:
            return
        seqs = list(self._unmarked)
        await self._mark_sent(seqs)
        self._unmarked.difference_update(seqs)

    async def _run(self) -> None:
        delay = 0.1
        loop = asyncio.get_running_loop()
        scan_due, last_scan = True, loop.time()  # scan at start: rows left by an earlier run
        while not self._stopping.is_set():
            # Clear before reading: a commit that lands after this point sets it again, so no
            # wake-up is lost between "found nothing" and "wait".
            self.db.outbox_written.clear()
            # Hand-offs need no scan. The scan runs at start, after a failure, while it finds work,
            # and at least every poll_seconds (rows of other processes, dropped hand-offs).
            if loop.time() - last_scan >= self.poll_seconds:
                scan_due = True
            try:
                self._raise_round_failure()  # a round's publish failed: as if it failed here
                if self.db.handoff:
                    n = await self._start_round()
                elif scan_due:
                    last_scan = loop.time()
                    n = await self.flush_once()
                    scan_due = n > 0
                else:
                    n = 0
                delay = 0.1
            except Exception as exc:  # noqa: BLE001 - a relay never dies; it retries
                log.warning("outbox publish failed (%s); retrying in %.1fs", type(exc).__name__, delay)
                scan_due = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)  # short cap: a recovered NATS or database is used again soon
                continue
            if n == 0 and not self.db.handoff and not scan_due:
                try:
                    await asyncio.wait_for(self.db.outbox_written.wait(), self.poll_seconds)
                except TimeoutError:
                    scan_due = True
        try:  # publish what was committed just before the stop; anything left goes at next start
            await self._settle_rounds()
            await self.flush_once()
        except Exception:  # noqa: BLE001
            pass

    async def flush_handoff(self) -> int:
        """Publish rows this process has just committed, as the unit of work handed them over.

        The fast path: no read of the outbox. Rows that fail stay unsent in the table, and the
        next scan (:meth:`flush_once`) publishes them.

        Everything handed over so far goes in one round (several atomic batches at once): while a
        busy consumer holds the event loop, a round lasts as long as that consumer's batch, so a
        round of only ``batch`` rows let the relay fall behind the commits (bench/)."""
        rows = self._take_handoff()
        return await self._publish(rows) if rows else 0

    def _take_handoff(self) -> list[Any]:
        """The next round's rows, taken from the hand-off: those not published already."""
        taken = self.db.handoff[: self.batch * ROUND_BATCHES]
        del self.db.handoff[: len(taken)]
        return [SimpleNamespace(**m) for m in taken if m["seq"] not in self._published]

    async def _start_round(self) -> int:
        """Publish the rows handed off so far, as :meth:`flush_handoff` does, without waiting for
        their PubAcks (module docstring). Their marks, or their failure, follow when those come."""
        rows = self._take_handoff()
        if not rows:
            return 0
        if any(r.op == "cancel_timer" or _schedules(r) for r in rows):
            # Raises when an earlier round failed: these rows stay unsent, and the scan that the
            # failure brings publishes them after that round's, in commit order.
            await self._settle_rounds(raise_failure=True)
        while len(self._rounds) >= ROUNDS_IN_FLIGHT:
            await asyncio.wait({self._rounds[0]})
        seqs = {r.seq for r in rows}
        self._sending |= seqs
        task = asyncio.create_task(self._publish(rows))
        self._rounds.append(task)
        task.add_done_callback(lambda t: self._round_done(t, seqs))
        return len(rows)

    def _round_done(self, task: asyncio.Task[int], seqs: set[int]) -> None:
        self._rounds.remove(task)
        self._sending -= seqs  # published ones are in _published by now; the rest are the scan's
        if not task.cancelled() and (exc := task.exception()) is not None and self._round_failed is None:
            self._round_failed = exc
            self.db.outbox_written.set()  # wake the loop to handle it

    async def _settle_rounds(self, raise_failure: bool = False) -> None:
        """Wait until every round in flight has its PubAcks (or has failed)."""
        while self._rounds:
            await asyncio.gather(*self._rounds, return_exceptions=True)
        if raise_failure:
            self._raise_round_failure()

    def _raise_round_failure(self) -> None:
        """Raise (once) the first failure of a round since the last time."""
        if self._round_failed is not None:
            failure, self._round_failed = self._round_failed, None
            raise failure

    async def flush_once(self) -> int:
        """Publish what is pending: the rows handed off, then a scan of the outbox for unsent rows
        (after a start, a crash, a failed publish, or rows another process committed)."""
        n = await self.flush_handoff() if self.db.handoff else 0
        return n + await self._scan()

    async def _scan(self) -> int:
        outbox = self.db.outbox
        async with self.db.read_sessionmaker() as session:
            rows = (
                await session.execute(
                    select(outbox.c.seq, outbox.c.message_id, outbox.c.op, outbox.c.subject, outbox.c.payload, outbox.c.headers)
                    .where(outbox.c.sent_at.is_(None))
                    .order_by(outbox.c.seq)
                    # Rows published but not yet marked are skipped below; read past them, or a
                    # long unmarked head would hide the new rows until the marks land (a stall).
                    .limit(self.batch + len(self._published) + len(self._sending) + len(self.db.handoff) + len(self.db.inflight))
                )
            ).all()
        if not rows:
            self._published.clear()  # nothing unsent: every earlier publish is marked
            return 0
        # Rows are scanned in seq order, so every seq below the first unsent one is marked.
        self._published = {seq for seq in self._published if seq >= rows[0].seq}
        # Rows still committing, handed off, or in a round waiting for its PubAcks belong to the hand-off path.
        skip = self._published | self._sending | self.db.inflight | {m["seq"] for m in self.db.handoff}
        rows = [r for r in rows if r.seq not in skip]
        if not rows:
            return 0
        return await self._publish(rows)

    async def _publish(self, rows: list[Any]) -> int:
        # Publishes go out pipelined; a timer cancel waits for everything before it, so a
        # timer scheduled and cancelled in one transaction is really gone.
        done: list[int] = []
        failed: list[BaseException] = []
        segment: list[object] = []
        for row in [*rows, None]:
            if row is None or row.op == "cancel_timer":
                if segment:
                    groups = self._groups(segment)
                    results = await asyncio.gather(*(self._send_group(g) for g in groups), return_exceptions=True)
                    for group, res in zip(groups, results, strict=True):
                        if isinstance(res, BaseException):
                            failed.append(res)
                        else:
                            # ``ok`` is True or the exception that row met (an exception is truthy!)
                            done += [r.seq for r, ok in zip(group, res, strict=True) if ok is True]
                            failed += [ok for ok in res if isinstance(ok, BaseException)]
                    segment = []
                if row is None or failed:
                    break
                try:
                    await self._send(row)
                    done.append(row.seq)
                except Exception as exc:  # noqa: BLE001
                    failed.append(exc)
                    break
            else:
                segment.append(row)
        if done:
            crash_point("relay.after_publish_before_mark")
            self._unmarked.update(done)
            self._published.update(done)
            self._mark_wanted.set()
            self.published += len(done)
            if self.metrics is not None:
                self.metrics.published.inc(len(done))  # type: ignore[attr-defined]
        if failed:
            raise failed[0]
        return len(rows)

    def _groups(self, rows: list[Any]) -> list[list[Any]]:
        """Split a segment into atomic batches (plain events of one stream) and single rows."""
        by_stream: dict[str, list[Any]] = {}
        groups: list[list[Any]] = []
        for row in rows:
            stream = stream_of(row.subject) if row.op == "publish" and not _schedules(row) else None
            if stream is None or not self.atomic or stream in self._no_atomic:
                groups.append([row])
            else:
                by_stream.setdefault(stream, []).append(row)
        for batch in by_stream.values():
            if len(batch) < ATOMIC_BATCH_MIN:
                groups += [[row] for row in batch]
            else:
                groups += [batch[i : i + ATOMIC_BATCH_MAX] for i in range(0, len(batch), ATOMIC_BATCH_MAX)]
        return groups

    async def _send_group(self, rows: list[Any]) -> list[Any]:
        """Publish rows; returns per row True or the exception that row met."""
        if len(rows) > 1:
            try:
                await self._send_atomic(rows)
                self.batches += 1
                return [True] * len(rows)
            except BatchRefused as exc:
                if exc.code == ATOMIC_DISABLED:
                    self._no_atomic.add(stream_of(rows[0].subject) or "")
                log.info("outbox batch refused (err_code %d); publishing its %d rows one by one", exc.code, len(rows))
            except Exception as exc:  # noqa: BLE001 - e.g. a timeout: the one-by-one path decides
                log.info("outbox batch failed (%s); publishing its %d rows one by one", type(exc).__name__, len(rows))
        results = await asyncio.gather(*(self._send(r) for r in rows), return_exceptions=True)
        return [True if not isinstance(r, BaseException) else r for r in results]

    async def _send_atomic(self, rows: list[Any]) -> None:
        await publish_atomic(
            core_client(self.js), [(row.subject, row.payload, {**row.headers, "Nats-Msg-Id": row.message_id}) for row in rows]
        )

    async def _send(self, row: object) -> None:
        headers = dict(row.headers)  # type: ignore[attr-defined]
        if row.op == "cancel_timer":  # type: ignore[attr-defined]
            # Cancelling a durable timer: a tombstone rolls up (replaces) the schedule message on its
            # subject, so it never fires. No stream-admin permission is needed for this.
            headers = {"Nats-Rollup": "sub", "Koolle-Timer": "cancelled"}
        headers["Nats-Msg-Id"] = row.message_id  # type: ignore[attr-defined]
        await self.js.publish(row.subject, row.payload, headers=headers, timeout=10)  # type: ignore[attr-defined]

    async def _mark_sent(self, seqs: list[int]) -> None:
        # In a unit of work: on SQLite the process's writer connection and the driver fast path.
        async with UnitOfWork(self.db) as uow:
            await uow.execute(self._mark_statement, {"seqs": seqs, "now": self.now()})
            await uow.commit()
