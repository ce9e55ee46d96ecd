"""Reliable JetStream consumers: explicit acks, inbox dedup, retry with delay, dead letters.

Why not a plain FastStream subscriber here: a consumer commits a whole pulled batch in one database
transaction (inbox rows + effects + outbox rows), which is what makes fsync'd throughput possible,
and it must decide per message between ack, nak-with-delay and dead-letter. FastStream's batch
subscriber waits to fill a batch (latency) and its default NATS ack policy (REJECT_ON_ERROR)
terminates failing messages. So the loop is ours, on the broker's own JetStream connection.

Rules:
- an effect and its inbox row commit together; the ack follows the commit (never before);
- a handler that raises is retried with a growing delay (nak with delay), never terminated;
- after ``max_deliver`` deliveries, or when the payload breaks the contract, the message goes to
  the DEADLETTER stream (with reason codes, no personal data) and is then acked;
- a worker never dies of a payload.

This module is the processing; what is consumed is a Subscription (subscription.py), the pull
requests are pull.py's, the turns between consumers batches.py's and dead letters deadletters.py's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import ValidationError

from shared.faults import crash_point
from shared.messaging.batches import BatchOrder
from shared.messaging.deadletters import DeadLetters, StoredMessage
from shared.messaging.pull import LingeringPull, StandingPull
from shared.messaging.subscription import Subscription
from shared.storage.database import Database
from shared.storage.uow import UnitOfWork
from shared.telemetry import attached, extract_context, tracing_exported

log = logging.getLogger("koolle.consumer")


class EventConsumer:
    def __init__(
        self,
        db: Database,
        js: JetStreamContext,
        sub: Subscription,
        uow_factory: Callable[[], UnitOfWork],
        dead_letters: DeadLetters,
        *,
        batch: int = 256,
        ack_wait: float = 30.0,
        max_deliver: int = 8,
        retry_delays: tuple[float, ...] = (1.0, 5.0, 15.0, 60.0, 300.0),
        metrics: Any = None,
        linger: float = 0.0,
        order: BatchOrder | None = None,
    ) -> None:
        self.order = (order or BatchOrder()) if sub.takes_turns else BatchOrder()  # its own: no turns
        self.metrics = metrics
        self.linger = sub.linger if sub.linger is not None else linger
        self.db = db
        self.js = js
        self.sub = sub
        self.uow_factory = uow_factory
        self.dead_letters = dead_letters
        self.batch = batch
        self.ack_wait = ack_wait
        self.max_deliver = max_deliver
        self.retry_delays = retry_delays
        self.tracer = trace.get_tracer(f"koolle.{sub.service}")
        self._running = True
        self._busy = asyncio.Lock()
        self.handled = 0
        self.duplicates = 0
        self.failures = 0
        self.bound = False
        self._psub: Any = None
        self._task: asyncio.Task[None] | None = None

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.sub.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait,
            # JetStream never gives up on its own: we dead-letter explicitly at max_deliver, so
            # nothing is dropped silently even if a process dies on every delivery.
            max_deliver=-1,
            max_ack_pending=max(1000, self.batch * 4),
            filter_subject=self.sub.subject,
        )

    async def bind(self) -> None:
        self._psub = await self.js.pull_subscribe(
            self.sub.subject,
            durable=self.sub.durable,
            stream=self.sub.stream,
            config=self.consumer_config(),
        )
        self._pull = LingeringPull(self._psub) if self.linger > 0 and self.batch > 1 else StandingPull(self._psub, self.batch)
        self.bound = True

    async def run(self) -> None:
        if self._psub is None:
            await self.bind()
        while self._running:
            try:
                try:
                    msgs = await self._next_batch()
                except (TimeoutError, NatsTimeoutError):
                    continue
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - connection trouble: wait and fetch again
                    await self.order.leave(self)  # the other consumers do not wait for this one
                    log.warning("fetch failed on %s (%s)", self.sub.durable, type(exc).__name__)
                    await asyncio.sleep(1.0)
                    continue
                await self.order.turn(self)
                # Shutdown waits for this lock, so a batch in hand is finished and acked, not cut.
                async with self._busy:
                    await self.process(msgs)
            finally:
                await self.order.leave(self)

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name=self.sub.durable)
        return self._task

    async def _next_batch(self) -> list[Msg]:
        """Wait for the first message (low latency when idle), then take whatever else has already
        been delivered, up to the batch size (throughput under load). A lingering consumer first
        waits a moment for the rest of a trickle: at 100 events/s one transaction per event costs
        several times the CPU of one per few events (bench/)."""
        msgs = [await self._pull.first(timeout=2.0)]
        md = msgs[0].metadata
        self.order.enter(self, md.timestamp.timestamp() if md.timestamp else time.time())
        if self.batch > 1:
            # Linger only for a trickle: not when a batch's worth is already here or on its way.
            if self.linger > 0 and self._pull.waiting() + md.num_pending < self.batch - 1:
                await asyncio.sleep(self.linger)
            msgs += await self._pull.more(self.batch - 1)
        return msgs

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand (commit + ack), then stop fetching. Unacked messages that
        were fetched but not started are redelivered by JetStream after ack_wait."""
        self._running = False
        try:
            await asyncio.wait_for(self._busy.acquire(), timeout)
        except TimeoutError:
            pass
        else:
            self._busy.release()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._psub is not None:
            try:
                # Delivered ahead but not started: hand back at once instead of after ack_wait.
                for m in self._pull.buffered(10**6):
                    await m.nak()
                await self._psub.unsubscribe()
            except Exception:  # noqa: BLE001 - connection already gone
                pass

    async def redeliver(self, msg: StoredMessage) -> str:
        """Handle one message re-read from this consumer's stream (an operator's dead-letter replay)
        through the normal path: same parse, same inbox (an event already handled has no second
        effect), same transaction. Returns ``handled``, ``duplicate``, ``contract_violation`` or
        ``handler_failed``; the caller keeps the dead letter unless it was handled or a duplicate."""
        try:
            item = (msg, self.sub.parse(msg))  # type: ignore[arg-type]
        except ValidationError:
            return "contract_violation"
        async with self._busy:  # not interleaved with a batch of this consumer
            before = self.duplicates
            try:
                await self._handle_batch([item])  # type: ignore[list-item]
            except Exception as exc:  # noqa: BLE001 - reported to the operator; the dead letter stays
                log.warning("replay on %s failed (%s)", self.sub.durable, type(exc).__name__)
                return "handler_failed"
        return "duplicate" if self.duplicates > before else "handled"

    # -- processing -------------------------------------------------------------------------------
    async def process(self, msgs: list[Msg]) -> None:
        parsed: list[tuple[Msg, Any]] = []
        for m in msgs:
            if m.metadata.num_delivered > self.max_deliver:
                await self._dead_letter(m, "max_deliveries", "delivered more times than allowed")
                continue
            try:
                parsed.append((m, self.sub.parse(m)))
            except ValidationError as exc:
                codes = ",".join(sorted({f"{'.'.join(map(str, e['loc']))}:{e['type']}" for e in exc.errors(include_input=False)}))
                await self._dead_letter(m, "contract_violation", codes)
        if not parsed:
            return
        if self.sub.prepare is not None:
            await self.sub.prepare([ev for _, ev in parsed])
        try:
            await self._handle_batch(parsed)
        except Exception as exc:  # noqa: BLE001 - isolate the failing message(s) one by one
            if len(parsed) == 1:
                await self._failed(parsed[0][0], type(exc).__name__)
                return
            for item in parsed:
                try:
                    await self._handle_batch([item])
                except Exception as exc1:  # noqa: BLE001
                    await self._failed(item[0], type(exc1).__name__)

    async def _handle_batch(self, items: list[tuple[Msg, Any]]) -> None:
        started = time.perf_counter()
        duplicates = 0
        keys = [self.sub.key(ev, m) for m, ev in items]
        async with self.uow_factory() as uow:
            # One inbox statement for the batch; a key seen twice in one batch is handled once.
            new = await uow.claim_many(self.sub.durable, keys)
            if self.sub.preload is not None and new:
                await self.sub.preload([ev for (_, ev), key in zip(items, keys, strict=True) if key in new], uow)
            recording = tracing_exported()
            for (m, ev), key in zip(items, keys, strict=True):
                ctx = extract_context(m.headers)
                # Without an exporter no span is built (bench/): the event's own trace context is
                # made current instead, so what the handler emits still carries its traceparent.
                scope = (
                    self.tracer.start_as_current_span(
                        f"{self.sub.subject} process",
                        context=ctx,
                        kind=SpanKind.CONSUMER,
                        attributes={
                            "messaging.system": "nats",
                            "messaging.operation": "process",
                            "messaging.destination.name": m.subject,
                            "messaging.message.id": key,
                            "koolle.consumer": self.sub.durable,
                            "koolle.delivery": m.metadata.num_delivered,
                            "koolle.case_id": str(getattr(ev, "case_id", "") or ""),
                        },
                    )
                    if recording
                    else attached(ctx)
                )
                with scope:
                    fresh = key in new
                    new.discard(key)
                    if fresh:
                        uow.cause = ev  # what the handler emits names this event as its cause
                        await self.sub.handler(ev, uow)
                    else:
                        duplicates += 1
            await uow.commit()
        crash_point("consumer.after_commit_before_ack")
        # Only after the commit: ack. A lost ack means a redelivery, which the inbox absorbs.
        for m, _ in items:
            await m.ack()
        self.handled += len(items)
        self.duplicates += duplicates
        if self.metrics is not None:
            d = self.sub.durable
            self.metrics.handled.labels(d).inc(len(items))
            if duplicates:
                self.metrics.duplicates.labels(d).inc(duplicates)
            self.metrics.handler_seconds.labels(d).observe(time.perf_counter() - started)

    async def _failed(self, m: Msg, error: str) -> None:
        self.failures += 1
        if self.metrics is not None:
            self.metrics.failed.labels(self.sub.durable).inc()
        n = m.metadata.num_delivered
        if n >= self.max_deliver:
            await self._dead_letter(m, "handler_failed", error)
            return
        delay = self.retry_delays[min(n - 1, len(self.retry_delays) - 1)]
        log.warning("handler failed on %s delivery %d (%s); retry in %.0fs", self.sub.durable, n, error, delay)
        await m.nak(delay=delay)

    async def _dead_letter(self, m: Msg, reason: str, detail: str) -> None:
        log.error("dead-lettering message from %s (%s)", self.sub.durable, reason)
        try:
            await self.dead_letters.send(m, self.sub.durable, reason, detail)
        except Exception as exc:  # noqa: BLE001 - not stored in DLQ: leave it for redelivery
            log.warning("dead-letter publish failed (%s); message will be redelivered", type(exc).__name__)
            await m.nak(delay=5.0)
            return
        await m.ack()
        if self.metrics is not None:
            self.metrics.dead_letters.labels(self.sub.durable, reason).inc()
