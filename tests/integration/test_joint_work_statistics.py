"""Joint-work statistics per municipality and month on a real nats-server: time from contact to the
first joint meeting (median and p90), invited against attended, families' feedback (a guardian's own
answer and a worker's record of one), the recorded adoption stage beside what actually happens, and
onward-service start delays. Kept live by the meetings service and rebuilt from the streams: the
rebuilt read model, stored in the meetings database, is served by the same query and equals the live
one exactly. Served as JSON, CSV and an SVG chart in fi, sv and en, to a statistician's token."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from sqlalchemy import select

from infra.ops import rebuild_and_store
from services.meetings.adapters import audit_log
from services.meetings.projections import JointWorkRebuild
from shared import pseudonyms
from shared.client import call
from shared.clock import HELSINKI, FixedClock
from shared.contracts.plans import FollowupOverdue, FollowupRecorded, ServiceStartOverdue, ServiceStatusRecorded
from shared.contracts.referral import ReferralReceived
from tests.conftest import POSTGRES_URL, postgres_reachable, wait_for
from tests.support.identity import GUARDIAN_HETU, OTHER_GUARDIAN_HETU
from tests.support.staff import TEAM, publish, relation_known
from tests.support.system import EventLog, running

pytestmark = [pytest.mark.integration]

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # a Friday
MON9 = datetime(2026, 11, 23, 9, 0, tzinfo=HELSINKI)
TUE9 = datetime(2026, 11, 24, 9, 0, tzinfo=HELSINKI)


def received(received_at: datetime, hetu: str) -> ReferralReceived:
    return ReferralReceived(
        producer="referral",
        case_id=uuid4(),
        referral_id=uuid4(),
        submission_id=f"s-{uuid4().hex[:6]}",
        channel="concern_with_family",
        municipality="Testilä",
        received_at=received_at,
        language="fi",
        interpreter_needed=False,
        urgent=False,
        statutory=False,
        child_count=1,
        consent_to_convene=True,
        referrer_type="early_childhood_education",
        contacts=[{"contact_id": "guardian-1", "role": "guardian", "email": "g1@example.com"}],
        guardian_keys=[pseudonyms.person_key(hetu)],
        team_id=TEAM,  # the routing's team, as the referral service publishes it
    )


def cmd(**kw: Any) -> dict[str, Any]:
    return {"command_id": str(uuid4()), **kw}


def convene(case_id: Any, starts: datetime) -> dict[str, Any]:
    return cmd(
        case_id=str(case_id),
        starts_at=starts.isoformat(),
        ends_at=(starts + timedelta(hours=1)).isoformat(),
        room="Room 1",
        participants=[
            {"participant_id": "guardian-1", "kind": "family", "role": "guardian"},
            {"participant_id": "staff-psy", "kind": "professional", "role": "psychologist"},
        ],
    )


def codes(reply: Any) -> list[str]:
    return [e.code for e in reply.errors]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database(request, staff_settings):  # type: ignore[no-untyped-def]
    """The meetings service on a SQLite file, or on its own PostgreSQL database."""
    if request.param == "sqlite":
        yield staff_settings
        return
    if not postgres_reachable():
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    admin = await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""))
    name = f"koolle_t_{uuid4().hex[:10]}_meetings"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield staff_settings.model_copy(update={"meetings_database_url": f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"})
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_joint_work_figures_are_live_served_three_ways_and_a_stored_rebuild_matches_them_exactly(  # type: ignore[no-untyped-def]
    database, nc, clean_streams, identity, worker_token
):
    log = await EventLog().attach(nc, ("meeting.>",))
    w = worker_token
    clock = FixedClock(NOW)
    async with running(database, "meetings", clock=clock) as svcs:
        svc = svcs["meetings"]
        a = received(NOW - timedelta(days=1), GUARDIAN_HETU)  # contact Thu; first meeting Mon: 3.875 days
        b = received(NOW - timedelta(days=3), OTHER_GUARDIAN_HETU)  # contact Tue; first meeting next Tue: 6.875 days
        for ev in (a, b):
            await publish(nc, ev)
        await relation_known([svc], a.case_id, "guardians")

        async def convened(case_id: Any, starts: datetime) -> str:
            async def ok() -> str | None:
                r = await call(nc, "cmd.meetings.convene.v2", convene(case_id, starts), token=w)
                return r.id if r.ok else None

            return await wait_for(ok)

        meeting_a, meeting_b = await convened(a.case_id, MON9), await convened(b.case_id, TUE9)

        # Feedback only on a meeting that was held.
        early = cmd(case_id=str(a.case_id), meeting_id=meeting_a, rating=5, felt_heard=True)
        assert codes(await call(nc, "cmd.meetings.record_feedback.v1", early, token=w)) == ["not_held"]

        clock.at = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
        for case, meeting, family_came in ((a, meeting_a, True), (b, meeting_b, False)):
            held = await call(
                nc,
                "cmd.meetings.record_held.v2",
                cmd(
                    case_id=str(case.case_id),
                    meeting_id=meeting,
                    attendance=[
                        {"participant_id": "guardian-1", "present": family_came},
                        {"participant_id": "staff-psy", "present": True},
                    ],
                    child_heard=True,
                    responsible_worker_ids=["staff-psy"],
                ),
                token=w,
            )
            assert held.ok, held.errors

        # The family's own answer (a guardian's token), and a worker's record of the family's answer.
        guardian = identity.guardian(GUARDIAN_HETU)
        mine = await call(
            nc,
            "cmd.meetings.record_feedback.v1",
            cmd(case_id=str(a.case_id), meeting_id=meeting_a, rating=5, felt_heard=True),
            token=guardian,
        )
        assert mine.ok, mine.errors
        not_mine = cmd(case_id=str(b.case_id), meeting_id=meeting_b, rating=1, felt_heard=False)
        assert codes(await call(nc, "cmd.meetings.record_feedback.v1", not_mine, token=guardian)) == ["forbidden"]
        for case, meeting, rating, heard in ((a, meeting_a, 4, True), (b, meeting_b, 2, False)):
            given = cmd(case_id=str(case.case_id), meeting_id=meeting, rating=rating, felt_heard=heard)
            reply = await call(nc, "cmd.meetings.record_feedback.v1", given, token=w)
            assert reply.ok, reply.errors
        feedback = await wait_for(lambda: f if len(f := log.of("meeting.feedback_recorded")) == 3 else None)
        assert sorted((f["given_by"], f["rating"], f["felt_heard"]) for f in feedback) == [
            ("family", 5, True),
            ("worker", 2, False),
            ("worker", 4, True),
        ]
        assert all(f["municipality"] == "Testilä" and "comment" not in f for f in feedback)

        # The adoption stage: a statistician, then a team lead; a worker may not; a municipality
        # the roster does not know is refused.
        stage = cmd(municipality="Testilä", stage="planning")
        assert codes(await call(nc, "cmd.meetings.record_adoption_stage.v1", stage, token=w)) == ["forbidden"]
        first = await call(nc, "cmd.meetings.record_adoption_stage.v1", stage, token=identity.statistician())
        assert first.ok and first.data == {"municipality": "Testilä", "stage": "planning", "previous_stage": None}
        lead = identity.team_lead("lead-1", TEAM)
        then = await call(nc, "cmd.meetings.record_adoption_stage.v1", cmd(municipality="Testilä", stage="trial"), token=lead)
        assert then.ok and then.data["previous_stage"] == "planning"
        unknown = cmd(municipality="Ei-kuntaa", stage="trial")
        assert codes(await call(nc, "cmd.meetings.record_adoption_stage.v1", unknown, token=lead)) == ["unknown_municipality"]
        stages = await wait_for(lambda: s if len(s := log.of("meeting.adoption_stage_recorded")) == 2 else None)
        assert [(s["stage"], s["previous_stage"], s["recorded_by"]) for s in stages] == [
            ("planning", None, "stats-1"),
            ("trial", "planning", "lead-1"),
        ]
        async with svc.uow() as uow:
            audited = (await uow.execute(select(audit_log).where(audit_log.c.action == "record_adoption_stage"))).all()
        assert [(r.actor, r.scope, r.purpose) for r in audited] == [
            ("stats-1", "municipality:Testilä", "none -> planning"),
            ("lead-1", "municipality:Testilä", "planning -> trial"),
        ]

        # What the plans service reports: one follow-up recorded, one overdue; one onward service
        # started three days late, another not started by its day.
        plan = uuid4()
        for ev in (
            FollowupRecorded(
                producer="plans", case_id=a.case_id, occurred_at=NOW, plan_id=plan, plan_version=1, recorded_by="staff-psy"
            ),
            FollowupOverdue(
                producer="plans",
                case_id=b.case_id,
                plan_id=uuid4(),
                plan_version=1,
                due_at=NOW - timedelta(days=2),
                responsible_worker_ids=["staff-psy"],
            ),
            ServiceStatusRecorded(
                producer="plans",
                case_id=a.case_id,
                plan_id=plan,
                service_id=uuid4(),
                status="started",
                previous_status="accepted",
                on=date(2026, 11, 20),
                start_by=date(2026, 11, 17),
                days_late=3,
                recorded_by="staff-psy",
            ),
            ServiceStartOverdue(
                producer="plans",
                case_id=b.case_id,
                plan_id=uuid4(),
                service_id=uuid4(),
                start_by=date(2026, 11, 18),
                responsible_worker_ids=["staff-psy"],
                family_contact_ids=["guardian-1"],
            ),
        ):
            await publish(nc, ev)
        stats = identity.statistician()

        async def figures() -> list[dict[str, Any]] | None:
            reply = await call(nc, "query.meetings.joint_work_statistics.v1", {}, token=stats)
            assert reply.ok, reply.errors
            rows = reply.data["rows"]
            done = rows and rows[0]["feedback_given"] == 3 and rows[0]["services_start_overdue"] == 1
            return rows if done and rows[0]["followups_overdue"] == 1 and rows[0]["services_started"] == 1 else None

        rows = await wait_for(figures)
        assert rows == [
            {
                "municipality": "Testilä",
                "month": "2026-11",
                "first_meetings": 2,
                "contact_to_first_meeting_median_days": 5.38,
                "contact_to_first_meeting_p90_days": 6.58,
                "meetings_held": 2,
                "invited": 4,
                "attended": 3,
                "attendance_share": 0.75,
                "invited_per_meeting": 2,
                "attended_per_meeting": 1.5,
                "meetings_fully_attended": 1,
                "invited_by_kind": {"family": 2, "professional": 2},
                "attended_by_kind": {"family": 1, "professional": 2},
                "meetings_with_family": 1,
                "feedback_given": 3,
                "feedback_mean_rating": 3.67,
                "felt_heard_share": 0.667,
                "adoption_stage": "trial",
                "family_present_share": 0.5,
                "followups_recorded": 1,
                "followups_overdue": 1,
                "followups_on_time_share": 0.5,
                "practice_indicator": 0.5,
                "services_started": 1,
                "services_started_late": 1,
                "service_start_delay_mean_days": 3,
                "service_start_delay_max_days": 3,
                "services_start_overdue": 1,
            }
        ]

        # The rebuild from the streams equals the live read model key by key; stored in the meetings
        # database in place of the live rows, the same query serves the same answer.
        async with svc.uow() as uow:
            live = await uow.meetings.all_statistics_facts()  # type: ignore[attr-defined]
        built = await JointWorkRebuild.rebuild(nc.jetstream())
        assert built.model.facts == live and built.unreadable == 0
        async with svc.uow() as uow:
            await uow.meetings.replace_statistics_facts({})  # type: ignore[attr-defined]
            await uow.commit()
        assert (await call(nc, "query.meetings.joint_work_statistics.v1", {}, token=stats)).data["rows"] == []
        # As `python -m infra.ops rebuild joint-work-statistics` does it: rebuilt, then stored.
        stored = await rebuild_and_store("joint-work-statistics", nc, database)
        assert stored.model.facts == live
        served = await call(nc, "query.meetings.joint_work_statistics.v1", {}, token=stats)
        assert served.data["rows"] == rows

        as_csv = await call(
            nc, "query.meetings.joint_work_statistics.v1", {"format": "csv", "municipality": "Testilä"}, token=stats
        )
        (line,) = list(csv.DictReader(io.StringIO(as_csv.data["csv"])))
        assert (line["invited_family"], line["attended_family"], line["adoption_stage"], line["practice_indicator"]) == (
            "2",
            "1",
            "trial",
            "0.5",
        )
        titles = {"fi": "Yhteinen työ perheiden kanssa", "sv": "Gemensamt arbete med familjer", "en": "Joint work with families"}
        stage_names = {"fi": "kokeilu käynnissä", "sv": "försök pågår", "en": "trial running"}
        indicator = {"fi": "Toteutuminen (0–1)", "sv": "Förverkligande (0–1)", "en": "In practice (0–1)"}
        for lang, title in titles.items():
            chart = await call(nc, "query.meetings.joint_work_statistics.v1", {"format": "svg", "language": lang}, token=stats)
            assert chart.data["content_type"] == "image/svg+xml" and chart.data["svg"].startswith("<svg")
            assert f"<title>{title}</title>" in chart.data["svg"] and stage_names[lang] in chart.data["svg"]
            assert indicator[lang] in chart.data["svg"]  # the recorded stage beside what actually happens
        # Aggregates only: no case, meeting or person id in any answer.
        answers = str(as_csv.data) + chart.data["svg"] + str(served.data)
        assert not any(x in answers for x in (str(a.case_id), str(b.case_id), meeting_a, meeting_b, "guardian-1", "staff-psy"))
