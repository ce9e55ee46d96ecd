"""Referral use cases: one async handler per use case, taking a command and a unit of work."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID, uuid4

from shared.calendar import add_working_days, helsinki_date
from shared.contracts.base import TRUSTED, Reply
from shared.contracts.common import ContactPoint
from shared.contracts.ops import RejectedSubmissionsQuery
from shared.contracts.referral import (
    AccessLogQuery,
    AssessmentCompleted,
    AssessmentStarted,
    CaseQuery,
    CompleteAssessment,
    ConsentGiven,
    ConsentWithdrawn,
    DeadlineApproaching,
    DeadlineBreached,
    DeadlinesDueQuery,
    RecordConsent,
    ReferralAssigned,
    ReferralLinked,
    ReferralReceived,
    ReferralRejected,
    ReferralUnlinked,
    ReferralUrgent,
    StartAssessment,
    TeamCasesQuery,
    UnlinkReferral,
    WithdrawConsent,
)
from shared.errors import DomainError, NotFound

from . import domain
from .adapters import ReferralUnitOfWork
from .domain import Case, Referral, open_referral, screen
from .hetu import InvalidHetu, parse_hetu

SERVICE = "referral"
INTAKE_RECORDER = "front-door"


@dataclass(frozen=True)
class ReceiveSubmission:
    """A raw submission from the front door, exactly as published (it may be invalid)."""

    data: bytes
    stream_seq: int


# -- intake -----------------------------------------------------------------------------------------


async def receive_submission(cmd: ReceiveSubmission, uow: ReferralUnitOfWork) -> Referral | None:
    now = uow.now()
    result = screen(cmd.data, helsinki_date(now))
    if not result.accepted:
        rejection_id = uuid4()
        await uow.referrals.add_rejection(
            rejection_id=str(rejection_id),
            submission_id=result.submission_id,
            received_at=now,
            stream_seq=cmd.stream_seq,
            raw=cmd.data,
            reasons=[r.model_dump() for r in result.reasons],
        )
        uow.emit(
            ReferralRejected(
                producer=SERVICE,
                submission_id=result.submission_id,
                rejection_id=rejection_id,
                reasons=result.reasons,
                occurred_at=now,
            )
        )
        return None
    sub = result.submission
    assert sub is not None
    referral = open_referral(sub, now)
    existing = await uow.referrals.open_case_for_children(referral.child_keys)
    if existing is not None:
        case = await uow.referrals.get_case(existing)
        assert case is not None
        referral.case_id = case.case_id
        referral.linked = True
        new_deadline = case.add_referral(referral, linked=True)
        if not await uow.referrals.add(referral):
            return None  # a submission id seen before (even long after JetStream's dedup window)
        await uow.referrals.save_case(case)
        uow.emit(
            ReferralLinked(
                producer=SERVICE,
                case_id=case.case_id,
                occurred_at=now,
                referral_id=referral.referral_id,
                submission_id=referral.submission_id,
                channel=referral.channel,  # type: ignore[arg-type]
                repeat_count=case.repeat_count,
                urgent=referral.urgent,
                statutory=new_deadline,
                decision_due_by=case.decision_due_by if new_deadline else None,
                referrer_type=referral.referrer_type,
                language=referral.language,  # type: ignore[arg-type]
                contacts=_contacts(referral),
            )
        )
    else:
        case = Case(case_id=referral.case_id, municipality=referral.municipality, opened_at=now)
        case.team_id = uow.router.route(referral.municipality, referral.concern_category, referral.channel)
        new_deadline = case.add_referral(referral, linked=False)
        if not await uow.referrals.add(referral):
            return None  # the same submission id never opens a second referral
        await uow.referrals.add_case(case)
        uow.emit(_received(referral, case))
        uow.emit(
            ReferralAssigned(
                producer=SERVICE,
                case_id=case.case_id,
                occurred_at=now,
                referral_id=referral.referral_id,
                team_id=case.team_id,
                municipality=case.municipality,
                concern_category=referral.concern_category,
            )
        )
    if referral.urgent:
        uow.emit(
            ReferralUrgent(
                producer=SERVICE,
                case_id=case.case_id,
                occurred_at=now,
                referral_id=referral.referral_id,
                municipality=referral.municipality,
                channel=referral.channel,  # type: ignore[arg-type]
                team_id=uow.router.on_duty(referral.municipality) or case.team_id,
            )
        )
    if new_deadline:
        assert case.decision_due_by is not None
        _schedule_deadline(uow, case, "assessment_decision", case.decision_due_by)
    if referral.consent_to_convene:
        # Recorded for every channel; a child-protection notification is handled without it
        # (ReferralReceived.statutory tells consumers), but what the family agreed to still counts.
        await _give(uow, case.case_id, "convene_team", None, _consenting_guardian(referral), INTAKE_RECORDER, None)
    return referral


def _consenting_guardian(r: Referral) -> str:
    guardians = [c.contact_id for c in r.contacts if c.role == "guardian"]
    return guardians[0] if guardians else "family"


def _contacts(r: Referral) -> list[ContactPoint]:
    # The intake checked and normalised these addresses (domain.check_submission); not again.
    return [ContactPoint.model_validate(c.__dict__, context=TRUSTED) for c in r.contacts]


def _received(r: Referral, case: Case) -> ReferralReceived:
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
        decision_due_by=case.decision_due_by if r.statutory else None,
        referrer_type=r.referrer_type,
        contacts=_contacts(r),
    )


# -- deadlines --------------------------------------------------------------------------------------


def _schedule_deadline(uow: ReferralUnitOfWork, case: Case, kind: str, due: date) -> None:
    """Two durable timers per deadline: a reminder ``lead`` working days before, and the breach."""
    approaching_at, breached_at = domain.timer_moments(due, uow.config.deadline_lead_working_days)
    for which, at, model in (("approaching", approaching_at, DeadlineApproaching), ("breached", breached_at, DeadlineBreached)):
        event = model(producer=SERVICE, case_id=case.case_id, occurred_at=at, deadline=kind, due_by=due, team_id=case.team_id)  # type: ignore[arg-type]
        uow.schedule(event, timer_subject=domain.timer_subject(kind, case.case_id, which), at=at, timer_id=f"timer:{uuid4()}")


def _cancel_deadline(uow: ReferralUnitOfWork, case: Case, kind: str) -> None:
    for which in ("approaching", "breached"):
        uow.cancel_timer(domain.timer_subject(kind, case.case_id, which), cancel_id=f"cancel:{uuid4()}")


async def _case(uow: ReferralUnitOfWork, case_id: UUID) -> Case:
    case = await uow.referrals.get_case(case_id)
    if case is None:
        raise NotFound("case_id")
    return case


async def _done(uow: ReferralUnitOfWork, cmd: Any, subject: str, reply: Reply) -> Reply:
    await uow.remember_reply(str(cmd.command_id), subject, reply.model_dump(mode="json"))
    await uow.commit()
    return reply


async def start_assessment(cmd: StartAssessment, uow: ReferralUnitOfWork) -> Reply:
    now = uow.now()
    case = await _case(uow, cmd.case_id)
    started_on = cmd.started_on or helsinki_date(now)
    had_decision_deadline = ("assessment_decision", case.decision_due_by) in case.open_deadlines()
    complete_by = case.start_assessment(started_on, cmd.social_worker_id, now)
    await uow.referrals.save_case(case)
    if had_decision_deadline:
        _cancel_deadline(uow, case, "assessment_decision")
    _schedule_deadline(uow, case, "assessment_completion", complete_by)
    uow.emit(
        AssessmentStarted(
            producer=SERVICE,
            case_id=case.case_id,
            occurred_at=now,
            causation_id=cmd.command_id,
            started_on=started_on,
            complete_by=complete_by,
            social_worker_id=cmd.social_worker_id,
        )
    )
    return await _done(
        uow,
        cmd,
        "cmd.referral.start_assessment.v1",
        Reply(ok=True, id=str(case.case_id), data={"complete_by": complete_by.isoformat()}),
    )


CLOSING_OUTCOMES = {"no_need_for_services", "referred_elsewhere"}
"""Outcomes after which the case at the referral stage is closed (a later referral opens a new case)."""


async def complete_assessment(cmd: CompleteAssessment, uow: ReferralUnitOfWork) -> Reply:
    now = uow.now()
    case = await _case(uow, cmd.case_id)
    completed_on = cmd.completed_on or helsinki_date(now)
    case.complete_assessment(completed_on, cmd.outcome, cmd.social_worker_id, now)
    if cmd.outcome in CLOSING_OUTCOMES:
        case.status = "closed"
        case.note(now, "case_closed", by=cmd.social_worker_id)
    await uow.referrals.save_case(case)
    _cancel_deadline(uow, case, "assessment_completion")
    today = helsinki_date(now)
    purposes = {c.purpose for c in await uow.referrals.consents_of(case.case_id) if c.active(today)}
    may_tell = domain.referrer_may_be_told(await uow.referrals.by_case(case.case_id), purposes)
    uow.emit(
        AssessmentCompleted(
            producer=SERVICE,
            case_id=case.case_id,
            occurred_at=now,
            causation_id=cmd.command_id,
            completed_on=completed_on,
            outcome=cmd.outcome,
            social_worker_id=cmd.social_worker_id,
            referrer_may_be_told=may_tell,
        )
    )
    return await _done(
        uow,
        cmd,
        "cmd.referral.complete_assessment.v1",
        Reply(ok=True, id=str(case.case_id), data={"referrer_may_be_told": may_tell}),
    )


# -- consent ledger ---------------------------------------------------------------------------------


async def _give(
    uow: ReferralUnitOfWork,
    case_id: UUID,
    purpose: str,
    recipient: str | None,
    given_by: str,
    recorded_by: str,
    valid_until: date | None,
    causation_id: UUID | None = None,
) -> domain.Consent:
    now = uow.now()
    consent = domain.give_consent(case_id, purpose, recipient, given_by, recorded_by, now, valid_until)
    await uow.referrals.add_consent(consent)
    uow.emit(
        ConsentGiven(
            producer=SERVICE,
            case_id=case_id,
            occurred_at=now,
            causation_id=causation_id,
            consent_id=consent.consent_id,
            purpose=purpose,
            recipient=recipient,
            given_by=given_by,
            recorded_by=recorded_by,
            valid_until=valid_until,  # type: ignore[arg-type]
        )
    )
    return consent


async def record_consent(cmd: RecordConsent, uow: ReferralUnitOfWork) -> Reply:
    case = await _case(uow, cmd.case_id)
    consent = await _give(
        uow, case.case_id, cmd.purpose, cmd.recipient, cmd.given_by, cmd.recorded_by, cmd.valid_until, cmd.command_id
    )
    case.note(uow.now(), "consent_given", purpose=cmd.purpose, recipient=cmd.recipient, by=cmd.recorded_by)
    await uow.referrals.save_case(case)
    return await _done(uow, cmd, "cmd.referral.record_consent.v1", Reply(ok=True, id=str(consent.consent_id)))


async def withdraw_consent(cmd: WithdrawConsent, uow: ReferralUnitOfWork) -> Reply:
    now = uow.now()
    consent = await uow.referrals.get_consent(cmd.consent_id)
    if consent is None or consent.case_id != cmd.case_id:
        raise NotFound("consent_id")
    domain.withdraw(consent, cmd.withdrawn_by, now)
    await uow.referrals.save_consent(consent)
    case = await _case(uow, cmd.case_id)
    case.note(now, "consent_withdrawn", purpose=consent.purpose, recipient=consent.recipient, by=cmd.recorded_by)
    await uow.referrals.save_case(case)
    uow.emit(
        ConsentWithdrawn(
            producer=SERVICE,
            case_id=consent.case_id,
            occurred_at=now,
            causation_id=cmd.command_id,
            consent_id=consent.consent_id,
            purpose=consent.purpose,
            recipient=consent.recipient,
            withdrawn_by=cmd.withdrawn_by,
            recorded_by=cmd.recorded_by,  # type: ignore[arg-type]
        )
    )
    return await _done(uow, cmd, "cmd.referral.withdraw_consent.v1", Reply(ok=True, id=str(consent.consent_id)))


# -- linking ----------------------------------------------------------------------------------------


async def unlink_referral(cmd: UnlinkReferral, uow: ReferralUnitOfWork) -> Reply:
    now = uow.now()
    referral = await uow.referrals.get(cmd.referral_id)
    if referral is None:
        raise NotFound("referral_id")
    old = await _case(uow, referral.case_id)
    if len(old.referral_ids) < 2 or old.referral_ids[0] == str(referral.referral_id):
        raise DomainError(
            "not_linked",
            "referral_id",
            en="The referral opened its case; it is not linked.",
            fi="Yhteydenotto avasi asiakkuuden, sitä ei ole liitetty.",
            sv="Kontakten öppnade klientskapet; den är inte kopplad.",
        )
    old.remove_referral(referral.referral_id, now, cmd.recorded_by)
    new = Case(case_id=uuid4(), municipality=referral.municipality, opened_at=now)
    new.team_id = uow.router.route(referral.municipality, referral.concern_category, referral.channel)
    await uow.referrals.move(referral, new.case_id)
    remaining = await uow.referrals.by_case(old.case_id)
    if old.drop_decision_deadline_unless(remaining):
        # The unlinked referral was what started the old case's decision deadline.
        _cancel_deadline(uow, old, "assessment_decision")
    await uow.referrals.save_case(old)
    new_deadline = new.add_referral(referral, linked=False)
    new.note(now, "unlinked_from", previous_case_id=str(old.case_id), by=cmd.recorded_by, reason=cmd.reason)
    await uow.referrals.add_case(new)
    uow.emit(
        ReferralUnlinked(
            producer=SERVICE,
            case_id=new.case_id,
            occurred_at=now,
            causation_id=cmd.command_id,
            referral_id=referral.referral_id,
            previous_case_id=old.case_id,
            recorded_by=cmd.recorded_by,
        )
    )
    uow.emit(
        ReferralAssigned(
            producer=SERVICE,
            case_id=new.case_id,
            occurred_at=now,
            referral_id=referral.referral_id,
            team_id=new.team_id,
            municipality=new.municipality,
            concern_category=referral.concern_category,
        )
    )
    if new_deadline:
        assert new.decision_due_by is not None
        _schedule_deadline(uow, new, "assessment_decision", new.decision_due_by)
    return await _done(
        uow, cmd, "cmd.referral.unlink.v1", Reply(ok=True, id=str(new.case_id), data={"previous_case_id": str(old.case_id)})
    )


# -- staff queries (every read of personal data is audited) ------------------------------------------


def _case_summary(c: Case) -> dict[str, Any]:
    return {
        "case_id": str(c.case_id),
        "municipality": c.municipality,
        "team_id": c.team_id,
        "status": c.status,
        "opened_at": c.opened_at.isoformat(),
        "repeat_count": c.repeat_count,
        "deadlines": [{"deadline": k, "due_by": d.isoformat()} for k, d in c.open_deadlines()],
    }


async def get_case(q: CaseQuery, uow: ReferralUnitOfWork) -> Reply:
    case = await uow.referrals.get_case(q.case_id)
    found = await uow.referrals.by_case(q.case_id) if case else []
    await uow.referrals.audit(
        actor=q.requested_by,
        case_id=str(q.case_id),
        action="read_case",
        purpose=q.purpose,
        result="found" if case else "not_found",
        scope=f"case:{q.case_id}",
    )
    await uow.commit()
    if case is None:
        raise NotFound("case_id")
    consents = await uow.referrals.consents_of(q.case_id)
    return Reply(
        ok=True,
        id=str(q.case_id),
        data={
            **_case_summary(case),
            "assessment": {
                "started_on": case.assessment_started_on.isoformat() if case.assessment_started_on else None,
                "complete_by": case.assessment_complete_by.isoformat() if case.assessment_complete_by else None,
                "completed_on": case.assessment_completed_on.isoformat() if case.assessment_completed_on else None,
                "outcome": case.outcome,
            },
            "history": case.history,
            "consents": [
                {
                    "consent_id": str(c.consent_id),
                    "purpose": c.purpose,
                    "recipient": c.recipient,
                    "given_by": c.given_by,
                    "given_at": c.given_at.isoformat(),
                    "withdrawn_at": c.withdrawn_at.isoformat() if c.withdrawn_at else None,
                }
                for c in consents
            ],
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
                    "linked": r.linked,
                    "details": r.details,
                }
                for r in found
            ],
        },
    )


async def access_log(q: AccessLogQuery, uow: ReferralUnitOfWork) -> Reply:
    """Who has seen this person's data (Client Data Act 703/2023 s. 11). The answer is itself a
    disclosure, so it is audited after it is read (it shows up in the next answer)."""
    if q.personal_id is not None:
        try:
            value = parse_hetu(q.personal_id).value
        except InvalidHetu:
            raise DomainError(
                "invalid_personal_id",
                "personal_id",
                en="Not a valid henkilötunnus.",
                fi="Virheellinen henkilötunnus.",
                sv="Ogiltig personbeteckning.",
            ) from None
        case_ids = await uow.referrals.cases_of_child(hashlib.sha256(f"hetu:{value}".encode()).hexdigest())
    else:
        case_ids = [str(q.case_id)] if await uow.referrals.get_case(q.case_id) else []  # type: ignore[arg-type]
    entries = await uow.referrals.access_log(case_ids) if case_ids else []
    for case_id in case_ids or [None]:
        await uow.referrals.audit(
            actor=q.requested_by,
            case_id=case_id,
            action="read_access_log",
            purpose=q.purpose,
            result="found" if case_id else "not_found",
            scope="person" if q.personal_id else f"case:{q.case_id}",
        )
    await uow.commit()
    if not case_ids:
        raise NotFound("personal_id" if q.personal_id else "case_id")
    return Reply(ok=True, data={"cases": case_ids, "entries": entries})


async def rejected_submissions(q: RejectedSubmissionsQuery, uow: ReferralUnitOfWork) -> Reply:
    """Operators' view of rejected intake submissions (``ops.referral.rejected.v1``): ids and
    reasons only. One rejection's raw bytes may hold personal data, so that read is audited
    (recorded and committed before the answer; a miss is recorded as not_found)."""
    if q.rejection_id is None:
        total, rows = await uow.referrals.rejections(q.limit)
        return Reply(ok=True, data={"total": total, "rejections": [_rejection_summary(r) for r in rows]})
    found = await uow.referrals.rejection(q.rejection_id)
    await uow.referrals.audit(
        actor=q.requested_by,
        case_id=None,  # a rejected submission belongs to no case
        action="read_rejected_submission",
        purpose=q.purpose,
        result="found" if found else "not_found",
        scope=f"rejection:{q.rejection_id}",
    )
    await uow.commit()
    if found is None:
        raise NotFound("rejection_id")
    return Reply(
        ok=True, data={"rejection": {**_rejection_summary(found), "raw_base64": base64.b64encode(found["raw"]).decode()}}
    )


def _rejection_summary(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "rejection_id": r["rejection_id"],
        "submission_id": r["submission_id"],
        "received_at": r["received_at"].isoformat(),
        "stream_seq": r["stream_seq"],
        "reasons": [{"field": x.get("field"), "code": x.get("code")} for x in r["reasons"] or []],
    }


async def team_cases(q: TeamCasesQuery, uow: ReferralUnitOfWork) -> Reply:
    found = await uow.referrals.open_cases_of_team(q.team_id)
    for c in found:
        await uow.referrals.audit(
            actor=q.requested_by,
            case_id=str(c.case_id),
            action="list_team_cases",
            purpose=q.purpose,
            result="found",
            scope=f"team:{q.team_id}",
        )
    if not found:
        await uow.referrals.audit(
            actor=q.requested_by,
            case_id=None,
            action="list_team_cases",
            purpose=q.purpose,
            result="empty",
            scope=f"team:{q.team_id}",
        )
    await uow.commit()
    return Reply(ok=True, id=q.team_id, data={"team_id": q.team_id, "cases": [_case_summary(c) for c in found]})


async def deadlines_due(q: DeadlinesDueQuery, uow: ReferralUnitOfWork) -> Reply:
    today = helsinki_date(uow.now())
    horizon = add_working_days(today, q.working_days)
    found = await uow.referrals.cases_due_by(horizon, q.team_id)
    rows = []
    for c in found:
        for kind, due in c.open_deadlines():
            if due <= horizon:
                rows.append(
                    {
                        "case_id": str(c.case_id),
                        "team_id": c.team_id,
                        "deadline": kind,
                        "due_by": due.isoformat(),
                        "overdue": due < today,
                    }
                )
        await uow.referrals.audit(
            actor=q.requested_by,
            case_id=str(c.case_id),
            action="list_deadlines",
            purpose=q.purpose,
            result="found",
            scope=f"team:{q.team_id}" if q.team_id else "all",
        )
    if not found:
        await uow.referrals.audit(
            actor=q.requested_by,
            case_id=None,
            action="list_deadlines",
            purpose=q.purpose,
            result="empty",
            scope=f"team:{q.team_id}" if q.team_id else "all",
        )
    await uow.commit()
    rows.sort(key=lambda r: r["due_by"])
    return Reply(ok=True, data={"until": horizon.isoformat(), "deadlines": rows})
