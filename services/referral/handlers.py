"""Referral use cases: one async handler per use case, taking a command and a unit of work."""

from __future__ import annotations

import json
from dataclasses import dataclass
from uuid import uuid4

from pydantic import ValidationError

from shared.contracts import CaseQuery, FieldError, ReferralReceived, ReferralRejected, ReferralSubmission, Reply
from shared.contracts.base import field_errors
from shared.contracts.common import ContactPoint
from shared.calendar import add_working_days, helsinki_date
from shared.errors import NotFound

from .adapters import ReferralUnitOfWork
from .domain import Referral, check_submission, open_referral

SERVICE = "referral"


@dataclass(frozen=True)
class ReceiveSubmission:
    """A raw submission from the front door, exactly as published (it may be invalid)."""

    data: bytes
    stream_seq: int


def _submission_id_of(data: bytes) -> str:
    """Best effort, for the rejection reply: the front door needs it to fix and resend."""
    try:
        value = json.loads(data).get("submission_id")
    except (ValueError, AttributeError):
        return "unknown"
    return value if isinstance(value, str) and 0 < len(value) <= 100 else "unknown"


async def receive_submission(cmd: ReceiveSubmission, uow: ReferralUnitOfWork) -> Referral | None:
    now = uow.now()
    try:
        sub = ReferralSubmission.model_validate_json(cmd.data)
        problems = check_submission(sub, now.date())
        reasons = [FieldError(field=p.field, code=p.code, message=p.messages()) for p in problems]
    except ValidationError as exc:
        sub = None
        reasons = field_errors(exc)
    if reasons:
        submission_id = sub.submission_id if sub else _submission_id_of(cmd.data)
        rejection_id = uuid4()
        await uow.referrals.add_rejection(
            rejection_id=str(rejection_id),
            submission_id=submission_id,
            received_at=now,
            stream_seq=cmd.stream_seq,
            raw=cmd.data,
            reasons=[r.model_dump() for r in reasons],
        )
        uow.emit(
            ReferralRejected(
                producer=SERVICE, submission_id=submission_id, rejection_id=rejection_id, reasons=reasons, occurred_at=now
            )
        )
        return None
    assert sub is not None
    # The same submission id never opens a second referral, even long after JetStream's dedup window.
    if await uow.referrals.by_submission(sub.submission_id) is not None:
        return None
    referral = open_referral(sub, now)
    await uow.referrals.add(referral)
    uow.emit(_received(referral))
    return referral


def _received(r: Referral) -> ReferralReceived:
    decision_due_by = add_working_days(helsinki_date(r.received_at), 7) if r.statutory else None
    return ReferralReceived(
        producer=SERVICE,
        case_id=r.case_id,
        occurred_at=r.received_at,
        referral_id=r.referral_id,
        submission_id=r.submission_id,
        channel=r.channel,  # type: ignore[arg-type]
        municipality=r.municipality,
        received_at=r.received_at,
        language=r.language,  # type: ignore[arg-type]
        interpreter_needed=r.interpreter_needed,
        urgent=r.urgent,
        statutory=r.statutory,
        child_count=r.child_count,
        consent_to_convene=r.consent_to_convene,
        decision_due_by=decision_due_by,
        referrer_type=r.referrer_type,
        contacts=[ContactPoint(**c.__dict__) for c in r.contacts],
    )


async def get_case(q: CaseQuery, uow: ReferralUnitOfWork) -> Reply:
    found = await uow.referrals.by_case(q.case_id)
    await uow.referrals.audit(
        actor=q.requested_by,
        case_id=str(q.case_id),
        action="read_case",
        purpose=q.purpose,
        result="found" if found else "not_found",
    )
    await uow.commit()
    if not found:
        raise NotFound("case_id")
    return Reply(
        ok=True,
        id=str(q.case_id),
        data={
            "case_id": str(q.case_id),
            "referrals": [
                {
                    "referral_id": str(r.referral_id),
                    "submission_id": r.submission_id,
                    "channel": r.channel,
                    "municipality": r.municipality,
                    "received_at": r.received_at.isoformat(),
                    "status": r.status,
                    "urgent": r.urgent,
                    "statutory": r.statutory,
                    "details": r.details,
                }
                for r in found
            ],
        },
    )


