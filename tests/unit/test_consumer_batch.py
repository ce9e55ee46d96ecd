"""A pulled batch is claimed in the inbox with one statement: new keys are handled once, keys already
handled (redeliveries) and keys repeated inside the batch are not; nothing is acked before the commit."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from sqlalchemy import MetaData, func, select

from shared.messaging.consumer import EventConsumer
from shared.messaging.subscription import Subscription
from shared.storage.database import Database
from shared.storage.tables import messaging_tables
from shared.storage.uow import UnitOfWork


class FakeMsg:
    def __init__(self, key: str, seq: int) -> None:
        self.data = key.encode()
        self.headers: dict[str, str] = {}
        self.subject = "test.subject"
        self.metadata = SimpleNamespace(sequence=SimpleNamespace(stream=seq), num_delivered=1, stream="TEST", num_pending=0)
        self.acked = False

    async def ack(self) -> None:
        self.acked = True


async def test_a_batch_is_claimed_at_once_and_each_event_takes_effect_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    md = MetaData()
    messaging_tables(md)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", md)
    await db.create_all()
    handled: list[str] = []
    committed: list[list[str]] = []

    async def handler(ev: Any, uow: UnitOfWork) -> None:
        handled.append(ev)
        uow.after_commit(lambda: committed.append(list(handled)))

    sub = Subscription("svc", "test.subject", "TEST", handler, parse=lambda m: m.data.decode(), key=lambda ev, m: ev)
    consumer = EventConsumer(db, None, sub, lambda: UnitOfWork(db), None)  # type: ignore[arg-type]

    first = [FakeMsg(k, i) for i, k in enumerate(["a", "b", "c"])]
    await consumer._handle_batch([(m, sub.parse(m)) for m in first])
    again = [FakeMsg(k, 10 + i) for i, k in enumerate(["b", "d", "d", "a", "e"])]
    await consumer._handle_batch([(m, sub.parse(m)) for m in again])

    assert handled == ["a", "b", "c", "d", "e"]
    assert consumer.handled == 8 and consumer.duplicates == 3  # b, a (earlier batch) and the second d
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
    await consumer._handle_batch([(m, sub.parse(m)) for m in [FakeMsg("a", 1)]])
    calls.clear()
    await consumer._handle_batch([(m, sub.parse(m)) for m in [FakeMsg(k, 10 + i) for i, k in enumerate("abc")]])
    assert calls == [("preload", ["b", "c"]), "b", "c"]
    calls.clear()
    await consumer._handle_batch([(m, sub.parse(m)) for m in [FakeMsg("a", 20)]])  # nothing new: no preload
    assert calls == []
    await db.dispose()
