"""THL's statutory figures per municipality and month, kept live by the referral service from its own
events and rebuilt from the REFERRAL stream: the rebuilt read model equals the live one exactly. Served
as JSON, CSV and an SVG chart in fi, sv and en, to a statistician's token (aggregates only)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import delete, insert, inspect, text

from infra.ops import rebuild_and_store
from services.referral import handlers
from services.referral.adapters import ReferralUnitOfWork, data_migrations, metadata, statistics_facts
from services.referral.config import ReferralConfig
from services.referral.projections import StatutoryRebuild
from services.referral.statistics import StatutoryStatistics
from shared.calendar import helsinki_date
from shared.case_access import CaseAccess
from shared.client import call, submit_referral
from shared.contracts.referral import DecisionRecorded, StatutoryStatisticsQuery
from shared.settings import Settings
from shared.storage.database import Database
from tests.conftest import wait_for
from tests.support.data import referral_received, submission
from tests.support.databases import KINDS, fresh_database
from tests.support.identity import TestIdentity
from tests.support.system import EventLog, running

pytestmark = [pytest.mark.integration]

CPN = {"channel": "child_protection_notification", "referrer": {"organisation_type": "police", "email": "poliisi@example.com"}}
TEAM = ReferralConfig().router().route("Testilä", None, "child_protection_notification")


@pytest.fixture
def settings(settings: Settings, identity: TestIdentity) -> Settings:
    return identity.settings(settings)


def cmd(**kw: Any) -> dict[str, Any]:
    return {"command_id": str(uuid4()), **kw}


async def test_the_statutory_figures_are_live_and_a_rebuild_from_the_stream_matches_them_exactly(  # type: ignore[no-untyped-def]
    settings, nc, clean_streams, identity
):
    log = await EventLog().attach(nc, ("referral.>", "assessment.>"))
    sw = identity.social_worker("sw-fi", TEAM, "Testilä")
    stats = identity.statistician()
    now = datetime.now(UTC)
    async with running(settings, "referral") as svcs:
        svc = svcs["referral"]
        # Two received now, one received 20 days ago (its 7 working days have passed).
        for receipt in (now - timedelta(minutes=5), now - timedelta(minutes=4), now - timedelta(days=20)):
            await submit_referral(nc, submission(submitted_at=receipt.isoformat(), **CPN))
        received = await wait_for(lambda: r if len(r := log.of("referral.received")) == 3 else None)
        ids = [r["case_id"] for r in received]

        async def team_known(case_id: str) -> bool:
            async with svc.uow() as uow:
                (rel,) = await CaseAccess(uow).relations([case_id])
            return bool(rel.teams)

        for cid in ids:
            await wait_for(lambda c=cid: team_known(c))
            reply = await call(nc, "cmd.referral.record_decision.v1", cmd(case_id=cid, outcome="start_assessment"), token=sw)
            assert reply.ok, reply.errors
        decided = await wait_for(lambda: d if len(d := log.of("referral.decision_recorded")) == 3 else None)
        assert [d["within_time"] for d in decided] == [True, True, False]
        started = await call(nc, "cmd.referral.start_assessment.v2", cmd(case_id=ids[0]), token=sw)
        assert started.ok, started.errors
        done = await call(
            nc,
            "cmd.referral.complete_assessment.v2",
            cmd(case_id=ids[0], outcome="services_started"),
            token=sw,
        )
        assert done.ok, done.errors
        moved = await call(
            nc,
            "cmd.referral.transfer_case.v1",
            cmd(case_id=ids[1], team_id="porvoo-child-welfare", municipality="Porvoo"),
            token=sw,
        )
        assert moved.ok, moved.errors
        month = helsinki_date(now).isoformat()[:7]

        async def figures() -> list[dict[str, Any]] | None:
            reply = await call(nc, "query.referral.statistics.v1", {}, token=stats)
            assert reply.ok, reply.errors
            rows = reply.data["rows"]
            return (
                rows
                if sum(r["decisions"] for r in rows) == 3
                and any(r["municipality"] == "Porvoo" for r in rows)
                and any(r["assessments_completed"] for r in rows)
                else None
            )

        rows = await wait_for(figures)
        assert rows == [
            {
                "municipality": "Porvoo",
                "month": month,
                "decisions": 1,
                "decisions_in_time": 1,
                "decisions_in_time_share": 1.0,
                "assessments_completed": 0,
                "assessments_in_time": 0,
                "assessments_in_time_share": None,
            },
            {
                "municipality": "Testilä",
                "month": month,
                "decisions": 2,
                "decisions_in_time": 1,
                "decisions_in_time_share": 0.5,
                "assessments_completed": 1,
                "assessments_in_time": 1,
                "assessments_in_time_share": 1.0,
            },
        ]

        # The rebuild from the stream equals the live read model, case by case.
        async with svc.uow() as uow:
            live = await uow.referrals.all_statistics_facts()  # type: ignore[attr-defined]
        built = await StatutoryRebuild.rebuild(nc.jetstream())
        assert built.model.facts == live and built.unreadable == 0
        assert built.model.figures() == rows
        # Stored in the referral database in place of the live rows, the same query serves it.
        async with svc.uow() as uow:
            await uow.referrals.replace_statistics_facts({})  # type: ignore[attr-defined]
            await uow.commit()
        assert (await call(nc, "query.referral.statistics.v1", {}, token=stats)).data["rows"] == []
        stored = await rebuild_and_store("statutory-statistics", nc, settings)  # as `infra.ops rebuild` does
        assert stored.model.facts == live
        assert (await call(nc, "query.referral.statistics.v1", {}, token=stats)).data["rows"] == rows

        as_csv = await call(nc, "query.referral.statistics.v1", {"format": "csv", "municipality": "Testilä"}, token=stats)
        parsed = list(csv.DictReader(io.StringIO(as_csv.data["csv"])))
        assert [(r["municipality"], r["decisions"], r["decisions_in_time_share"]) for r in parsed] == [("Testilä", "2", "0.5")]
        titles = {"fi": "Lakisääteiset määräajat", "sv": "Lagstadgade tidsfrister", "en": "Statutory time limits"}
        for lang, title in titles.items():
            chart = await call(nc, "query.referral.statistics.v1", {"format": "svg", "language": lang}, token=stats)
            assert chart.data["content_type"] == "image/svg+xml" and chart.data["svg"].startswith("<svg")
            assert f"<title>{title}</title>" in chart.data["svg"] and "Porvoo" in chart.data["svg"]
        # Aggregates only: no case id in any answer.
        assert not any(cid in str(as_csv.data) + chart.data["svg"] for cid in ids)


@pytest.fixture(params=KINDS)
async def referral_db(request, tmp_path):  # type: ignore[no-untyped-def]
    async with fresh_database(request.param, metadata, tmp_path, "referral") as d:
        yield d


async def test_the_counters_are_kept_with_the_facts_in_one_upsert_per_row_and_serve_the_query(referral_db) -> None:  # type: ignore[no-untyped-def]
    """Two cases' events in one transaction and a third in another: the counters add up on both
    databases (the upsert adds to the row as it is at commit), and the query reads only them."""
    cases = [str(uuid4()) for _ in range(3)]
    decided = {
        "producer": "test",
        "outcome": "start_assessment",
        "decided_on": "2026-12-01",
        "social_worker_id": "sw-fi",
        "due_by": "2026-12-03",
        "within_time": True,
        "complete_by": "2027-03-01",
    }
    for batch in (cases[:2], cases[2:]):
        async with ReferralUnitOfWork(referral_db) as uow:
            for c in batch:
                await handlers.on_statistics_event(referral_received(case_id=c), uow)
                await handlers.on_statistics_event(DecisionRecorded(case_id=c, **decided), uow)
            await uow.commit()
    async with ReferralUnitOfWork(referral_db) as uow:
        assert await uow.referrals.statutory_counts() == {("Testilä", "2026-12"): [3, 3, 0, 0]}
        reply = await handlers.statutory_statistics(StatutoryStatisticsQuery(), uow)
    assert [(r["municipality"], r["decisions"], r["decisions_in_time_share"]) for r in reply.data["rows"]] == [
        ("Testilä", 3, 1.0)
    ]


async def test_a_database_from_before_the_counters_gets_them_counted_from_its_facts_once_at_start(referral_db) -> None:  # type: ignore[no-untyped-def]
    """And the receipt index of its rejections table (the operators' newest-first list, the purge at
    the end of retention) is added at the same start."""
    facts = {
        str(uuid4()): {"municipality": "Testilä", "decided_on": "2026-11-30", "decided_in_time": True},
        str(uuid4()): {"municipality": "Porvoo", "decided_on": "2026-12-02", "decided_in_time": False},
        str(uuid4()): {"municipality": "Porvoo", "completed_on": "2026-12-03", "complete_by": "2027-01-01"},
    }
    # What the previous version left: the facts, no counters table, no record of counting them.
    async with referral_db.engine.begin() as conn:
        await conn.execute(insert(statistics_facts), [{"case_id": c, "facts": f} for c, f in facts.items()])
        await conn.execute(text("DROP TABLE statutory_counts"))
        await conn.execute(text("DROP INDEX ix_rejected_submissions_received_at"))
        await conn.execute(delete(data_migrations))
    again = Database(referral_db.url, metadata)
    try:
        await again.create_all()
        async with again.engine.connect() as conn:
            indexes = await conn.run_sync(lambda c: {i["name"] for i in inspect(c).get_indexes("rejected_submissions")})
        assert "ix_rejected_submissions_received_at" in indexes
        async with ReferralUnitOfWork(again) as uow:
            counted = await uow.referrals.statutory_counts()
        assert counted == StatutoryStatistics(facts).counts()
        assert counted == {("Testilä", "2026-11"): [1, 1, 0, 0], ("Porvoo", "2026-12"): [1, 0, 1, 1]}
        # Counted once: a later start leaves the live counters as they are.
        async with again.engine.begin() as conn:
            await conn.execute(text("UPDATE statutory_counts SET decisions = 7 WHERE municipality = 'Testilä'"))
        await again.create_all()
        async with ReferralUnitOfWork(again) as uow:
            assert (await uow.referrals.statutory_counts())[("Testilä", "2026-11")] == [7, 1, 0, 0]
    finally:
        await again.dispose()
