"""Published outbox rows leave the table after their retention (``KOOLLE_OUTBOX_RETENTION_HOURS``);
a row not yet published stays, however old. On a real nats-server, with SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats
import pytest
from sqlalchemy import func, select

from services.plans.adapters import PlansUnitOfWork, metadata
from shared.clock import FixedClock
from shared.messaging.relay import OutboxRelay
from shared.observability import ServiceMetrics
from shared.storage.database import Database
from tests.conftest import wait_for
from tests.support.data import consent_given, referral_received
from tests.support.databases import KINDS, fresh_database

pytestmark = [pytest.mark.integration]

WEEK = timedelta(days=7)


@pytest.fixture(params=KINDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with fresh_database(request.param, metadata, tmp_path, "plans") as database:
        yield database


@pytest.fixture
def js(nc: nats.NATS, clean_streams: None) -> nats.js.JetStreamContext:
    """The session's nats-server (conftest), its streams empty."""
    return nc.jetstream()


async def emit(db: Database, n: int, *, unpublishable: bool = False) -> None:
    async with PlansUnitOfWork(db) as uow:
        for i in range(n):
            uow.emit(referral_received() if i % 2 else consent_given())
        if unpublishable:
            uow.emit(referral_received(), subject="nostream.test.v1")  # no stream takes it: never published
        await uow.commit()


async def publish(relay: OutboxRelay) -> None:
    try:
        await relay.flush_once()
    except Exception:  # noqa: BLE001, S110 - the unpublishable row; the others went out
        pass
    await relay._mark_pending()


async def rows(db: Database) -> tuple[int, int]:
    """(published rows, unpublished rows) in the outbox."""
    async with db.sessionmaker() as s:
        sent = await s.scalar(select(func.count()).select_from(db.outbox).where(db.outbox.c.sent_at.is_not(None)))
        unsent = await s.scalar(select(func.count()).select_from(db.outbox).where(db.outbox.c.sent_at.is_(None)))
    return int(sent or 0), int(unsent or 0)


async def test_published_rows_past_their_retention_are_deleted_oldest_first_and_unpublished_ones_stay(db, js):  # type: ignore[no-untyped-def]
    clock = FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    relay = OutboxRelay(db, js, keep=WEEK, now=clock.now)
    await emit(db, 30, unpublishable=True)  # 30 events, 15 with a private directory copy, and one stuck row
    db.handoff.clear()  # published by the scan, as after a restart
    await publish(relay)
    assert await rows(db) == (45, 1)

    clock.advance(days=5)
    await emit(db, 10)
    db.handoff.clear()
    await publish(relay)
    assert await rows(db) == (60, 1)

    # Two days later the first rows are a week old; the later ones are not. Rounds of 7 rows.
    clock.advance(days=2, seconds=1)
    assert await relay.purge_published(clock.now() - WEEK, batch=7) == 45
    assert await rows(db) == (15, 1)  # the stuck row is older than a week, and still there

    clock.advance(days=5)
    assert await relay.purge_published(clock.now() - WEEK) == 15
    assert await rows(db) == (0, 1)
    assert await relay.purge_published(clock.now() - WEEK) == 0


async def test_a_running_relay_deletes_what_is_past_retention_when_it_starts_and_counts_it(db, js):  # type: ignore[no-untyped-def]
    clock = FixedClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    await emit(db, 20)
    db.handoff.clear()
    await publish(OutboxRelay(db, js, now=clock.now))  # an earlier run, which kept everything
    assert await rows(db) == (30, 0)

    clock.advance(days=8)
    metrics = ServiceMetrics("plans")
    relay = OutboxRelay(db, js, keep=WEEK, now=clock.now, poll_seconds=0.05, metrics=metrics)

    async def emptied() -> bool:
        return await rows(db) == (0, 0)

    async def counted() -> bool:  # what operators scrape, once the purge's last round is done
        return b"koolle_outbox_purged_total 30.0" in await metrics.render()

    task = asyncio.create_task(relay.run())
    try:
        await wait_for(emptied)
        await wait_for(counted)
        await emit(db, 4)  # new rows go out and stay, marked with the relay's clock
        await wait_for(lambda: relay.published == 6)
        await relay._mark_pending()
        assert await rows(db) == (6, 0)
    finally:
        relay.stop()
        await task
