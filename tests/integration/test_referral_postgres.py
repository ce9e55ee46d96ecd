"""Linking, consent, deadlines and audited queries on PostgreSQL (column lengths and dates enforced)."""

from __future__ import annotations

from uuid import uuid4

import asyncpg
import pytest

from shared.client import call, submit_referral
from tests.conftest import POSTGRES_URL, postgres_reachable, wait_for
from tests.support.data import submission
from tests.support.staff import CHILD_WELFARE_TEAM, relation_known
from tests.support.system import EventLog, running

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.skipif(not postgres_reachable(), reason="no PostgreSQL at 127.0.0.1:5432"),
]


@pytest.fixture
async def referral_pg():  # type: ignore[no-untyped-def]
    raw = POSTGRES_URL.replace("+asyncpg", "")
    admin = await asyncpg.connect(raw)
    name = f"koolle_t_{uuid4().hex[:10]}_referral"
    await admin.execute(f'CREATE DATABASE "{name}"')
    yield f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


async def test_link_consent_assessment_and_queries_on_postgres(staff_settings, nc, clean_streams, referral_pg, identity):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("referral.>", "consent.>", "assessment.>"))
    pg = staff_settings.model_copy(update={"referral_database_url": referral_pg})
    sw = identity.social_worker("sw-1", CHILD_WELFARE_TEAM)  # a child protection notification's team
    lead = identity.team_lead("sw-lead", CHILD_WELFARE_TEAM)
    async with running(pg, "referral") as svcs:
        assert svcs["referral"].db.engine.dialect.name == "postgresql"
        first = submission(channel="child_protection_notification", referrer={"organisation_type": "police"}, urgent=True)
        await submit_referral(nc, first)
        await submit_referral(nc, submission(children=first["children"], consent_to_convene=True))
        (received,) = await wait_for(lambda: log.of("referral.received"))
        (linked,) = await wait_for(lambda: log.of("referral.linked"))
        case_id = received["case_id"]
        assert linked["case_id"] == case_id and linked["repeat_count"] == 2
        await wait_for(lambda: log.of("consent.given"))
        assert received_team(log) == CHILD_WELFARE_TEAM
        await relation_known([svcs["referral"]], case_id)
        started = await call(
            nc,
            "cmd.referral.start_assessment.v2",
            {"command_id": str(uuid4()), "case_id": case_id},
            token=sw,
        )
        assert started.ok, started.errors
        due = await call(
            nc,
            "query.referral.deadlines_due.v2",
            {"working_days": 90, "team_id": CHILD_WELFARE_TEAM, "purpose": "deadline_follow_up"},
            token=lead,
        )
        assert due.ok and [d["deadline"] for d in due.data["deadlines"]] == ["assessment_completion"]
        team = await call(
            nc, "query.referral.team_cases.v2", {"team_id": received_team(log), "purpose": "supervision"}, token=lead
        )
        assert team.ok and [c["case_id"] for c in team.data["cases"]] == [case_id]
        case = await call(nc, "query.referral.case.v2", {"case_id": case_id, "purpose": "case_work"}, token=sw)
        assert case.ok and case.data["repeat_count"] == 2 and case.data["assessment"]["started_on"] is not None
    conn = await asyncpg.connect(referral_pg.replace("+asyncpg", ""))
    try:
        actions = [(r["actor"], r["action"]) for r in await conn.fetch("select actor, action from audit_log order by id")]
        for stmt in ("update audit_log set actor = 'someone-else'", "delete from audit_log"):  # append-only
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(stmt)
    finally:
        await conn.close()
    assert actions == [("sw-lead", "list_deadlines"), ("sw-lead", "list_team_cases"), ("sw-1", "read_case")]


def received_team(log: EventLog) -> str:
    (assigned,) = log.of("referral.assigned")
    return assigned["team_id"]
