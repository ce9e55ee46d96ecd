"""The outbox relay: publishes committed outbox rows to JetStream and marks them sent after the PubAck.

``Nats-Msg-Id`` is the row's message id, so a publish repeated after a crash (published, not yet
marked) is dropped by JetStream's duplicate window instead of doubling the event; consumers' inboxes
catch what the window no longer covers. Rows are published pipelined, in commit order, and the relay
retries forever with a capped backoff.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone

from nats.js import JetStreamContext
from sqlalchemy import select, update

from shared.db import Database
from shared.faults import crash_point

log = logging.getLogger("koolle.outbox")


class OutboxRelay:
    def __init__(
        self, db: Database, js: JetStreamContext, *, batch: int = 500, poll_seconds: float = 1.0, metrics: object = None
    ) -> None:
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
        self._mark_wanted = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()
        self.db.outbox_written.set()

    async def run(self) -> None:
        marker = asyncio.create_task(self._marker())
        try:
            await self._run()
        finally:
            await self._mark_pending()
            marker.cancel()
            await asyncio.gather(marker, return_exceptions=True)

    async def _marker(self) -> None:
        while True:
            await self._mark_wanted.wait()
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
        while not self._stopping.is_set():
            # Clear before reading: a commit that lands after this point sets it again, so no
            # wake-up is lost between "found nothing" and "wait".
            self.db.outbox_written.clear()
            try:
                n = await self.flush_once()
                delay = 0.1
            except Exception as exc:  # noqa: BLE001 - a relay never dies; it retries
                log.warning("outbox publish failed (%s); retrying in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)  # short cap: a recovered NATS or database is used again soon
                continue
            if n == 0:
                try:
                    await asyncio.wait_for(self.db.outbox_written.wait(), self.poll_seconds)
                except TimeoutError:
                    pass
        try:  # publish what was committed just before the stop; anything left goes at next start
            await self.flush_once()
        except Exception:  # noqa: BLE001
            pass

    async def flush_once(self) -> int:
        outbox = self.db.outbox
        async with self.db.read_sessionmaker() as session:
            rows = (
                await session.execute(
                    select(outbox.c.seq, outbox.c.message_id, outbox.c.op, outbox.c.subject, outbox.c.payload, outbox.c.headers)
                    .where(outbox.c.sent_at.is_(None))
                    .order_by(outbox.c.seq)
                    .limit(self.batch)
                )
            ).all()
        if not rows:
            self._published.clear()  # nothing unsent: every earlier publish is marked
            return 0
        # Rows are scanned in seq order, so every seq below the first unsent one is marked.
        self._published = {seq for seq in self._published if seq >= rows[0].seq}
        rows = [r for r in rows if r.seq not in self._published]
        if not rows:
            return 0
        # Publishes go out pipelined; a timer cancel waits for everything before it, so a
        # timer scheduled and cancelled in one transaction is really gone.
        done: list[int] = []
        failed: list[BaseException] = []
        segment: list[object] = []
        for row in [*rows, None]:
            if row is None or row.op == "cancel_timer":
                if segment:
                    results = await asyncio.gather(*(self._send(r) for r in segment), return_exceptions=True)
                    done += [r.seq for r, res in zip(segment, results, strict=True) if not isinstance(res, BaseException)]  # type: ignore[attr-defined]
                    failed += [res for res in results if isinstance(res, BaseException)]
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

    async def _send(self, row: object) -> None:
        headers = dict(row.headers)  # type: ignore[attr-defined]
        if row.op == "cancel_timer":  # type: ignore[attr-defined]
            # Cancelling a durable timer: a tombstone rolls up (replaces) the schedule message on its
            # subject, so it never fires. No stream-admin permission is needed for this.
            headers = {"Nats-Rollup": "sub", "Koolle-Timer": "cancelled"}
        headers["Nats-Msg-Id"] = row.message_id  # type: ignore[attr-defined]
        await self.js.publish(row.subject, row.payload, headers=headers, timeout=10)  # type: ignore[attr-defined]

    async def _mark_sent(self, seqs: list[int]) -> None:
        outbox = self.db.outbox
        now = datetime.now(timezone.utc)
        lock = self.db.write_lock
        if lock is not None:
            await lock.acquire()
        try:
            async with self.db.sessionmaker() as session, session.begin():
                await session.execute(update(outbox).where(outbox.c.seq.in_(seqs)).values(sent_at=now))
        finally:
            if lock is not None:
                lock.release()
