"""Horizontal scaling: two replicas of one service, built by the same bootstrap with the same
settings and database, bound to the same durable consumer. JetStream hands each message to one of
them; the inbox and the outbox's Nats-Msg-Id make sure nothing takes effect twice (two relays may
publish the same outbox row; the stream keeps one copy)."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import asyncpg
import pytest
from sqlalchemy import func, select

from services.referral.adapters import cases, referrals
from services.referral.bootstrap import bootstrap as referral
from shared.client import submit_referral
from shared.service import Service
from tests.conftest import POSTGRES_URL, postgres_reachable, wait_for
from tests.support.data import submission
from tests.support.system import EventLog

pytestmark = [pytest.mark.integration]

N = 60
INTAKE_DURABLE = "referral-intake-referral-v1"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def replica_settings(request, settings):  # type: ignore[no-untyped-def]
    # Small fetch batches so that one replica cannot take every waiting message in one fetch.
    small = {"fetch_batch": 4}
    if request.param == "sqlite":
        yield settings.model_copy(update=small)  # both replicas on the same SQLite file
        return
    if not postgres_reachable():
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    raw = POSTGRES_URL.replace("+asyncpg", "")
    admin = await asyncpg.connect(raw)
    name = f"koolle_t_{uuid4().hex[:10]}_replicas"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield settings.model_copy(update={**small, "referral_database_url": f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"})
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def intake(svc: Service):  # type: ignore[no-untyped-def]
    return next(c for c in svc.consumers if c.durable == INTAKE_DURABLE)


async def test_two_replicas_share_the_work_with_no_double_effect(replica_settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("referral.>",))
    a, b = referral(replica_settings), referral(replica_settings)
    await a.start()
    try:
        await b.start()
        try:
            assert a.settings.database_url("referral") == b.settings.database_url("referral")
            bodies = [submission() for _ in range(N)]
            await asyncio.gather(*(submit_referral(nc, body) for body in bodies))
            await wait_for(lambda: intake(a).handled + intake(b).handled >= N, timeout=30)
            await wait_for(lambda: len(log.of("referral.received")) >= N, timeout=15)
            await asyncio.sleep(0.5)  # let both relays finish any overlapping publishes
            js = nc.jetstream()
            info = await js.consumer_info("INTAKE", INTAKE_DURABLE)
            async with a.db.read_sessionmaker() as session:
                n_cases = (await session.execute(select(func.count()).select_from(cases))).scalar_one()
                n_referrals = (await session.execute(select(func.count()).select_from(referrals))).scalar_one()
            handled = (intake(a).handled, intake(b).handled)
        finally:
            await b.stop()
    finally:
        await a.stop()

    # The work was shared: each replica handled some of the submissions, together every one.
    assert all(h > 0 for h in handled), handled
    assert sum(handled) == N, handled
    assert info.num_pending == 0 and info.num_ack_pending == 0
    # No double effect: one referral and one case per submission, one referral.received each.
    assert n_referrals == N and n_cases == N
    events = log.of("referral.received")
    assert len(events) == N
    assert sorted(e["submission_id"] for e in events) == sorted(body["submission_id"] for body in bodies)
    assert len({e["event_id"] for e in events}) == N
