"""Reliable JetStream consumers: explicit acks, inbox dedup, retry with delay, dead letters.

Why not a plain FastStream subscriber here: a consumer commits a whole pulled batch in one database
transaction (inbox rows + effects + outbox rows), which is what makes fsync'd throughput possible,
and it must decide per message between ack, nak-with-delay and dead-letter. FastStream's batch
subscriber waits to fill a batch (latency) and its default NATS ack policy (REJECT_ON_ERROR)
terminates failing messages. So the loop is ours, on the broker's own JetStream connection.

Rules:
- an effect and its inbox row commit together; the ack follows the commit (never before);
- a handler that raises is retried with a growing delay (nak with delay), never terminated;
- a handler that cannot reach a dependency (``DependencyUnavailable``) is not failing: its batch
  is held and tried again until the dependency answers, spending none of its deliveries;
- after ``max_deliver`` deliveries, or when the payload breaks the contract, the message goes to
  the DEADLETTER stream (with reason codes, no personal data) and is then acked;
- a worker never dies of a payload.

This module is the processing; what is consumed is a service's subscriptions on one stream
(``Consumed``, subscription.py), each message handled by the subscription its subject matches. The
pull requests are pull.py's, the consumer's creation durables.py's, the turns between consumers
batches.py's and dead letters deadletters.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError

from shared.faults import crash_point
from shared.messaging.batches import BatchOrder
from shared.messaging.deadletters import DeadLetters, StoredMessage
from shared.messaging.durables import ensure_consumer
from shared.messaging.pull import LingeringPull, StandingPull
from shared.messaging.subscription import Consumed, Subscription
from shared.outage import DependencyUnavailable
from shared.storage.database import Database
from shared.storage.uow import UnitOfWork
from shared.telemetry import continued, extract_context

log = logging.getLogger("koolle.consumer")


Item = tuple[Msg, Subscription, Any]  # a message, the subscription it is for, its parsed event


def _process_attributes(m: Msg, sub: Subscription, ev: Any, message_id: str) -> dict[str, Any]:
    """A consumed event's span attributes: ids and subjects only, never personal data."""
    return {
        "messaging.system": "nats",
        "messaging.operation": "process",
        "messaging.destination.name": m.subject,
        "messaging.message.id": message_id,
        "koolle.consumer": sub.durable,
        "koolle.delivery": m.metadata.num_delivered,
        "koolle.case_id": str(getattr(ev, "case_id", "") or ""),
    }


