"""Plans use cases on a real SQLite file (no broker needed): refusal naming every missing part,
versions, consent-gated sharing and the race of a consent withdrawn between agreement and sharing.

Commands go through the service's real request path (``Service._call``: validation, the caller's
token verified against a JWKS over HTTP, the policy, idempotency, DomainError -> Reply); consumed
events are handed to their handlers as the consumer would (also ``referral.assigned``, which gives
the case its team in the case-access read model)."""

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
from services.plans.projections import WellbeingRebuild
from shared.clock import FixedClock
from shared.contracts import Reply
from shared.contracts.meetings import MeetingHeld
from shared.contracts.plans import PlanAgreed, PlanRevised
from shared.contracts.referral import ConsentGiven, ConsentWithdrawn
from shared.service import Service
from shared.settings import Settings
from tests.support.staff import TEAM, assign_in

pytestmark = [pytest.mark.integration]

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
CASE = uuid4()


@pytest.fixture
async def svc(tmp_path, identity) -> AsyncIterator[Service]:  # type: ignore[no-untyped-def]
    s = bootstrap(
        identity.settings(Settings(nats_url="nats://127.0.0.1:1", data_dir=tmp_path)),
        FixedClock(NOW),
        policy=FollowupPolicy(reminder_lead=timedelta(days=1), overdue_grace=timedelta(days=2)),
    )
    await s.db.create_all()
    # The referral service routed the case to the team (the close worker's).
    await assign_in(s, CASE)
    yield s
    await s.db.dispose()


