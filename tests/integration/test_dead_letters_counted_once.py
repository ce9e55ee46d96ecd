"""A message two deliveries give up on is one dead letter, counted once (a real nats-server).

A handler blocked past the ack wait gets its message delivered again while it still runs; both
deliveries can then end in a dead letter (one as ``handler_failed``, the next as ``max_deliveries``)."""

from __future__ import annotations

import pytest
from sqlalchemy import MetaData

from shared.messaging.consumer import EventConsumer
from shared.messaging.deadletters import DeadLetters
from shared.messaging.subscription import Subscription
from shared.observability import ServiceMetrics
from shared.storage.tables import messaging_tables
from shared.storage.uow import UnitOfWork
from tests.support.databases import fresh_database

pytestmark = [pytest.mark.integration]


async def test_a_message_dead_lettered_by_two_deliveries_is_stored_and_counted_once(tmp_path, nc, clean_streams) -> None:  # type: ignore[no-untyped-def]
    md = MetaData()
    messaging_tables(md)
    async with fresh_database("sqlite", md, tmp_path, "dead-letters") as db:
        js = nc.jetstream()
        sub = Subscription(
            "test", "meeting.convened.v1", "MEETINGS", lambda ev, uow: None, parse=lambda m: m.data, key=lambda ev, m: "k"
        )
        metrics = ServiceMetrics("test")
        dead = DeadLetters(js, "test")
        consumer = EventConsumer(db, js, sub, lambda: UnitOfWork(db), dead, metrics=metrics)
        before = (await js.stream_info("DEADLETTER")).state.messages
        await js.publish("meeting.convened.v1", b"{}", headers={"Nats-Msg-Id": "twice"})
        # Two deliveries of the one stored message (two pulls stand for the first and the redelivery).
        pulls = [await js.pull_subscribe("meeting.convened.v1", durable=f"dl-twice-{i}", stream="MEETINGS") for i in (1, 2)]
        try:
            first, again = [(await p.fetch(1, timeout=5))[0] for p in pulls]
            await consumer._dead_letter(first, sub.durable, "handler_failed", "boom")
            await consumer._dead_letter(again, sub.durable, "max_deliveries", "delivered more times than allowed")
            assert (await js.stream_info("DEADLETTER")).state.messages == before + 1
            assert dead.count == 1
            counted = {
                s.labels["reason"]: s.value
                for m in metrics.registry.collect()
                if m.name == "koolle_dead_letters"
                for s in m.samples
                if s.name.endswith("_total")
            }
            assert counted == {"handler_failed": 1.0}, counted
        finally:
            for i, p in enumerate(pulls, 1):
                await p.unsubscribe()
                await js.delete_consumer("MEETINGS", f"dl-twice-{i}")