class EventConsumer:
    def __init__(
        self,
        db: Database,
        js: JetStreamContext,
        consumed: Consumed | Subscription,
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
        if isinstance(consumed, Subscription):
            consumed = Consumed(consumed.service, consumed.stream, (consumed,))
        self.consumed = consumed
        self.subs = consumed.subs
        self.durable = consumed.durable  # the JetStream consumer's name
        self.stream = consumed.stream
        self.order = (order or BatchOrder()) if consumed.takes_turns else BatchOrder()  # its own: no turns
        self.metrics = metrics
        self.linger = consumed.linger(linger)
        self.db = db
        self.js = js
        self.uow_factory = uow_factory
        self.dead_letters = dead_letters
        self.batch = batch
        self.ack_wait = ack_wait
        self.max_deliver = max_deliver
        self.retry_delays = retry_delays
        self.tracer = trace.get_tracer(f"koolle.{consumed.service}")
        self._running = True
        self._busy = asyncio.Lock()
        # Per subscription (by its name); the consumer's totals are their sums.
        self.handled_by: dict[str, int] = {sub.durable: 0 for sub in self.subs}
        self.duplicates_by: dict[str, int] = {sub.durable: 0 for sub in self.subs}
        self.failures = 0
        self.outage_waits = 0  # times a batch was held because a dependency did not answer
        self.careful_retries = 0  # batches of first deliveries handled again, claims first
        self.bound = False
        self._psub: Any = None
        self._task: asyncio.Task[None] | None = None

    @property
    def handled(self) -> int:
        return sum(self.handled_by.values())

    @property
    def duplicates(self) -> int:
        return sum(self.duplicates_by.values())

    @property
    def sub(self) -> Subscription:
        """The subscription of a consumer that feeds only one."""
        (only,) = self.subs
        return only

    def subscription(self, durable: str) -> Subscription | None:
        """Its subscription named ``durable`` (a dead letter names the subscription)."""
        return next((s for s in self.subs if s.durable == durable), None)

    def consumer_config(self) -> ConsumerConfig:
        subjects = self.consumed.subjects
        return ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait,
            # JetStream never gives up on its own: we dead-letter explicitly at max_deliver, so
            # nothing is dropped silently even if a process dies on every delivery.
            max_deliver=-1,
            max_ack_pending=max(1000, self.batch * 4),
            filter_subject=subjects[0] if len(subjects) == 1 else None,
            filter_subjects=subjects if len(subjects) > 1 else None,
        )

    async def bind(self) -> None:
        config = self.consumer_config()
        if len(self.subs) == 1:
            self._psub = await self.js.pull_subscribe(self.sub.subject, durable=self.durable, stream=self.stream, config=config)
        else:
            await ensure_consumer(self.js, self.stream, config, previous=[s.durable for s in self.subs])
            self._psub = await self.js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
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
                    log.warning("fetch failed on %s (%s)", self.durable, type(exc).__name__)
                    await asyncio.sleep(1.0)
                    continue
                await self.order.turn(self)
                # Shutdown waits for this lock, so a batch in hand is finished and acked, not cut.
                async with self._busy:
                    await self.process(msgs)
                # The next batch may be waiting already, and a batch on SQLite need never yield:
                # the loop's other tasks first (the relay publishes what this batch committed,
                # the client writes its acks and reads), not after the next batch too.
                await asyncio.sleep(0)
            finally:
                await self.order.leave(self)

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self.run(), name=self.durable)
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

    async def redeliver(self, msg: StoredMessage, sub: Subscription) -> str:
        """Handle one message re-read from this consumer's stream (an operator's dead-letter replay)
        through ``sub``'s normal path: same parse, same inbox (an event already handled has no second
        effect), same transaction. Returns ``handled``, ``duplicate``, ``contract_violation`` or
        ``handler_failed``; the caller keeps the dead letter unless it was handled or a duplicate."""
        try:
            item = (msg, sub, sub.parse(msg))  # type: ignore[arg-type]
        except ValidationError:
            return "contract_violation"
        async with self._busy:  # not interleaved with a batch of this consumer
            before = self.duplicates
            try:
                await self._handle_batch([item], careful=True)  # type: ignore[list-item]
            except Exception as exc:  # noqa: BLE001 - reported to the operator; the dead letter stays
                log.warning("replay on %s failed (%s)", sub.durable, type(exc).__name__)
                return "handler_failed"
        return "duplicate" if self.duplicates > before else "handled"

    # -- processing -------------------------------------------------------------------------------
    async def process(self, msgs: list[Msg]) -> None:
        parsed: list[Item] = []
        for m in msgs:
            sub = self.consumed.route(m.subject)
            if sub is None:  # not on any filter (a filter narrowed while it was delivered): nobody's
                await self._dead_letter(m, self.durable, "unknown_subject", "no subscription of this consumer matches")
                continue
            if m.metadata.num_delivered > self.max_deliver:
                await self._dead_letter(m, sub.durable, "max_deliveries", "delivered more times than allowed")
                continue
            try:
                parsed.append((m, sub, sub.parse(m)))
            except ValidationError as exc:
                codes = ",".join(sorted({f"{'.'.join(map(str, e['loc']))}:{e['type']}" for e in exc.errors(include_input=False)}))
                await self._dead_letter(m, sub.durable, "contract_violation", codes)
        if not parsed:
            return
        prepares: dict[Any, list[Any]] = {}  # one call per preparation, with all its events
        for _, sub, ev in parsed:
            if sub.prepare is not None:
                prepares.setdefault(sub.prepare, []).append(ev)
        for prepare, events in prepares.items():
            await prepare(events)
        try:
            await self._outlasting(parsed)
        except Exception as exc:  # noqa: BLE001 - isolate the failing message(s) one by one
            if len(parsed) == 1:
                await self._failed(parsed[0][0], parsed[0][1], type(exc).__name__)
                return
            for item in parsed:
                try:
                    await self._outlasting([item])
                except Exception as exc1:  # noqa: BLE001
                    await self._failed(item[0], item[1], type(exc1).__name__)

    async def _outlasting(self, items: list[Item]) -> None:
        """Handle ``items``; while a dependency is down, hold them and try again, telling JetStream
        they are in progress so that they are not redelivered meanwhile. An outage (a key bucket's
        leader elected again after a node was lost) is nobody's payload: it spends none of the
        messages' deliveries, so it sends nothing to the dead letters. Only a stop ends the wait:
        the messages then go back at once for the next run, not failed."""
        pause = 0.1
        while True:
            try:
                await self._handle_batch(items)
                return
            except DependencyUnavailable as exc:
                if not self._running:
                    for m, _, _ in items:
                        with contextlib.suppress(Exception):  # connection gone: redelivered after ack_wait
                            await m.nak()
                    return
                self.outage_waits += 1
                if self.metrics is not None:
                    self.metrics.outage_waits.labels(self.durable, type(exc).__name__).inc()
                cause = f" ({type(exc.__cause__).__name__})" if exc.__cause__ is not None else ""
                log.warning(
                    "%s%s on %s: %d message(s) held, tried again in %.1fs",
                    type(exc).__name__,
                    cause,
                    self.durable,
                    len(items),
                    pause,
                )
                for m, _, _ in items:
                    with contextlib.suppress(Exception):  # NATS itself down: redelivered after ack_wait then
                        await m.in_progress()
                await asyncio.sleep(pause)
                pause = min(pause * 2, self.ack_wait / 4, 5.0)

    async def _handle_batch(self, items: list[Item], careful: bool = False) -> None:
        """Handle ``items`` in one transaction. A batch of first deliveries records its inbox rows
        with its other writes (inbox.py, ``claim_later``): one round trip less on PostgreSQL. Should
        one of them have been handled before after all (an event stored twice), that commit fails
        and the batch is handled again the careful way, its claims first; so is a batch holding a
        redelivery, which may have been handled before its ack was lost. A handler may therefore run
        in a transaction that is then rolled back, as when any event of its batch fails."""
        if not careful and all(m.metadata.num_delivered == 1 for m, _, _ in items):
            try:
                await self._handle(items, careful=False)
                return
            except IntegrityError:
                self.careful_retries += 1  # an event handled before, or a handler's own conflict
                if self.metrics is not None:
                    self.metrics.claimed_again.labels(self.durable).inc()
        await self._handle(items, careful=True)

    async def _handle(self, items: list[Item], careful: bool) -> None:
        started = time.perf_counter()
        duplicates: dict[str, int] = {}  # per subscription
        claims = [(sub.durable, sub.key(ev, m)) for m, sub, ev in items]
        async with self.uow_factory() as uow:
            # One inbox statement for the batch; a key seen twice in one batch is handled once.
            if careful:
                new = await uow.claim_each(claims)
            else:
                uow.claim_later(claims)
                new = set(claims)
            if new:
                await self._preload(items, claims, new, uow)
            for (m, sub, ev), claim in zip(items, claims, strict=True):
                # Without an exporter no span is built (bench/): the event's own trace context is
                # made current instead, so what the handler emits still carries its traceparent.
                scope = continued(
                    self.tracer,
                    f"{sub.subject} process",
                    extract_context(m.headers),
                    partial(_process_attributes, m, sub, ev, claim[1]),
                    kind=SpanKind.CONSUMER,
                )
                with scope:
                    fresh = claim in new
                    new.discard(claim)
                    if fresh:
                        uow.cause = ev  # what the handler emits names this event as its cause
                        await sub.handler(ev, uow)
                    else:
                        duplicates[sub.durable] = duplicates.get(sub.durable, 0) + 1
            await uow.commit()
        crash_point("consumer.after_commit_before_ack")
        # Only after the commit: ack. A lost ack means a redelivery, which the inbox absorbs.
        for m, _, _ in items:
            await m.ack()
        handled: dict[str, int] = {}
        for _, sub, _ in items:
            handled[sub.durable] = handled.get(sub.durable, 0) + 1
        for durable, n in handled.items():
            self.handled_by[durable] += n
        for durable, n in duplicates.items():
            self.duplicates_by[durable] += n
        if self.metrics is not None:
            elapsed = time.perf_counter() - started
            for durable, n in handled.items():
                self.metrics.handled.labels(durable).inc(n)
                self.metrics.handler_seconds.labels(durable).observe(elapsed)
            for durable, n in duplicates.items():
                self.metrics.duplicates.labels(durable).inc(n)

    @staticmethod
    async def _preload(items: list[Item], claims: list[tuple[str, str]], new: set[tuple[str, str]], uow: UnitOfWork) -> None:
        """Each subscription's preload, once, with its events not handled before (in stream order)."""
        wanted: dict[Any, list[Any]] = {}
        for (_, sub, ev), claim in zip(items, claims, strict=True):
            if sub.preload is not None and claim in new:
                wanted.setdefault(sub.preload, []).append(ev)
        for preload, events in wanted.items():
            await preload(events, uow)

    async def _failed(self, m: Msg, sub: Subscription, error: str) -> None:
        self.failures += 1
        if self.metrics is not None:
            self.metrics.failed.labels(sub.durable).inc()
        n = m.metadata.num_delivered
        if n >= self.max_deliver:
            await self._dead_letter(m, sub.durable, "handler_failed", error)
            return
        delay = self.retry_delays[min(n - 1, len(self.retry_delays) - 1)]
        log.warning("handler failed on %s delivery %d (%s); retry in %.0fs", sub.durable, n, error, delay)
        await m.nak(delay=delay)

    async def _dead_letter(self, m: Msg, durable: str, reason: str, detail: str) -> None:
        """To the dead letters under ``durable``, the subscription that gave up on it (replay finds it)."""
        try:
            stored = await self.dead_letters.send(m, durable, reason, detail)
        except Exception as exc:  # noqa: BLE001 - not stored in DLQ: leave it for redelivery
            log.warning("dead-letter publish failed (%s); message will be redelivered", type(exc).__name__)
            await m.nak(delay=5.0)
            return
        await m.ack()
        if not stored:
            log.warning("message from %s was dead-lettered already (%s this time)", durable, reason)
            return
        log.error("dead-lettered message from %s (%s)", durable, reason)
        if self.metrics is not None:
            self.metrics.dead_letters.labels(durable, reason).inc()
