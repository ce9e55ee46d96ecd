"""Referrals per municipality, month and channel, with the statutory and urgent ones, on a real
nats-server and on SQLite or PostgreSQL: counted live by the referral service's consumer of
``referral.received`` and rebuilt from the REFERRAL stream. The rebuilt read model, stored in the
referral database in place of the live rows, equals the live one exactly and is served by the same
query, as JSON and CSV, to a statistician's token (aggregates only)."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from infra.ops import rebuild_and_store
from services.referral.projections import ReferralStatistics
from shared.calendar import helsinki_date
from shared.client import call, submit_referral
from shared.settings import Settings
from tests.conftest import POSTGRES_URL, postgres_reachable, wait_for
from tests.support.data import submission
from tests.support.identity import TestIdentity
from tests.support.system import EventLog, running

pytestmark = [pytest.mark.integration]

QUERY = "query.referral.channel_statistics.v1"
CPN = {"channel": "child_protection_notification", "referrer": {"organisation_type": "police", "email": "poliisi@example.com"}}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database(request, settings: Settings, identity: TestIdentity):  # type: ignore[no-untyped-def]
    """The referral service on a SQLite file, or on its own PostgreSQL database."""
    trusted = identity.settings(settings)
    if request.param == "sqlite":
        yield trusted
        return
    if not postgres_reachable():
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    admin = await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""))
    name = f"koolle_t_{uuid4().hex[:10]}_referral"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield trusted.model_copy(update={"referral_database_url": f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"})
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_channel_figures_are_counted_live_and_a_stored_rebuild_from_the_stream_matches_them_exactly(  # type: ignore[no-untyped-def]
    database, nc, clean_streams, identity
):
    log = await EventLog().attach(nc, ("referral.>",))
    stats = identity.statistician()
    now = datetime.now(UTC)
    earlier = now - timedelta(days=20)
    this_month, earlier_month = helsinki_date(now).isoformat()[:7], helsinki_date(earlier).isoformat()[:7]
    async with running(database, "referral") as svcs:
        svc = svcs["referral"]
        for body in (
            submission(),
            submission(urgent=True),
            submission(**CPN),
            submission(submitted_at=earlier.isoformat(), **CPN),
            submission(municipality="Porvoo"),
        ):
            await submit_referral(nc, body)
        await wait_for(lambda: len(log.of("referral.received")) == 5)

        async def served() -> list[dict[str, Any]] | None:
            reply = await call(nc, QUERY, {}, token=stats)
            assert reply.ok, reply.errors
            rows: list[dict[str, Any]] = reply.data["rows"]
            return rows if sum(r["referrals"] for r in rows) == 5 else None

        rows = await wait_for(served)
        expected = [
            {
                "municipality": "Porvoo",
                "month": this_month,
                "channel": "concern_with_family",
                "referrals": 1,
                "statutory": 0,
                "urgent": 0,
            },
            {
                "municipality": "Testilä",
                "month": this_month,
                "channel": "child_protection_notification",
                "referrals": 1,
                "statutory": 1,
                "urgent": 0,
            },
            {
                "municipality": "Testilä",
                "month": this_month,
                "channel": "concern_with_family",
                "referrals": 2,
                "statutory": 0,
                "urgent": 1,
            },
        ]
        earlier_row = {
            "municipality": "Testilä",
            "month": earlier_month,
            "channel": "child_protection_notification",
            "referrals": 1,
            "statutory": 1,
            "urgent": 0,
        }
        if earlier_month == this_month:  # the 20 days back fell in this month: one row with both notifications
            expected[1] = {**expected[1], "referrals": 2, "statutory": 2}
        else:
            expected.insert(1, earlier_row)
        assert rows == expected

        # The rebuild from the stream equals the live read model, row by row.
        async with svc.uow() as uow:
            live = await uow.referrals.channel_counts()  # type: ignore[attr-defined]
        built = await ReferralStatistics.rebuild(nc.jetstream())
        assert built.model.counts == live and built.events == 5 and built.unreadable == 0
        assert built.rows() == rows
        # Stored in the referral database in place of the live rows, the same query serves it.
        async with svc.uow() as uow:
            await uow.referrals.replace_channel_counts({})  # type: ignore[attr-defined]
            await uow.commit()
        assert (await call(nc, QUERY, {}, token=stats)).data["rows"] == []
        stored = await rebuild_and_store("referral-statistics", nc, database)  # as `infra.ops rebuild` does
        assert stored.model.counts == live
        assert (await call(nc, QUERY, {}, token=stats)).data["rows"] == rows
        async with svc.uow() as uow:
            assert await uow.referrals.channel_counts() == live  # type: ignore[attr-defined]

        as_csv = await call(nc, QUERY, {"format": "csv", "municipality": "Testilä", "from_month": this_month}, token=stats)
        parsed = list(csv.DictReader(io.StringIO(as_csv.data["csv"])))
        assert [(r["channel"], r["referrals"], r["statutory"], r["urgent"]) for r in parsed] == [
            (r["channel"], str(r["referrals"]), str(r["statutory"]), str(r["urgent"]))
            for r in expected
            if r["municipality"] == "Testilä" and r["month"] == this_month
        ]
        bad = await call(nc, QUERY, {"from_month": "November"}, token=stats)
        assert not bad.ok and [e.field for e in bad.errors] == ["from_month"]
        # Aggregates only: no case, referral or submission id in any answer.
        ids = [str(r[k]) for r in log.of("referral.received") for k in ("case_id", "referral_id", "submission_id")]
        assert not any(i in str(as_csv.data) + str(rows) for i in ids)

        # Consumers counting into one row at the same moment both count (PostgreSQL: the upsert adds
        # to the row as committed, it does not overwrite it with a stale count).
        key = ("Porvoo", this_month, "concern_with_family")

        async def count_one() -> None:
            async with svc.uow() as uow:
                await uow.referrals.count_referral(key, 1, 0)  # type: ignore[attr-defined]
                await asyncio.sleep(0.01)  # hold the row while the others try
                await uow.commit()

        await asyncio.gather(*(count_one() for _ in range(8)))
        async with svc.uow() as uow:
            assert (await uow.referrals.channel_counts())[key] == [9, 8, 0]  # type: ignore[attr-defined]
