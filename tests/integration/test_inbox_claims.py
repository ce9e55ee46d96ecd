"""The inbox on real databases: a batch of first deliveries records its claims with its other writes
(on PostgreSQL in one statement with them), and an event stored twice still takes effect once
(shared/storage/inbox.py, shared/messaging/consumer.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, String, Table, select
from sqlalchemy.exc import IntegrityError

from shared.messaging.consumer import EventConsumer
from shared.messaging.subscription import Subscription
from shared.storage.database import Database
from shared.storage.tables import messaging_tables
from shared.storage.uow import UnitOfWork
from tests.support.databases import KINDS, fresh_database, statements_sent
from tests.support.delivered import Delivered

pytestmark = pytest.mark.integration

md = MetaData()
messaging_tables(md)
effects = Table("inbox_effects", md, Column("event_id", String(36), primary_key=True), Column("note", String(20)))


@pytest.fixture(params=KINDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    async with fresh_database(request.param, md, tmp_path, "inbox") as d:
        yield d


def consumer_of(db: Database, preloaded: list[list[str]]) -> tuple[EventConsumer, Subscription]:
    async def handler(ev: str, uow: UnitOfWork) -> None:
        uow.insert_later(effects, {"event_id": ev, "note": "handled"})

    async def preload(events: list[str], uow: UnitOfWork) -> None:
        preloaded.append(sorted(events))
        await uow.rows(effects, event_id="none")  # a read, as a real preload makes

    sub = Subscription(
        "svc", "test.subject", "TEST", handler, parse=lambda m: m.data.decode(), key=lambda ev, m: ev, preload=preload
    )
    return EventConsumer(db, None, sub, lambda: UnitOfWork(db), None), sub  # type: ignore[arg-type]


async def handle(consumer: EventConsumer, sub: Subscription, msgs: list[Delivered]) -> None:
    await consumer._handle_batch([(m, sub, sub.parse(m)) for m in msgs])  # type: ignore[arg-type]


async def stored(db: Database) -> tuple[list[str], list[str]]:
    async with UnitOfWork(db) as uow:
        done = await uow.scalars(select(effects.c.event_id).order_by(effects.c.event_id))
        claimed = await uow.scalars(select(db.inbox.c.event_id).order_by(db.inbox.c.event_id))
    return done, claimed


async def test_an_event_stored_twice_takes_effect_once_when_its_copy_comes_as_a_first_delivery(db: Database) -> None:
    preloaded: list[list[str]] = []
    consumer, sub = consumer_of(db, preloaded)
    first = [Delivered("a", 1), Delivered("b", 2)]
    await handle(consumer, sub, first)
    assert consumer.careful_retries == 0 and await stored(db) == (["a", "b"], ["a", "b"])

    # b again, as a new message of the stream (published again after the dedup window).
    again = [Delivered("b", 3), Delivered("c", 4)]
    await handle(consumer, sub, again)
    assert await stored(db) == (["a", "b", "c"], ["a", "b", "c"])
    assert consumer.careful_retries == 1  # the commit with b's claim failed; the batch was claimed first then
    assert consumer.handled == 4 and consumer.duplicates == 1
    assert preloaded == [["a", "b"], ["b", "c"], ["c"]]  # the careful way preloads only what is new
    assert all(m.acked for m in first + again)


async def test_a_batch_holding_a_redelivery_is_claimed_first_and_nothing_is_rolled_back(db: Database) -> None:
    preloaded: list[list[str]] = []
    consumer, sub = consumer_of(db, preloaded)
    await handle(consumer, sub, [Delivered("a", 1)])
    await handle(consumer, sub, [Delivered("a", 1, delivered=2), Delivered("b", 2)])  # a's ack was lost
    assert consumer.careful_retries == 0
    assert consumer.duplicates == 1 and await stored(db) == (["a", "b"], ["a", "b"])
    assert preloaded == [["a"], ["b"]]


@pytest.mark.postgres
@pytest.mark.parametrize("db", [KINDS[1]], indirect=True)
async def test_a_batch_of_first_deliveries_is_two_round_trips_on_postgresql(db: Database) -> None:
    consumer, sub = consumer_of(db, [])
    await handle(consumer, sub, [Delivered("warm", 1)])  # the connection is open and its statements prepared
    with statements_sent() as sent:
        await handle(consumer, sub, [Delivered(k, 2 + i) for i, k in enumerate("abc")])
    # The preload's read, then one statement with the effects and the inbox rows: a transaction of
    # its own, so no BEGIN and no COMMIT, and no statement of its own for the claims.
    assert [s.split()[0].rstrip(";") for s in sent] == ["SELECT", "WITH"], sent
    with statements_sent() as sent:
        await handle(consumer, sub, [Delivered("a", 2, delivered=2), Delivered("d", 5)])
    # A redelivery: claimed first, which begins the transaction; the rest goes in it.
    assert [s.split()[0].rstrip(";") for s in sent] == ["BEGIN", "INSERT", "SELECT", "INSERT", "COMMIT"], sent
    assert sent[1].startswith("INSERT INTO inbox") and sent[3].startswith("INSERT INTO inbox_effects")
    assert await stored(db) == (["a", "b", "c", "d", "warm"], ["a", "b", "c", "d", "warm"])


async def test_a_failed_single_statement_commit_keeps_nothing(db: Database) -> None:
    """Without BEGIN the last statement is the transaction: when it fails, none of its writes stay."""
    async with UnitOfWork(db) as uow:
        uow.insert_later(effects, {"event_id": "x", "note": "first"})
        await uow.commit()
    with pytest.raises(IntegrityError):
        async with UnitOfWork(db) as uow:
            await uow.rows(effects, event_id="x")  # a read first, as a preload
            uow.claim_later([("svc", "y")])
            uow.insert_later(effects, [{"event_id": "y", "note": "new"}, {"event_id": "x", "note": "again"}])
            await uow.commit()
    assert await stored(db) == (["x"], [])
