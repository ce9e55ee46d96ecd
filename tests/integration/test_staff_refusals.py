"""What a staff app is refused, and why: through each service's real request path
(``Service._call``: validate → authenticate → authorize → handle) on real SQLite files, with access
tokens verified against a JWKS served over real HTTP (``identity``).

- no valid token: ``unauthenticated`` with the reason, audited (actor ``unauthenticated``) when
  the request named a case;
- the policy: ``forbidden`` (a worker of another team, a statistician, ops, a team lead recording
  consent, a guardian's purpose, a staff list of another team) or ``purpose_required``, audited
  with the verified actor;
- a retired ``v1`` (with its self-naming ``requested_by``): ``version_retired`` with the successor,
  its payload never read;
- a caller the policy lets through still meets the domain's refusals: another case's consent or
  meeting, unknown ids, a stale plan version, a follow-up by someone not responsible.

No refusal emits an event (the outbox stays as it was).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import func, select

from services.referral.handlers import ReceiveSubmission, receive_submission
from shared.audit import TABLE as AUDIT
from shared.contracts import Reply
from shared.contracts.base import parse_event
from shared.contracts.meetings import MeetingHeld
from shared.contracts.referral import ReferralReceived
from shared.settings import Settings
from tests.support.data import submission
from tests.support.identity import TestIdentity
from tests.support.system import BUILDERS

pytestmark = [pytest.mark.integration]

LATER = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
TEAM = "testila-family-centre"  # where routing.json sends tests.support.data.submission()
WORKER, OTHER_WORKER, LEAD = "staff-close", "pv-sw-1", "lead-testila"


@pytest.fixture
async def svcs(tmp_path, identity: TestIdentity):  # type: ignore[no-untyped-def]
    settings = identity.settings(Settings(nats_url="nats://127.0.0.1:1", data_dir=tmp_path, http_port_base=-1))
    built: dict[str, Any] = {}

    async def make(name: str) -> Any:
        built[name] = BUILDERS[name](settings, None)
        await built[name].db.create_all()
        return built[name]

    yield make
    for s in built.values():
        if s.verifier is not None:
            await s.verifier.aclose()
        await s.db.dispose()


async def ask(svc, subject: str, body: dict[str, Any], token: str | None) -> Reply:  # type: ignore[no-untyped-def]
    model, fn = svc.handlers[subject]
    if "command_id" in model.model_fields:
        body = {"command_id": str(uuid4()), **body}
    header = f"Bearer {token}" if token else None
    return await svc._call(subject, model, fn, json.dumps(body, default=str).encode(), header)


def refused(reply: Reply, *codes: str, reason: str | None = None) -> bool:
    """Refused with one of ``codes`` (and the policy's ``reason``), with a message in fi, sv and en."""
    return (
        (not reply.ok)
        and reply.errors[0].code in codes
        and {"fi", "sv", "en"} <= set(reply.errors[0].message)
        and (reason is None or (reply.data or {}).get("reason") == reason)
    )


async def outbox_count(svc) -> int:  # type: ignore[no-untyped-def]
    async with svc.db.engine.connect() as c:
        return await c.scalar(select(func.count()).select_from(svc.db.outbox)) or 0


async def audit_rows(svc, case_id: str) -> set[tuple[str, str, str, str]]:  # type: ignore[no-untyped-def]
    async with svc.db.engine.connect() as c:
        t = svc.db.metadata.tables[AUDIT]
        rows = (await c.execute(select(t.c.actor, t.c.action, t.c.purpose, t.c.result).where(t.c.case_id == case_id))).all()
    return {tuple(r) for r in rows}  # type: ignore[misc]


async def assign(svc, form: Any) -> None:  # type: ignore[no-untyped-def]
    """What a service does with a published ``referral.received`` (it names the case's team): the
    referral service applies its own event in the emitting transaction (its projections), every
    other service consumes it (its handlers, the case-access read model first); either way in one
    transaction."""
    subs = [s.handler for s in svc.subscriptions if s.subject == form.filter_subject()]
    async with svc.uow() as uow:
        for apply in subs or svc.db.own_projections[type(form)]:
            await apply(form, uow)
        await uow.commit()


async def new_case(ref, seq: int, *others: Any) -> tuple[str, Any]:  # type: ignore[no-untyped-def]
    """A referral received by the referral service, its case assigned to TEAM in the referral
    service and in ``others`` (as their consumers would)."""
    async with ref.uow() as uow:
        await receive_submission(ReceiveSubmission(data=json.dumps(submission()).encode(), stream_seq=seq), uow)
        await uow.commit()
    public = ReferralReceived.public_form
    async with ref.db.engine.connect() as c:
        rows = (await c.execute(select(ref.db.outbox.c.payload).where(ref.db.outbox.c.subject == public.subject()))).all()
    ev = parse_event(public, rows[-1].payload)
    assert ev.team_id == TEAM
    for svc in (ref, *others):
        await assign(svc, ev)
    return str(ev.case_id), ev


async def test_a_request_without_a_valid_token_is_unauthenticated_and_audited_when_it_names_a_case(  # type: ignore[no-untyped-def]
    svcs, identity: TestIdentity
) -> None:
    ref = await svcs("referral")
    case_id, _ = await new_case(ref, 1)
    before = await outbox_count(ref)
    read = {"case_id": case_id, "purpose": "case_work"}
    for token, reason in [
        (None, "missing"),
        (identity.expired(WORKER), "expired"),
        (identity.not_yet_valid(WORKER), "not_yet_valid"),
        (identity.wrong_audience(WORKER), "wrong_audience"),
        (identity.untrusted(WORKER), "invalid"),  # a forgery naming the trusted key's id
        (identity.untrusted(WORKER, claim_trusted_kid=False), "unknown_key"),
        ("not.a.jwt", "invalid"),
    ]:
        reply = await ask(ref, "query.referral.case.v2", read, token)
        assert refused(reply, "unauthenticated", reason=reason), (reason, reply.errors, reply.data)
        assert reply.errors[0].field == "Authorization" and reply.data == {"reason": reason}
    consent = {"case_id": case_id, "purpose": "share_plan", "recipient": "org:school-1"}
    assert refused(await ask(ref, "cmd.referral.record_consent.v2", consent, None), "unauthenticated")
    rows = await audit_rows(ref, case_id)
    assert {(a, act, r) for a, act, _, r in rows} == {
        ("unauthenticated", "query.referral.case.v2", "refused"),
        ("unauthenticated", "cmd.referral.record_consent.v2", "refused"),
    }
    assert {p for _, _, p, _ in rows} >= {"refused:unauthenticated:missing", "refused:unauthenticated:expired"}
    assert await outbox_count(ref) == before, "a refusal emits nothing"


async def test_the_policy_refuses_by_role_relation_and_purpose_and_audits_the_verified_actor(  # type: ignore[no-untyped-def]
    svcs, identity: TestIdentity
) -> None:
    ref = await svcs("referral")
    case_id, _ = await new_case(ref, 1)
    before = await outbox_count(ref)
    worker = identity.worker(WORKER, TEAM, "Testilä")
    read = {"case_id": case_id, "purpose": "case_work"}
    consent = {"case_id": case_id, "purpose": "share_plan", "recipient": "org:school-1", "given_by": "guardian-1"}
    cases = [
        # (who, subject, payload, code, reason): the rule each refusal shows
        (
            identity.worker(OTHER_WORKER, "porvoo-family-centre"),
            "query.referral.case.v2",
            read,
            "forbidden",
            "no_relation_to_case",
        ),
        (identity.statistician(), "query.referral.case.v2", read, "forbidden", "no_personal_data_for_role"),
        (
            identity.ops(),
            "query.referral.case.v2",
            {**read, "purpose": "operations_review"},
            "forbidden",
            "operations_review_is_for_ops",
        ),
        (identity.ops(), "query.referral.case.v2", read, "forbidden", "no_personal_data_for_role"),
        (identity.team_lead(LEAD, TEAM), "cmd.referral.record_consent.v2", consent, "forbidden", "consent_by_worker_or_guardian"),
        (worker, "query.referral.case.v2", {**read, "purpose": "own_data"}, "forbidden", "own_data_is_for_guardians"),
        (identity.ops(), "ops.referral.rejected.v1", {"purpose": "curiosity"}, "purpose_required", "purpose_unknown"),
        (
            identity.ops(),
            "ops.referral.rejected.v1",
            {"purpose": "case_work"},
            "forbidden",
            "operators_read_for_operations_review_only",
        ),
        (
            worker,
            "query.referral.team_cases.v2",
            {"team_id": "porvoo-family-centre", "purpose": "case_work"},
            "forbidden",
            "not_on_team",
        ),
        (
            identity.guardian(),
            "cmd.referral.unlink.v2",
            {"case_id": case_id, "referral_id": str(uuid4())},
            "forbidden",
            "not_for_guardians",
        ),
        (
            identity.worker(OTHER_WORKER, "porvoo-family-centre"),
            "ops.referral.rejected.v1",
            {"purpose": "operations_review"},
            "forbidden",
            "not_ops",
        ),
    ]
    for token, subject, body, code, reason in cases:
        reply = await ask(ref, subject, body, token)
        assert refused(reply, code, reason=reason), (subject, reason, reply.errors, reply.data)
    # no purpose (no default), or not a documented one: refused before the policy, with the policy's reasons
    for body, reason in (({"case_id": case_id}, "purpose_missing"), ({**read, "purpose": "curiosity"}, "purpose_unknown")):
        reply = await ask(ref, "query.referral.case.v2", body, worker)
        assert refused(reply, "purpose_required", reason=reason) and reply.errors[0].field == "purpose", reply

    allowed = await ask(ref, "query.referral.case.v2", read, worker)  # the team's own worker, with a purpose
    assert allowed.ok, allowed.errors
    rows = await audit_rows(ref, case_id)
    refusals = {(actor, purpose) for actor, _, purpose, result in rows if result == "refused"}
    assert {
        (OTHER_WORKER, "refused:no_relation_to_case"),
        ("stats-1", "refused:no_personal_data_for_role"),
        ("ops-1", "refused:no_personal_data_for_role"),
        (LEAD, "refused:consent_by_worker_or_guardian"),
        (WORKER, "refused:own_data_is_for_guardians"),
    } <= refusals
    assert (WORKER, "read_case", "case_work", "found") in rows  # the allowed read, with its purpose
    assert not any(actor in ("t", "guardian-1") for actor, *_ in rows)  # only verified actors, never a typed name
    assert await outbox_count(ref) == before


async def test_a_retired_version_is_refused_with_its_successor_and_its_self_naming_fields_are_not_read(  # type: ignore[no-untyped-def]
    svcs, identity: TestIdentity
) -> None:
    ref, m = await svcs("referral"), await svcs("meetings")
    case_id, _ = await new_case(ref, 1, m)
    before = await outbox_count(ref)
    worker = identity.worker(WORKER, TEAM, "Testilä")
    for svc, subject, body in [
        (ref, "query.referral.case.v1", {"case_id": case_id, "requested_by": "t"}),
        (
            ref,
            "cmd.referral.record_consent.v1",
            {"case_id": case_id, "purpose": "share_plan", "given_by": "g", "recorded_by": "t"},
        ),
        (m, "cmd.meetings.cancel.v1", {"meeting_id": str(uuid4()), "requested_by": WORKER, "reason": "r"}),
        (m, "query.meetings.case.v1", {"anything": "at all"}),  # nothing of the payload is read
    ]:
        for token in (worker, None):
            reply = await ask(svc, subject, body, token)
            successor = subject.rsplit(".v1", 1)[0] + ".v2"
            assert refused(reply, "version_retired") and reply.data == {"successor": successor}, (subject, reply)
    assert await audit_rows(ref, case_id) == set()  # a retired request reads nothing, so it leaves no read record
    assert await outbox_count(ref) == before


async def test_referral_refuses_another_cases_consent_and_unknown_ids_to_the_cases_worker(svcs, identity: TestIdentity) -> None:  # type: ignore[no-untyped-def]
    ref = await svcs("referral")
    (mine, _), (theirs, _) = await new_case(ref, 1), await new_case(ref, 2)  # both the team's
    worker = identity.worker(WORKER, TEAM, "Testilä")
    given = await ask(
        ref,
        "cmd.referral.record_consent.v2",
        {"case_id": mine, "purpose": "share_plan", "recipient": "org:school-1", "given_by": "guardian-1"},
        worker,
    )
    assert given.ok, given.errors
    before = await outbox_count(ref)
    cross = await ask(ref, "cmd.referral.withdraw_consent.v2", {"case_id": theirs, "consent_id": given.id}, worker)
    assert refused(cross, "not_found") and cross.errors[0].field == "consent_id"
    for subject, body in [
        ("cmd.referral.withdraw_consent.v2", {"case_id": mine, "consent_id": str(uuid4())}),
        ("cmd.referral.unlink.v2", {"case_id": mine, "referral_id": str(uuid4())}),
    ]:
        reply = await ask(ref, subject, body, worker)
        assert refused(reply, "not_found", "unknown_case"), (subject, reply.errors)
    # A case nobody is related to is not "not found" to a staff app: it is not theirs to ask about.
    for subject, body in [
        ("cmd.referral.record_consent.v2", {"case_id": str(uuid4()), "purpose": "convene_team"}),
        ("cmd.referral.unlink.v2", {"case_id": str(uuid4()), "referral_id": str(uuid4())}),
        ("query.referral.case.v2", {"case_id": str(uuid4()), "purpose": "case_work"}),
    ]:
        reply = await ask(ref, subject, body, worker)
        assert refused(reply, "forbidden", reason="no_relation_to_case"), (subject, reply.errors)
    assert await outbox_count(ref) == before, "a refusal emits nothing"


async def test_meetings_refuse_unknown_meetings_and_proposals_of_the_workers_case(svcs, identity: TestIdentity) -> None:  # type: ignore[no-untyped-def]
    ref, m = await svcs("referral"), await svcs("meetings")
    case_id, _ = await new_case(ref, 1, m)
    worker = identity.worker(WORKER, TEAM, "Testilä")
    before = await outbox_count(m)
    nobody = str(uuid4())
    cases = [
        (
            "cmd.meetings.record_held.v2",
            {"meeting_id": nobody, "attendance": [], "child_heard": True, "responsible_worker_ids": ["w"]},
        ),
        ("cmd.meetings.respond.v2", {"meeting_id": nobody, "participant_id": "p", "answer": "accepted"}),
        (
            "cmd.meetings.reschedule.v2",
            {"meeting_id": nobody, "starts_at": LATER, "ends_at": LATER + timedelta(hours=1), "reason": "r"},
        ),
        ("cmd.meetings.cancel.v2", {"meeting_id": nobody, "reason": "r"}),
        ("cmd.meetings.accept_proposal.v2", {"proposal_id": nobody}),
    ]
    for subject, body in cases:
        reply = await ask(m, subject, {"case_id": case_id, **body}, worker)
        assert not reply.ok and reply.errors[0].code not in (
            "internal_error",
            "extra_forbidden",
            "missing",
            "forbidden",
            "unauthenticated",
        ), (subject, reply.errors)
        assert {"fi", "sv", "en"} <= set(reply.errors[0].message), subject
    other = await ask(m, "cmd.meetings.propose.v2", {"case_id": nobody}, worker)  # a case that is not the worker's
    assert refused(other, "forbidden", reason="no_relation_to_case")
    assert await outbox_count(m) == before


def plan_body(case_id: str, meeting_id: str | None) -> dict[str, Any]:
    """A plan of ``case_id`` with staff-close responsible (cmd.plans.agree.v2, no self-naming field)."""
    return {
        "case_id": case_id,
        "meeting_id": meeting_id,
        "changes_needed": ["Mornings run smoothly"],
        "actions_at_home": [{"what": "Picture schedule", "who": "parent"}],
        "worker_contacts_family": "Phone call on Mondays",
        "family_contacts_worker": "Text message on weekdays",
        "responsible_workers": [
            {
                "worker_id": WORKER,
                "organisation": "City ECEC",
                "public_service": True,
                "contact": {"contact_id": WORKER, "role": "responsible_worker", "email": "close@example.com"},
            }
        ],
        "next_contact_at": LATER.isoformat(),
        "family_contacts": [{"contact_id": "guardian-1", "role": "guardian", "language": "fi", "email": "g1@example.com"}],
    }


async def test_plans_refuse_another_cases_meeting_unknown_plans_stale_versions_and_a_worker_not_responsible(  # type: ignore[no-untyped-def]
    svcs, identity: TestIdentity
) -> None:
    ref, p = await svcs("referral"), await svcs("plans")
    (mine, _), (other_case, _) = await new_case(ref, 1, p), await new_case(ref, 2, p)
    worker, colleague = identity.worker(WORKER, TEAM, "Testilä"), identity.worker("staff-fw", TEAM, "Testilä")
    meeting_of_other = uuid4()
    async with p.uow() as uow:
        from services.plans.handlers import on_meeting_held

        await on_meeting_held(
            MeetingHeld(
                producer="meetings",
                case_id=other_case,
                meeting_id=meeting_of_other,
                held_at=datetime.now(UTC),
                family_present=True,
                child_heard=True,
                attendance=[],
                responsible_worker_ids=[WORKER],
            ),
            uow,
        )
        await uow.commit()
    before = await outbox_count(p)
    cross = await ask(p, "cmd.plans.agree.v2", plan_body(mine, str(meeting_of_other)), worker)
    assert refused(cross, "meeting_of_other_case") and cross.errors[0].field == "meeting_id"
    assert await outbox_count(p) == before

    agreed = await ask(p, "cmd.plans.agree.v2", plan_body(mine, None), worker)
    assert agreed.ok, agreed.errors
    revise = {k: v for k, v in plan_body(mine, None).items() if k != "meeting_id"}
    ok = await ask(p, "cmd.plans.revise.v2", {**revise, "plan_id": agreed.id, "expected_version": 1}, worker)
    assert ok.ok, ok.errors
    before = await outbox_count(p)
    stale = await ask(p, "cmd.plans.revise.v2", {**revise, "plan_id": agreed.id, "expected_version": 1}, worker)
    assert refused(stale, "version_conflict")
    # On the case's team, so the policy lets the colleague through; the plan names another responsible worker.
    stranger = await ask(
        p, "cmd.plans.record_followup.v2", {"case_id": mine, "plan_id": agreed.id, "what_happened": "x"}, colleague
    )
    assert refused(stranger, "not_responsible_worker")
    nobody = str(uuid4())
    for subject, b in [
        ("cmd.plans.revise.v2", {**revise, "plan_id": nobody}),
        ("cmd.plans.close.v2", {"case_id": mine, "plan_id": nobody, "outcome": "goals_met"}),
        ("cmd.plans.reschedule_followup.v2", {"case_id": mine, "plan_id": nobody, "next_contact_at": LATER.isoformat()}),
        ("cmd.plans.record_followup.v2", {"case_id": mine, "plan_id": nobody, "what_happened": "x"}),
        ("query.plans.plan.v2", {"case_id": mine, "plan_id": nobody, "purpose": "plan_follow_up"}),
        # the plan exists, but in another case than the one named (the policy decided on that one)
        ("query.plans.plan.v2", {"case_id": other_case, "plan_id": agreed.id, "purpose": "plan_follow_up"}),
    ]:
        assert refused(await ask(p, subject, b, worker), "not_found"), subject
    assert await outbox_count(p) == before, "a refusal emits nothing"
