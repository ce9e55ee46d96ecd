"""Plans use cases on a real SQLite file (no broker needed): refusal naming every missing part,
versions, consent-gated sharing and the race of a consent withdrawn between agreement and sharing.

Commands go through the service's real request path (``Service._call``: validation, idempotency,
DomainError -> Reply); consumed events are handed to their handlers as the consumer would."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import select

from services.plans import handlers
from services.plans.bootstrap import bootstrap
from services.plans.domain import FollowupPolicy
from shared.clock import FixedClock
from shared.contracts import Reply
from shared.contracts.meetings import MeetingHeld
from shared.contracts.plans import (
    AgreePlan,
    ClosePlan,
    EffectivenessChartQuery,
    EffectivenessQuery,
    OverdueQuery,
    PlanAgreed,
    PlanQuery,
    PlanRevised,
    PrintablePlanQuery,
    RecordFollowup,
    RevisePlan,
)
from shared.contracts.referral import ConsentGiven, ConsentWithdrawn
from shared.service import Service
from shared.settings import Settings

pytestmark = [pytest.mark.integration]

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
CASE = uuid4()


@pytest.fixture
async def svc(tmp_path) -> AsyncIterator[Service]:  # type: ignore[no-untyped-def]
    s = bootstrap(
        Settings(nats_url="nats://127.0.0.1:1", data_dir=tmp_path),
        FixedClock(NOW),
        FollowupPolicy(reminder_lead=timedelta(days=1), overdue_grace=timedelta(days=2)),
    )
    await s.db.create_all()
    yield s
    await s.db.dispose()


def plan_body(**kw: Any) -> dict[str, Any]:
    body = {
        "command_id": str(uuid4()),
        "case_id": str(CASE),
        "recorded_by": "staff-close",
        "changes_needed": ["Mornings run smoothly"],
        "actions_at_home": [{"what": "Picture schedule", "who": "parent"}],
        "actions_in_everyday_environment": [{"what": "Quiet corner", "who": "ECEC teacher", "where": "Päiväkoti Esimerkki"}],
        "worker_contacts_family": "Phone call on Mondays",
        "family_contacts_worker": "Text message on weekdays",
        "responsible_workers": [
            {
                "worker_id": "staff-close",
                "organisation": "City ECEC",
                "public_service": True,
                "contact": {"contact_id": "staff-close", "role": "responsible_worker", "email": "close@example.com"},
            }
        ],
        "next_contact_at": (NOW + timedelta(days=14)).isoformat(),
        "family_contacts": [{"contact_id": "guardian-1", "role": "guardian", "language": "sv", "email": "g1@example.com"}],
        "other_parties": [
            {
                "party_id": "school-sw",
                "role": "school_social_worker",
                "contact": {"contact_id": "school-sw", "role": "school_social_worker", "email": "ssw@example.com"},
            },
            {"party_id": "fam-counsel", "role": "family_counselling"},
        ],
    }
    body.update(kw)
    return body


async def call(svc: Service, subject: str, model: Any, fn: Any, body: dict[str, Any]) -> Reply:
    return await svc._call(subject, model, fn, json.dumps(body, default=str).encode())


async def deliver(svc: Service, fn: Any, ev: Any) -> None:
    """What the reliable consumer does: handler and commit in one transaction."""
    async with svc.uow() as uow:
        await fn(ev, uow)
        await uow.commit()


async def outbox(svc: Service, prefix: str) -> list[dict[str, Any]]:
    async with svc.db.sessionmaker() as s:
        rows = (await s.execute(select(svc.db.outbox.c.subject, svc.db.outbox.c.payload).order_by(svc.db.outbox.c.seq))).all()
    return [json.loads(r.payload) for r in rows if r.subject.startswith(prefix)]


def consent(recipient: str, **kw: Any) -> ConsentGiven:
    return ConsentGiven(
        producer="referral",
        case_id=CASE,
        consent_id=uuid4(),
        purpose="share_plan",
        recipient=recipient,
        given_by="guardian-1",
        recorded_by="staff-close",
        **kw,
    )


def withdrawal(c: ConsentGiven) -> ConsentWithdrawn:
    return ConsentWithdrawn(
        producer="referral",
        case_id=CASE,
        consent_id=c.consent_id,
        purpose="share_plan",
        recipient=c.recipient,
        withdrawn_by="guardian-1",
        recorded_by="staff-close",
    )


async def agree(svc: Service, **kw: Any) -> tuple[str, PlanAgreed]:
    reply = await call(svc, "cmd.plans.agree.v1", AgreePlan, handlers.agree_plan, plan_body(**kw))
    assert reply.ok, reply.errors
    agreed = [e for e in await outbox(svc, "plan.agreed") if e["plan_id"] == reply.id]
    return reply.id, PlanAgreed.model_validate(agreed[-1])  # type: ignore[return-value]


async def shares(svc: Service) -> dict[str, dict[str, Any]]:
    return {e["recipient_id"]: e for e in await outbox(svc, "plan.shared")}


# -- refusal and versions -------------------------------------------------------------------------


async def test_a_plan_missing_parts_is_refused_naming_all_of_them(svc: Service) -> None:
    body = plan_body(
        changes_needed=[],
        actions_at_home=[],
        actions_in_everyday_environment=[{"what": "x", "who": " "}],
        actions_elsewhere=[{"what": "Peer group", "who": "parent"}],
        worker_contacts_family=" ",
        responsible_workers=[],
    )
    del body["family_contacts_worker"], body["next_contact_at"]
    reply = await call(svc, "cmd.plans.agree.v1", AgreePlan, handlers.agree_plan, body)
    assert not reply.ok
    assert [(e.field, e.code) for e in reply.errors] == [
        ("changes_needed", "plan_incomplete"),
        ("actions_in_everyday_environment.0.who", "plan_incomplete"),
        ("actions_elsewhere.0.where", "plan_incomplete"),
        ("worker_contacts_family", "plan_incomplete"),
        ("family_contacts_worker", "plan_incomplete"),
        ("responsible_workers", "plan_incomplete"),
        ("next_contact_at", "plan_incomplete"),
    ]
    assert all(set(e.message) == {"fi", "sv", "en"} for e in reply.errors)
    assert await outbox(svc, "") == [], "a refused plan leaves nothing behind"


async def test_revisions_keep_every_version_queryable_and_close_cancels_timers(svc: Service) -> None:
    plan_id, _ = await agree(svc)
    revised = plan_body(changes_needed=["Evenings calmer"], next_contact_at=(NOW + timedelta(days=21)).isoformat())
    for k in ("case_id",):
        del revised[k]
    reply = await call(
        svc, "cmd.plans.revise.v1", RevisePlan, handlers.revise_plan, {**revised, "plan_id": plan_id, "expected_version": 1}
    )
    assert reply.ok and reply.data == {"version": 2}
    stale = await call(
        svc,
        "cmd.plans.revise.v1",
        RevisePlan,
        handlers.revise_plan,
        {**revised, "command_id": str(uuid4()), "plan_id": plan_id, "expected_version": 1},
    )
    assert not stale.ok and stale.errors[0].code == "version_conflict"

    v1 = await call(
        svc, "query.plans.plan.v1", PlanQuery, handlers.plan_detail, {"plan_id": plan_id, "version": 1, "requested_by": "t"}
    )
    v2 = await call(svc, "query.plans.plan.v1", PlanQuery, handlers.plan_detail, {"plan_id": plan_id, "requested_by": "t"})
    assert v1.data["plan"]["changes_needed"] == ["Mornings run smoothly"]  # type: ignore[index]
    assert v2.data["plan"]["changes_needed"] == ["Evenings calmer"] and v2.data["current_version"] == 2  # type: ignore[index]
    assert [v["version"] for v in v2.data["versions"]] == [1, 2]  # type: ignore[index]
    assert [e["plan_version"] for e in await outbox(svc, "plan.revised")] == [2]

    closed = await call(
        svc,
        "cmd.plans.close.v1",
        ClosePlan,
        handlers.close_plan,
        {"command_id": str(uuid4()), "plan_id": plan_id, "recorded_by": "staff-close", "outcome": "goals_met"},
    )
    assert closed.ok
    assert (await outbox(svc, "plan.closed"))[0]["outcome"] == "goals_met"
    async with svc.db.sessionmaker() as s:
        purges = (await s.execute(select(svc.db.outbox.c.subject).where(svc.db.outbox.c.op == "cancel_timer"))).scalars().all()
    assert set(purges) >= {f"timers.plans.{k}.{plan_id}" for k in ("reminder", "followup", "grace")}
    again = await call(
        svc, "cmd.plans.revise.v1", RevisePlan, handlers.revise_plan, {**revised, "command_id": str(uuid4()), "plan_id": plan_id}
    )
    assert not again.ok and again.errors[0].code == "plan_closed"


# -- sharing --------------------------------------------------------------------------------------


async def test_consent_withdrawn_between_agreement_and_sharing_stops_the_share(svc: Service) -> None:
    given = consent("school-sw")
    await deliver(svc, handlers.on_consent_given, given)
    plan_id, agreed = await agree(svc)  # the plan is agreed while the consent is on record ...
    assert await shares(svc) == {}, "sharing is a step after the agreement"
    await deliver(svc, handlers.on_consent_withdrawn, withdrawal(given))  # ... and withdrawn before the sharing step
    await deliver(svc, handlers.on_plan_agreed, agreed)

    got = await shares(svc)
    assert set(got) == {"guardian-1", "staff-close"}, "neither the withdrawn nor the never-consented party gets the plan"
    assert got["guardian-1"]["basis"] == "family" and got["guardian-1"]["language"] == "sv"
    assert got["staff-close"]["basis"] == "responsible_worker"
    detail = await call(svc, "query.plans.plan.v1", PlanQuery, handlers.plan_detail, {"plan_id": plan_id, "requested_by": "t"})
    assert detail.data["withheld_for_lack_of_consent"] == ["school-sw", "fam-counsel"]  # type: ignore[index]


async def test_consent_on_record_shares_once_and_nothing_else_travels(svc: Service) -> None:
    given = consent("school-sw")
    await deliver(svc, handlers.on_consent_given, given)
    _, agreed = await agree(svc)
    await deliver(svc, handlers.on_plan_agreed, agreed)
    await deliver(svc, handlers.on_plan_agreed, agreed.model_copy(update={"event_id": uuid4()}))  # a late copy

    got = await shares(svc)
    assert set(got) == {"guardian-1", "staff-close", "school-sw"}
    assert len(await outbox(svc, "plan.shared")) == 3, "each recipient once"
    ssw = got["school-sw"]
    assert ssw["basis"] == "consent" and ssw["consent_id"] == str(given.consent_id)
    assert ssw["contact"]["contact_id"] == "school-sw"
    dumped = json.dumps(ssw)
    assert "g1@example.com" not in dumped and "Mornings" not in dumped, "only the recipient's own contact travels"
    # Withdrawing afterwards stops future shares (a revision), not the one already made.
    await deliver(svc, handlers.on_consent_withdrawn, withdrawal(given))
    body = plan_body()
    del body["case_id"]
    reply = await call(svc, "cmd.plans.revise.v1", RevisePlan, handlers.revise_plan, {**body, "plan_id": agreed.plan_id})
    revised = PlanRevised.model_validate((await outbox(svc, "plan.revised"))[-1])
    await deliver(svc, handlers.on_plan_revised, revised)
    v2 = [e["recipient_id"] for e in await outbox(svc, "plan.shared") if e["plan_version"] == 2]
    assert reply.ok and sorted(v2) == ["guardian-1", "staff-close"]


async def test_consent_given_after_sharing_shares_the_current_version_then(svc: Service) -> None:
    _, agreed = await agree(svc)
    await deliver(svc, handlers.on_plan_agreed, agreed)
    assert "fam-counsel" not in await shares(svc)
    c = consent("fam-counsel")
    await deliver(svc, handlers.on_consent_given, c)
    await deliver(svc, handlers.on_consent_given, c.model_copy(update={"event_id": uuid4()}))
    got = [e for e in await outbox(svc, "plan.shared") if e["recipient_id"] == "fam-counsel"]
    assert len(got) == 1 and got[0]["recipient_role"] == "family_counselling" and got[0]["basis"] == "consent"


async def test_a_withdrawal_that_overtakes_its_consent_still_wins(svc: Service) -> None:
    _, agreed = await agree(svc)
    c = consent("school-sw")
    await deliver(svc, handlers.on_consent_withdrawn, withdrawal(c))  # the two consumers run independently
    await deliver(svc, handlers.on_consent_given, c)
    await deliver(svc, handlers.on_plan_agreed, agreed)
    assert "school-sw" not in await shares(svc)


async def test_expired_or_other_purpose_consent_does_not_share(svc: Service) -> None:
    await deliver(svc, handlers.on_consent_given, consent("school-sw", valid_until=date(2026, 11, 1)))
    other = ConsentGiven(
        producer="referral",
        case_id=CASE,
        consent_id=uuid4(),
        purpose="invite_referrer",
        recipient="fam-counsel",
        given_by="guardian-1",
        recorded_by="staff-close",
    )
    await deliver(svc, handlers.on_consent_given, other)
    _, agreed = await agree(svc)
    await deliver(svc, handlers.on_plan_agreed, agreed)
    assert set(await shares(svc)) == {"guardian-1", "staff-close"}


# -- printable, follow-up record, overdue, effectiveness ----------------------------------------------


async def test_printable_plan_is_the_familys_language_by_default(svc: Service) -> None:
    plan_id, _ = await agree(svc)
    r = await call(
        svc, "query.plans.printable.v1", PrintablePlanQuery, handlers.printable_plan, {"plan_id": plan_id, "requested_by": "t"}
    )
    assert r.ok and r.data["language"] == "sv" and "Gemensam plan" in r.data["html"]  # type: ignore[index]
    r = await call(
        svc,
        "query.plans.printable.v1",
        PrintablePlanQuery,
        handlers.printable_plan,
        {"plan_id": plan_id, "requested_by": "t", "language": "fi"},
    )
    assert "Yhteinen suunnitelma" in r.data["html"]  # type: ignore[index]
    missing = await call(
        svc,
        "query.plans.printable.v1",
        PrintablePlanQuery,
        handlers.printable_plan,
        {"plan_id": plan_id, "requested_by": "t", "version": 7},
    )
    assert not missing.ok and missing.errors[0].code == "not_found"


async def test_followup_recorded_effectiveness_and_overdue(svc: Service) -> None:
    clock: FixedClock = svc.clock  # type: ignore[assignment]
    areas = [
        "child_health_growth_development",
        "child_relationships_safety",
        "child_self_view",
        "child_family_daycare_school_leisure_friends",
        "parenting_relationship_with_child",
        "social_wellbeing_family_environment",
    ]
    meeting = MeetingHeld(
        producer="meetings",
        case_id=CASE,
        meeting_id=uuid4(),
        held_at=NOW - timedelta(hours=1),
        family_present=True,
        child_heard=True,
        attendance=[],
        responsible_worker_ids=["staff-close"],
        wellbeing_scores=dict.fromkeys(areas, 3),
    )
    await deliver(svc, handlers.on_meeting_held, meeting)
    await deliver(svc, handlers.on_meeting_held, meeting)  # idempotent
    plan_id, _ = await agree(svc)

    # Two days and a minute after the due time nothing was recorded: overdue, visible to the team.
    clock.at = NOW + timedelta(days=16, minutes=1)
    od = await call(svc, "query.plans.overdue.v1", OverdueQuery, handlers.overdue_followups, {"requested_by": "team-lead"})
    assert [o["plan_id"] for o in od.data["overdue"]] == [plan_id]  # type: ignore[index]
    mine = await call(
        svc,
        "query.plans.overdue.v1",
        OverdueQuery,
        handlers.overdue_followups,
        {"requested_by": "t", "responsible_worker_id": "someone-else"},
    )
    assert mine.data["overdue"] == []  # type: ignore[index]

    rec = {
        "command_id": str(uuid4()),
        "plan_id": plan_id,
        "recorded_by": "staff-close",
        "what_happened": "Called; mornings better.",
        "wellbeing_scores": {**dict.fromkeys(areas, 5), "child_self_view": 8},
        "followup_meeting": {"roles_needed": ["psychologist"]},
        "next_contact_at": (clock.at + timedelta(days=14)).isoformat(),
    }
    wrong = await call(
        svc, "cmd.plans.record_followup.v1", RecordFollowup, handlers.record_followup, {**rec, "recorded_by": "staff-other"}
    )
    assert not wrong.ok and wrong.errors[0].code == "not_responsible_worker"
    bad = await call(
        svc,
        "cmd.plans.record_followup.v1",
        RecordFollowup,
        handlers.record_followup,
        {**rec, "command_id": str(uuid4()), "wellbeing_scores": {"child_self_view": 11}},
    )
    assert not bad.ok and bad.errors[0].field == "wellbeing_scores.child_self_view"
    ok = await call(svc, "cmd.plans.record_followup.v1", RecordFollowup, handlers.record_followup, rec)
    assert ok.ok, ok.errors
    recorded = (await outbox(svc, "followup.recorded"))[0]
    assert recorded["followup_meeting_requested"] and recorded["wellbeing_scores"]["child_self_view"] == 8
    assert "what_happened" not in recorded and "mornings better" not in json.dumps(recorded)
    meeting_req = (await outbox(svc, "followup.meeting_requested"))[0]
    assert meeting_req["roles_needed"] == ["psychologist"] and set(meeting_req["participant_ids"]) == {
        "guardian-1",
        "staff-close",
    }
    od = await call(svc, "query.plans.overdue.v1", OverdueQuery, handlers.overdue_followups, {"requested_by": "team-lead"})
    assert od.data["overdue"] == []  # type: ignore[index]

    eff = await call(
        svc,
        "query.plans.effectiveness.v1",
        EffectivenessQuery,
        handlers.effectiveness,
        {"case_id": str(CASE), "requested_by": "t"},
    )
    area = eff.data["areas"]["child_self_view"]  # type: ignore[index]
    assert [s["source"] for s in area["series"]] == ["meeting", "followup"] and area["change"] == 5
    chart = await call(
        svc,
        "query.plans.effectiveness_chart.v1",
        EffectivenessChartQuery,
        handlers.effectiveness_chart,
        {"case_id": str(CASE), "requested_by": "t", "kind": "lines", "language": "sv"},
    )
    assert chart.data["content_type"] == "image/svg+xml" and chart.data["svg"].startswith("<svg")  # type: ignore[index]
    none = await call(
        svc,
        "query.plans.effectiveness.v1",
        EffectivenessQuery,
        handlers.effectiveness,
        {"case_id": str(uuid4()), "requested_by": "t"},
    )
    assert not none.ok and none.errors[0].code == "not_found"