def plan_body(**kw: Any) -> dict[str, Any]:
    body = {
        "command_id": str(uuid4()),
        "case_id": str(CASE),
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


async def call(svc: Service, subject: str, body: dict[str, Any], token: str) -> Reply:
    """The request as the service's subscriber runs it, with the caller's access token."""
    model, fn = svc.handlers[subject]
    return await svc._call(subject, model, fn, json.dumps(body, default=str).encode(), f"Bearer {token}")


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


async def agree(svc: Service, token: str, **kw: Any) -> tuple[str, PlanAgreed]:
    reply = await call(svc, "cmd.plans.agree.v2", plan_body(**kw), token)
    assert reply.ok, reply.errors
    agreed = [e for e in await outbox(svc, "plan.agreed") if e["plan_id"] == reply.id]
    return reply.id, PlanAgreed.model_validate(agreed[-1])  # type: ignore[return-value]


async def shares(svc: Service) -> dict[str, dict[str, Any]]:
    return {e["recipient_id"]: e for e in await outbox(svc, "plan.shared")}


# -- refusal and versions -------------------------------------------------------------------------


async def test_a_plan_missing_parts_is_refused_naming_all_of_them(svc: Service, worker_token: str) -> None:
    body = plan_body(
        changes_needed=[],
        actions_at_home=[],
        actions_in_everyday_environment=[{"what": "x", "who": " "}],
        actions_elsewhere=[{"what": "Peer group", "who": "parent"}],
        worker_contacts_family=" ",
        responsible_workers=[],
    )
    del body["family_contacts_worker"], body["next_contact_at"]
    reply = await call(svc, "cmd.plans.agree.v2", body, worker_token)
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


async def test_revisions_keep_every_version_queryable_and_close_cancels_timers(svc: Service, worker_token: str, identity) -> None:  # type: ignore[no-untyped-def]
    w = worker_token
    plan_id, _ = await agree(svc, w)
    revised = plan_body(changes_needed=["Evenings calmer"], next_contact_at=(NOW + timedelta(days=21)).isoformat())
    colleague = identity.worker("staff-colleague", TEAM)  # another worker of the case's team revises it
    reply = await call(svc, "cmd.plans.revise.v2", {**revised, "plan_id": plan_id, "expected_version": 1}, colleague)
    assert reply.ok and reply.data == {"version": 2}
    stale = await call(
        svc, "cmd.plans.revise.v2", {**revised, "command_id": str(uuid4()), "plan_id": plan_id, "expected_version": 1}, w
    )
    assert not stale.ok and stale.errors[0].code == "version_conflict"

    read = {"case_id": str(CASE), "plan_id": plan_id, "purpose": "case_work"}
    v1 = await call(svc, "query.plans.plan.v2", {**read, "version": 1}, w)
    v2 = await call(svc, "query.plans.plan.v2", read, w)
    assert v1.data["plan"]["changes_needed"] == ["Mornings run smoothly"]  # type: ignore[index]
    assert v2.data["plan"]["changes_needed"] == ["Evenings calmer"] and v2.data["current_version"] == 2  # type: ignore[index]
    assert [v["version"] for v in v2.data["versions"]] == [1, 2]  # type: ignore[index]
    # who recorded each version: the verified caller of that request
    assert (v1.data["plan"]["recorded_by"], v2.data["plan"]["recorded_by"]) == ("staff-close", "staff-colleague")  # type: ignore[index]
    assert [e["plan_version"] for e in await outbox(svc, "plan.revised")] == [2]
    # A plan named with another case than its own (one the worker reaches) is not found there:
    # access was decided for the case named, and the plan is not that case's.
    other = uuid4()
    await assign_in(svc, other)  # the team's case too
    elsewhere = await call(svc, "query.plans.plan.v2", {**read, "case_id": str(other)}, w)
    assert not elsewhere.ok and elsewhere.errors[0].code == "not_found"
    unreached = await call(svc, "query.plans.plan.v2", {**read, "case_id": str(uuid4())}, w)
    assert not unreached.ok and unreached.errors[0].code == "forbidden"

    closed = await call(
        svc,
        "cmd.plans.close.v2",
        {"command_id": str(uuid4()), "case_id": str(CASE), "plan_id": plan_id, "outcome": "goals_met"},
        w,
    )
    assert closed.ok
    assert (await outbox(svc, "plan.closed"))[0]["outcome"] == "goals_met"
    async with svc.db.sessionmaker() as s:
        purges = (await s.execute(select(svc.db.outbox.c.subject).where(svc.db.outbox.c.op == "cancel_timer"))).scalars().all()
    assert set(purges) >= {f"timers.plans.{k}.{plan_id}" for k in ("reminder", "followup", "grace")}
    again = await call(svc, "cmd.plans.revise.v2", {**revised, "command_id": str(uuid4()), "plan_id": plan_id}, w)
    assert not again.ok and again.errors[0].code == "plan_closed"


# -- sharing --------------------------------------------------------------------------------------


async def test_consent_withdrawn_between_agreement_and_sharing_stops_the_share(svc: Service, worker_token: str) -> None:
    given = consent("school-sw")
    await deliver(svc, handlers.on_consent_given, given)
    plan_id, agreed = await agree(svc, worker_token)  # the plan is agreed while the consent is on record ...
    assert await shares(svc) == {}, "sharing is a step after the agreement"
    await deliver(svc, handlers.on_consent_withdrawn, withdrawal(given))  # ... and withdrawn before the sharing step
    await deliver(svc, handlers.on_plan_agreed, agreed)

    got = await shares(svc)
    assert set(got) == {"guardian-1", "staff-close"}, "neither the withdrawn nor the never-consented party gets the plan"
    assert got["guardian-1"]["basis"] == "family" and got["guardian-1"]["language"] == "sv"
    assert got["staff-close"]["basis"] == "responsible_worker"
    detail = await call(
        svc, "query.plans.plan.v2", {"case_id": str(CASE), "plan_id": plan_id, "purpose": "case_work"}, worker_token
    )
    assert detail.data["withheld_for_lack_of_consent"] == ["school-sw", "fam-counsel"]  # type: ignore[index]


async def test_consent_on_record_shares_once_and_nothing_else_travels(svc: Service, worker_token: str) -> None:
    given = consent("school-sw")
    await deliver(svc, handlers.on_consent_given, given)
    _, agreed = await agree(svc, worker_token)
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
    reply = await call(svc, "cmd.plans.revise.v2", {**plan_body(), "plan_id": str(agreed.plan_id)}, worker_token)
    revised = PlanRevised.model_validate((await outbox(svc, "plan.revised"))[-1])
    await deliver(svc, handlers.on_plan_revised, revised)
    v2 = [e["recipient_id"] for e in await outbox(svc, "plan.shared") if e["plan_version"] == 2]
    assert reply.ok and sorted(v2) == ["guardian-1", "staff-close"]


async def test_consent_given_after_sharing_shares_the_current_version_then(svc: Service, worker_token: str) -> None:
    _, agreed = await agree(svc, worker_token)
    await deliver(svc, handlers.on_plan_agreed, agreed)
    assert "fam-counsel" not in await shares(svc)
    c = consent("fam-counsel")
    await deliver(svc, handlers.on_consent_given, c)
    await deliver(svc, handlers.on_consent_given, c.model_copy(update={"event_id": uuid4()}))
    got = [e for e in await outbox(svc, "plan.shared") if e["recipient_id"] == "fam-counsel"]
    assert len(got) == 1 and got[0]["recipient_role"] == "family_counselling" and got[0]["basis"] == "consent"


async def test_a_withdrawal_that_overtakes_its_consent_still_wins(svc: Service, worker_token: str) -> None:
    _, agreed = await agree(svc, worker_token)
    c = consent("school-sw")
    await deliver(svc, handlers.on_consent_withdrawn, withdrawal(c))  # the two consumers run independently
    await deliver(svc, handlers.on_consent_given, c)
    await deliver(svc, handlers.on_plan_agreed, agreed)
    assert "school-sw" not in await shares(svc)


async def test_expired_or_other_purpose_consent_does_not_share(svc: Service, worker_token: str) -> None:
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
    _, agreed = await agree(svc, worker_token)
    await deliver(svc, handlers.on_plan_agreed, agreed)
    assert set(await shares(svc)) == {"guardian-1", "staff-close"}


# -- printable, follow-up record, overdue, effectiveness ----------------------------------------------


async def test_printable_plan_is_the_familys_language_by_default(svc: Service, worker_token: str) -> None:
    plan_id, _ = await agree(svc, worker_token)
    read = {"case_id": str(CASE), "plan_id": plan_id, "purpose": "case_work"}
    r = await call(svc, "query.plans.printable.v2", read, worker_token)
    assert r.ok and r.data["language"] == "sv" and "Gemensam plan" in r.data["html"]  # type: ignore[index]
    r = await call(svc, "query.plans.printable.v2", {**read, "language": "fi"}, worker_token)
    assert "Yhteinen suunnitelma" in r.data["html"]  # type: ignore[index]
    missing = await call(svc, "query.plans.printable.v2", {**read, "version": 7}, worker_token)
    assert not missing.ok and missing.errors[0].code == "not_found"


async def test_followup_recorded_effectiveness_and_overdue(svc: Service, worker_token: str, identity) -> None:  # type: ignore[no-untyped-def]
    clock: FixedClock = svc.clock  # type: ignore[assignment]
    w = worker_token
    lead = identity.team_lead("lead-1", TEAM)
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
    plan_id, _ = await agree(svc, w)

    # Two days and a minute after the due time nothing was recorded: overdue, visible to the team.
    clock.at = NOW + timedelta(days=16, minutes=1)
    od = await call(svc, "query.plans.overdue.v2", {"purpose": "supervision"}, lead)
    assert [o["plan_id"] for o in od.data["overdue"]] == [plan_id]  # type: ignore[index]
    other_team = await call(svc, "query.plans.overdue.v2", {"purpose": "supervision"}, identity.team_lead("lead-2", "else"))
    assert other_team.ok and other_team.data["overdue"] == []  # type: ignore[index]
    mine = await call(svc, "query.plans.overdue.v2", {"purpose": "plan_follow_up", "responsible_worker_id": "someone-else"}, w)
    assert mine.data["overdue"] == []  # type: ignore[index]

    rec = {
        "command_id": str(uuid4()),
        "case_id": str(CASE),
        "plan_id": plan_id,
        "what_happened": "Called; mornings better.",
        "wellbeing_scores": {**dict.fromkeys(areas, 5), "child_self_view": 8},
        "followup_meeting": {"roles_needed": ["psychologist"]},
        "next_contact_at": (clock.at + timedelta(days=14)).isoformat(),
    }
    # Another worker of the team reaches the case but is not the plan's responsible worker.
    wrong = await call(svc, "cmd.plans.record_followup.v2", rec, identity.worker("staff-other", TEAM))
    assert not wrong.ok and wrong.errors[0].code == "not_responsible_worker"
    bad = await call(
        svc, "cmd.plans.record_followup.v2", {**rec, "command_id": str(uuid4()), "wellbeing_scores": {"child_self_view": 11}}, w
    )
    assert not bad.ok and bad.errors[0].field == "wellbeing_scores.child_self_view"
    ok = await call(svc, "cmd.plans.record_followup.v2", rec, w)
    assert ok.ok, ok.errors
    recorded = (await outbox(svc, "followup.recorded"))[0]
    assert recorded["followup_meeting_requested"] and recorded["wellbeing_scores"]["child_self_view"] == 8
    assert recorded["recorded_by"] == "staff-close", "the token's worker"
    assert "what_happened" not in recorded and "mornings better" not in json.dumps(recorded)
    meeting_req = (await outbox(svc, "followup.meeting_requested"))[0]
    assert meeting_req["roles_needed"] == ["psychologist"] and set(meeting_req["participant_ids"]) == {
        "guardian-1",
        "staff-close",
    }
    od = await call(svc, "query.plans.overdue.v2", {"purpose": "supervision"}, lead)
    assert od.data["overdue"] == []  # type: ignore[index]

    eff = await call(svc, "query.plans.effectiveness.v2", {"case_id": str(CASE), "purpose": "plan_follow_up"}, w)
    area = eff.data["areas"]["child_self_view"]  # type: ignore[index]
    assert [s["source"] for s in area["series"]] == ["meeting", "followup"] and area["change"] == 5
    chart = await call(
        svc,
        "query.plans.effectiveness_chart.v2",
        {"case_id": str(CASE), "purpose": "plan_follow_up", "kind": "lines", "language": "sv"},
        w,
    )
    assert chart.data["content_type"] == "image/svg+xml" and chart.data["svg"].startswith("<svg")  # type: ignore[index]
    # The wellbeing read model rebuilt from the events as published (meeting.held, followup.recorded)
    # equals the live one; stored in place of the live rows, the same queries answer the same.
    built = WellbeingRebuild()
    built.apply("meeting.held.v1", json.loads(meeting.to_json()))
    built.apply("followup.recorded.v1", recorded)
    async with svc.uow() as uow:
        live = await uow.plans.all_measurements()  # type: ignore[attr-defined]
    assert built.facts == live and len(live) == 2
    async with svc.uow() as uow:
        await uow.plans.replace_measurements({})  # type: ignore[attr-defined]
        await uow.commit()
    gone = await call(svc, "query.plans.effectiveness.v2", {"case_id": str(CASE), "purpose": "plan_follow_up"}, w)
    assert not gone.ok
    assert await built.store(svc) == 2
    again = await call(svc, "query.plans.effectiveness.v2", {"case_id": str(CASE), "purpose": "plan_follow_up"}, w)
    assert again.data == eff.data
    # A case nobody routed to the worker's team: refused before anything is looked up.
    none = await call(svc, "query.plans.effectiveness.v2", {"case_id": str(uuid4()), "purpose": "plan_follow_up"}, w)
    assert not none.ok and none.errors[0].code == "forbidden"
