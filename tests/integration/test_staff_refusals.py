"""Staff commands that refer to someone else's case, to ids that do not exist, or to a stale
version are refused with a machine-readable error (and change nothing). Through each service's real
request path (``Service._call``) on real SQLite files."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import func, select

from services.referral.handlers import ReceiveSubmission, receive_submission
from shared.contracts import Reply
from shared.contracts.meetings import MeetingHeld
from shared.settings import Settings
from tests.support.data import submission
from tests.support.system import BUILDERS

pytestmark = [pytest.mark.integration]

LATER = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)


@pytest.fixture
async def svcs(tmp_path):  # type: ignore[no-untyped-def]
    settings = Settings(nats_url="nats://127.0.0.1:1", data_dir=tmp_path, http_port_base=-1)
    built: dict[str, Any] = {}

    async def make(name: str) -> Any:
        built[name] = BUILDERS[name](settings, None)
        await built[name].db.create_all()
        return built[name]

    yield make
    for s in built.values():
        await s.db.dispose()


async def ask(svc, subject: str, body: dict[str, Any]) -> Reply:  # type: ignore[no-untyped-def]
    model, fn = svc.handlers[subject]
    if "command_id" in model.model_fields:
        body = {"command_id": str(uuid4()), **body}
    return await svc._call(subject, model, fn, json.dumps(body, default=str).encode())


def refused(reply: Reply, *codes: str) -> bool:
    return (not reply.ok) and reply.errors[0].code in codes and {"fi", "sv", "en"} <= set(reply.errors[0].message)


async def outbox_count(svc) -> int:  # type: ignore[no-untyped-def]
    async with svc.db.engine.connect() as c:
        return await c.scalar(select(func.count()).select_from(svc.db.outbox)) or 0


async def new_case(svc, seq: int) -> str:  # type: ignore[no-untyped-def]
    async with svc.uow() as uow:
        await receive_submission(ReceiveSubmission(data=json.dumps(submission()).encode(), stream_seq=seq), uow)
        await uow.commit()
    async with svc.db.engine.connect() as c:
        rows = (await c.execute(select(svc.db.outbox.c.payload).where(svc.db.outbox.c.subject.like("referral.received%")))).all()
    return json.loads(rows[-1].payload)["case_id"]


async def test_referral_refuses_another_cases_consent_and_unknown_ids(svcs) -> None:  # type: ignore[no-untyped-def]
    ref = await svcs("referral")
    mine, theirs = await new_case(ref, 1), await new_case(ref, 2)
    given = await ask(
        ref,
        "cmd.referral.record_consent.v1",
        {
            "case_id": mine,
            "purpose": "share_plan",
            "recipient": "org:school-1",
            "given_by": "guardian-1",
            "recorded_by": "staff-a",
        },
    )
    assert given.ok, given.errors
    before = await outbox_count(ref)
    cross = await ask(
        ref,
        "cmd.referral.withdraw_consent.v1",
        {"case_id": theirs, "consent_id": given.id, "withdrawn_by": "guardian-1", "recorded_by": "staff-b"},
    )
    assert refused(cross, "not_found") and cross.errors[0].field == "consent_id"
    unknown = [
        (
            "cmd.referral.withdraw_consent.v1",
            {"case_id": mine, "consent_id": str(uuid4()), "withdrawn_by": "g", "recorded_by": "s"},
        ),
        (
            "cmd.referral.record_consent.v1",
            {"case_id": str(uuid4()), "purpose": "convene_team", "given_by": "g", "recorded_by": "s"},
        ),
        ("cmd.referral.unlink.v1", {"referral_id": str(uuid4()), "recorded_by": "s"}),
        ("cmd.referral.start_assessment.v1", {"case_id": str(uuid4()), "social_worker_id": "sw-1"}),
        ("query.referral.case.v1", {"case_id": str(uuid4()), "requested_by": "s"}),
    ]
    for subject, body in unknown:
        reply = await ask(ref, subject, body)
        assert refused(reply, "not_found", "unknown_case"), (subject, reply.errors)
    assert await outbox_count(ref) == before, "a refusal emits nothing"


async def test_meetings_refuse_unknown_meetings_and_proposals(svcs) -> None:  # type: ignore[no-untyped-def]
    m = await svcs("meetings")
    nobody = str(uuid4())
    cases = [
        (
            "cmd.meetings.record_held.v1",
            {"meeting_id": nobody, "recorded_by": "s", "attendance": [], "child_heard": True, "responsible_worker_ids": ["w"]},
        ),
        ("cmd.meetings.respond.v1", {"meeting_id": nobody, "participant_id": "p", "answer": "accepted"}),
        (
            "cmd.meetings.reschedule.v1",
            {"meeting_id": nobody, "requested_by": "s", "starts_at": LATER, "ends_at": LATER + timedelta(hours=1), "reason": "r"},
        ),
        ("cmd.meetings.cancel.v1", {"meeting_id": nobody, "requested_by": "s", "reason": "r"}),
        ("cmd.meetings.accept_proposal.v1", {"proposal_id": nobody, "accepted_by": "s"}),
        ("cmd.meetings.propose.v1", {"case_id": nobody, "requested_by": "s"}),
    ]
    for subject, body in cases:
        reply = await ask(m, subject, body)
        assert not reply.ok and reply.errors[0].code not in ("internal_error", "extra_forbidden", "missing"), (
            subject,
            reply.errors,
        )
        assert {"fi", "sv", "en"} <= set(reply.errors[0].message), subject
    assert await outbox_count(m) == 0


async def test_plans_refuse_another_cases_meeting_unknown_plans_and_stale_versions(svcs) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.test_plans_sharing import plan_body

    p = await svcs("plans")
    other_case, meeting_of_other = uuid4(), uuid4()
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
                responsible_worker_ids=["staff-close"],
            ),
            uow,
        )
        await uow.commit()
    body = plan_body(meeting_id=str(meeting_of_other), next_contact_at=LATER.isoformat())
    body.pop("command_id")
    cross = await ask(p, "cmd.plans.agree.v1", body)
    assert refused(cross, "meeting_of_other_case") and cross.errors[0].field == "meeting_id"

    own = plan_body(meeting_id=None, next_contact_at=LATER.isoformat())
    own.pop("command_id")
    agreed = await ask(p, "cmd.plans.agree.v1", own)
    assert agreed.ok, agreed.errors
    revise = {k: v for k, v in own.items() if k not in ("case_id", "meeting_id")}
    ok = await ask(p, "cmd.plans.revise.v1", {**revise, "plan_id": agreed.id, "expected_version": 1})
    assert ok.ok, ok.errors
    stale = await ask(p, "cmd.plans.revise.v1", {**revise, "plan_id": agreed.id, "expected_version": 1})
    assert refused(stale, "version_conflict")
    stranger = await ask(
        p, "cmd.plans.record_followup.v1", {"plan_id": agreed.id, "recorded_by": "staff-of-another-team", "what_happened": "x"}
    )
    assert refused(stranger, "not_responsible_worker")
    nobody = str(uuid4())
    for subject, b in [
        ("cmd.plans.revise.v1", {**revise, "plan_id": nobody}),
        ("cmd.plans.close.v1", {"plan_id": nobody, "recorded_by": "s", "outcome": "goals_met"}),
        ("cmd.plans.reschedule_followup.v1", {"plan_id": nobody, "recorded_by": "s", "next_contact_at": LATER.isoformat()}),
        ("cmd.plans.record_followup.v1", {"plan_id": nobody, "recorded_by": "s", "what_happened": "x"}),
        ("query.plans.plan.v1", {"plan_id": nobody, "requested_by": "s"}),
    ]:
        assert refused(await ask(p, subject, b), "not_found"), subject
