"""A pulled batch is claimed in the inbox with one statement: new keys take effect once, keys already
handled (redeliveries) and keys repeated inside the batch do not; nothing is acked before the commit.
A batch of first deliveries records its claims with its other writes, and is handled again claims
first when one of them had been handled after all."""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData, func, select

from shared.messaging.consumer import EventConsumer
from shared.messaging.subscription import Subscription, consumed_by_stream
from shared.storage.database import Database
from shared.storage.tables import messaging_tables
from shared.storage.uow import UnitOfWork
from tests.support.delivered import Delivered


async def test_a_batch_is_claimed_at_once_and_each_event_takes_effect_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    md = MetaData()
    messaging_tables(md)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", md)
    await db.create_all()
    handled: list[str] = []  # the handlers' runs that committed

    async def handler(ev: Any, uow: UnitOfWork) -> None:
        uow.after_commit(lambda: handled.append(ev))

    sub = Subscription("svc", "test.subject", "TEST", handler, parse=lambda m: m.data.decode(), key=lambda ev, m: ev)
    consumer = EventConsumer(db, None, sub, lambda: UnitOfWork(db), None)  # type: ignore[arg-type]

    first = [Delivered(k, i) for i, k in enumerate(["a", "b", "c"])]
    await consumer._handle_batch([(m, sub, sub.parse(m)) for m in first])
    assert consumer.careful_retries == 0  # first deliveries, all new: claimed with the effects
    # Stored again after the dedup window: first deliveries of events handled before.
    again = [Delivered(k, 10 + i) for i, k in enumerate(["b", "d", "d", "a", "e"])]
    await consumer._handle_batch([(m, sub, sub.parse(m)) for m in again])

    assert handled == ["a", "b", "c", "d", "e"]
    assert consumer.handled == 8 and consumer.duplicates == 3  # b, a (earlier batch) and the second d
    assert consumer.careful_retries == 1  # the commit with b's and a's claims failed; claimed first then
    assert all(m.acked for m in first + again)
    async with db.sessionmaker() as s:
        assert await s.scalar(select(func.count()).select_from(db.inbox)) == 5
    await db.dispose()


async def test_a_batch_preloads_once_with_the_events_not_handled_before_and_before_their_handlers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    md = MetaData()
    messaging_tables(md)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", md)
    await db.create_all()
    calls: list[Any] = []

    async def handler(ev: Any, uow: UnitOfWork) -> None:
        calls.append(ev)

    async def preload(events: list[Any], uow: UnitOfWork) -> None:
        calls.append(("preload", sorted(set(events))))

    sub = Subscription(
        "svc", "test.subject", "TEST", handler, parse=lambda m: m.data.decode(), key=lambda ev, m: ev, preload=preload
    )
    consumer = EventConsumer(db, None, sub, lambda: UnitOfWork(db), None)  # type: ignore[arg-type]
    await consumer._handle_batch([(m, sub, sub.parse(m)) for m in [Delivered("a", 1)]])
    calls.clear()
    # A redelivery (a's ack was lost) in the batch: claimed first, so only b and c are preloaded.
    batch = [Delivered("a", 1, delivered=2), Delivered("b", 11), Delivered("c", 12)]
    await consumer._handle_batch([(m, sub, sub.parse(m)) for m in batch])
    assert calls == [("preload", ["b", "c"]), "b", "c"]
    calls.clear()
    await consumer._handle_batch([(m, sub, sub.parse(m)) for m in [Delivered("a", 1, delivered=3)]])  # nothing new: no preload
    assert calls == []
    assert consumer.careful_retries == 0
    await db.dispose()


async def test_one_consumer_of_two_subjects_handles_a_mixed_batch_in_one_transaction_each_by_its_own_handler(tmp_path) -> None:  # type: ignore[no-untyped-def]
    md = MetaData()
    messaging_tables(md)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}", md)
    await db.create_all()
    calls: list[Any] = []
    commits: list[int] = []

    def handler(name: str) -> Any:
        async def handle(ev: Any, uow: UnitOfWork) -> None:
            calls.append((name, ev))
            uow.after_commit(lambda: commits.append(len(calls)))

        return handle

    async def preload_a(events: list[Any], uow: UnitOfWork) -> None:
        calls.append(("preload a", events))

    def subscription(subject: str, name: str, **kw: Any) -> Subscription:
        return Subscription("svc", subject, "TEST", handler(name), parse=lambda m: m.data.decode(), key=lambda ev, m: ev, **kw)

    a, b = subscription("test.a", "a", preload=preload_a), subscription("test.b", "b")
    (consumed,) = consumed_by_stream("svc", [a, b])
    consumer = EventConsumer(db, None, consumed, lambda: UnitOfWork(db), None)  # type: ignore[arg-type]
    assert consumer.durable == "svc-from-test" and consumer.consumer_config().filter_subjects == ["test.a", "test.b"]

    def msg(subject: str, key: str, seq: int, delivered: int = 1) -> Delivered:
        m = Delivered(key, seq, delivered)
        m.subject = subject
        return m

    # The same key on both subjects is two events for the inbox: each subscription claims its own.
    batch = [msg("test.a", "1", 1), msg("test.b", "1", 2), msg("test.a", "2", 3), msg("test.b", "3", 4)]
    await consumer.process(batch)  # type: ignore[arg-type]
    assert calls == [("preload a", ["1", "2"]), ("a", "1"), ("b", "1"), ("a", "2"), ("b", "3")]
    assert commits == [5] * 4  # every effect in one commit
    assert all(m.acked for m in batch)
    assert consumer.handled_by == {"svc-test-a": 2, "svc-test-b": 2}

    calls.clear()
    await consumer.process([msg("test.b", "1", 2, delivered=2), msg("test.a", "4", 6)])  # type: ignore[arg-type]
    assert calls == [("preload a", ["4"]), ("a", "4")]
    assert consumer.duplicates_by == {"svc-test-a": 0, "svc-test-b": 1}
    async with db.sessionmaker() as s:
        rows = (await s.execute(select(db.inbox.c.consumer, db.inbox.c.event_id))).all()
    assert sorted(map(tuple, rows)) == [
        ("svc-test-a", "1"),
        ("svc-test-a", "2"),
        ("svc-test-a", "4"),
        ("svc-test-b", "1"),
        ("svc-test-b", "3"),
    ]
    await db.dispose()


def test_a_services_subscriptions_share_one_consumer_per_stream_unless_their_filters_overlap() -> None:
    async def handle(ev: Any, uow: Any) -> None:
        return None

    def sub(subject: str, stream: str) -> Subscription:
        return Subscription("svc", subject, stream, handle, parse=lambda m: m, key=lambda ev, m: "")

    subs = [sub("a.x.v1", "A"), sub("b.x.v1", "B"), sub("a.y.v2.>", "A"), sub("a.y.v2.north", "A"), sub("a.z.v1", "A")]
    groups = consumed_by_stream("svc", subs)
    assert [(g.durable, g.subjects) for g in groups] == [
        ("svc-from-a", ["a.x.v1", "a.y.v2.>", "a.z.v1"]),
        ("svc-b-x-v1", ["b.x.v1"]),  # alone on its stream: the name it always had
        ("svc-a-y-v2-north", ["a.y.v2.north"]),  # overlaps a.y.v2.>: a consumer of its own
    ]
    assert groups[0].route("a.y.v2.south.team") is subs[2] and groups[0].route("a.q.v1") is None
