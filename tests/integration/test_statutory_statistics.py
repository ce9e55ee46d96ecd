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

from infra.ops import rebuild_and_store
from services.referral.config import ReferralConfig
from services.referral.projections import StatutoryRebuild
from shared.calendar import helsinki_date
from shared.case_access import CaseAccess
from shared.client import call, submit_referral
from shared.settings import Settings
from tests.conftest import wait_for
from tests.support.data import submission
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
        started = await call(nc, "cmd.referral.start_assessment.v1", cmd(case_id=ids[0], social_worker_id="sw-fi"), token=sw)
        assert started.ok, started.errors
        done = await call(
            nc,
            "cmd.referral.complete_assessment.v1",
            cmd(case_id=ids[0], social_worker_id="sw-fi", outcome="services_started"),
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
