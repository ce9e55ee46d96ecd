"""A lingering consumer on a real nats-server: a trickle's events arrive together after the linger,
are handled in one transaction and acked; nothing is left pending or unacknowledged."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import MetaData

from shared.messaging.consumer import EventConsumer
from shared.messaging.deadletters import DeadLetters
from shared.messaging.pull import LingeringPull
from shared.messaging.subscription import Subscription
from shared.storage.database import Database
from shared.storage.tables import messaging_tables
from shared.storage.uow import UnitOfWork
from tests.conftest import wait_for

pytestmark = [pytest.mark.integration]


async def test_a_trickle_is_gathered_into_one_batch(tmp_path, nc, clean_streams) -> None:  # type: ignore[no-untyped-def]
    md = MetaData()
    messaging_tables(md)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'l.db'}", md)
    await db.create_all()
    js = nc.jetstream()
    batches: list[list[str]] = []

    async def handler(ev: Any, uow: UnitOfWork) -> None:
        if not batches or batches[-1] is None:
            batches.append([])
        batches[-1].append(ev)
        uow.after_commit(lambda: batches.append(None))  # type: ignore[arg-type]

    sub = Subscription("test", "meeting.convened.v1", "MEETINGS", handler, parse=lambda m: m.data.decode(), key=lambda ev, m: ev)
    consumer = EventConsumer(db, js, sub, lambda: UnitOfWork(db), DeadLetters(js, "test"), batch=64, linger=1.0)
    await consumer.bind()
    assert isinstance(consumer._pull, LingeringPull)
    consumer.start()
    try:
        for i in range(5):  # well within the linger of the first, even on a busy machine
            await js.publish("meeting.convened.v1", f"e{i}".encode(), headers={"Nats-Msg-Id": f"l-{i}"})
        await wait_for(lambda: consumer.handled == 5, timeout=5)
        await js.publish("meeting.convened.v1", b"late", headers={"Nats-Msg-Id": "l-late"})
        await wait_for(lambda: consumer.handled == 6, timeout=5)
        assert [b for b in batches if b is not None] == [["e0", "e1", "e2", "e3", "e4"], ["late"]]
        info = await js.consumer_info("MEETINGS", sub.durable)
        assert info.num_pending == 0 and info.num_ack_pending == 0
    finally:
        await consumer.stop()
        await db.dispose()
