"""Referral use cases: one async handler per use case, taking a command and a unit of work."""

from __future__ import annotations

import base64
import functools
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from shared import pseudonyms
from shared.calendar import add_working_days, helsinki_date
from shared.case_access import CaseAccess
from shared.catalogue import N_
from shared.contracts.base import TRUSTED, FieldError, Reply
from shared.contracts.common import ContactPoint
from shared.contracts.ops import EraseFamilyCommand, RejectedSubmissionsQuery
from shared.contracts.referral import (
    AccessLogQueryV2,
    AssessmentCompleted,
    AssessmentStarted,
    AssessUrgency,
    CaseErased,
    CaseQueryV2,
    CaseTransferred,
    CompleteAssessmentV2,
    ConsentGiven,
    ConsentWithdrawn,
    DeadlineApproaching,
    DeadlineBreached,
    DeadlinesDueQueryV2,
    DecisionRecorded,
    GuardianAccessRestricted,
    RecordConsentV2,
    RecordDecision,
    ReferralAssigned,
    ReferralChannelStatisticsQuery,
    ReferralLinked,
    ReferralReceived,
    ReferralRejected,
    ReferralUnlinked,
    ReferralUrgent,
    RestrictGuardianAccess,
    StartAssessmentV2,
    StatutoryStatisticsQuery,
    TeamCasesQueryV2,
    TransferCase,
    UnlinkReferralV2,
    UrgencyAssessed,
    UrgencyAssessmentOverdue,
    WithdrawConsentV2,
)
from shared.errors import DomainError, NotFound
from shared.pseudonyms import person_key

from . import channel_statistics, domain, statistics
from .adapters import ReferralUnitOfWork
from .children import child_keys
from .consent import Consent, give_consent, withdraw
from .deadlines import timer_moments, timer_subject, urgency_timer_moments
from .domain import Case, Referral, open_referral
from .hetu import InvalidHetu, parse_hetu
from .screening import Problem, screen
from .statistics import StatutoryStatistics

SERVICE = "referral"
INTAKE_RECORDER = "front-door"
log = logging.getLogger("koolle.referral")


@dataclass(frozen=True)
class ReceiveSubmission:
    """A raw submission from the front door, exactly as published (it may be invalid)."""

    data: bytes
    stream_seq: int
    msg_id: str | None = None  # the Nats-Msg-Id header (the front door's submission id)

    @functools.cached_property  # four reads per referral, each a keyed digest of the whole submission
    def inbox_key(self) -> str:
        """The inbox's name for this submission: its message id and content, never its place in the
        INTAKE stream (a recreated stream numbers from 1 again). A redelivery, or the same message
        replayed from a restored stream, has the same key; a new message never has an old one's."""
        head = (self.msg_id or "").encode()
        return pseudonyms.digest(len(head).to_bytes(4, "big") + head + self.data)


# -- intake -----------------------------------------------------------------------------------------


async def _reject(uow: ReferralUnitOfWork, cmd: ReceiveSubmission, submission_id: str, reasons: list[FieldError]) -> None:
    """Keep the raw submission with its reasons and tell the front door (referral.rejected)."""
    now = uow.now()
    rejection_id = uuid4()
    await uow.referrals.add_rejection(
        rejection_id=str(rejection_id),
        submission_id=submission_id,
        received_at=now,
        stream_seq=cmd.stream_seq,
        raw=cmd.data,
        reasons=[r.model_dump() for r in reasons],
    )
    uow.emit(ReferralRejected, submission_id=submission_id, rejection_id=rejection_id, reasons=reasons)


async def _seen_before(uow: ReferralUnitOfWork, cmd: ReceiveSubmission, referral: Referral) -> None:
    """A referral with this submission id exists. The same content again is a resend (nothing to do,
    even long after JetStream's duplicate window); other content under the same id is rejected."""
    earlier = await uow.referrals.by_submission(referral.submission_id)
    if earlier is not None and domain.same_submission(earlier, referral):
        return
    await _reject(uow, cmd, referral.submission_id, [Problem("submission_id", "submission_id_reused").error()])


def _screened(cmd: ReceiveSubmission, uow: ReferralUnitOfWork) -> Any:
    """The submission screened once per transaction (the batch's preload, then its handler)."""
    found = uow.screenings.get(cmd.inbox_key)
    if found is None:
        now = uow.now()
        found = screen(
            cmd.data, helsinki_date(now), cmd.msg_id, now=now, limits=uow.config.submitted_at_limits(), checked=uow.addresses
        )
        uow.screenings[cmd.inbox_key] = found
    return found


async def preload_submissions(cmds: list[ReceiveSubmission], uow: ReferralUnitOfWork) -> None:
    """An intake batch's reads at once (Subscription.preload): which submission ids are known, and
    the cases of the batch's children, in two statements instead of two per referral."""
    accepted = [r.submission for r in (_screened(c, uow) for c in cmds) if r.accepted]
    keys = {k for sub in accepted for k in child_keys(sub, pseudonyms.pseudonym)}
    await uow.referrals.preload_intake(keys, {sub.submission_id for sub in accepted})


async def receive_submission(cmd: ReceiveSubmission, uow: ReferralUnitOfWork) -> Referral | None:
    now = uow.now()
    result = _screened(cmd, uow)
    if not result.accepted:
        await _reject(uow, cmd, result.submission_id, result.reasons)
        return None
    sub = result.submission
    assert sub is not None
    referral = open_referral(sub, now, pseudonyms.pseudonym, uow.addresses)
    referral.guardian_keys = [person_key(h) for h in domain.guardian_ids(sub)]
    existing = await uow.referrals.open_case_for_children(referral.child_keys)
    if existing is not None:
        case = await uow.referrals.get_case(existing)
        assert case is not None
        referral.case_id = case.case_id
        referral.linked = True
        new_deadline = case.add_referral(referral, linked=True)
        referral.name_referrer(f"referrer-{case.repeat_count}")
        if not await uow.referrals.add(referral):
            await _seen_before(uow, cmd, referral)
            return None
        await uow.referrals.save_case(case)
        uow.emit(
            ReferralLinked,
            case_id=case.case_id,
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
            guardian_keys=referral.guardian_keys,
        )
    else:
        referral.case_id = uow.new_case_id()  # its key made ahead: the commit waits for no key-bucket write
        case = Case(case_id=referral.case_id, municipality=referral.municipality, opened_at=now)
        case.team_id = uow.router.route(referral.municipality, referral.concern_category, referral.channel)
        new_deadline = case.add_referral(referral, linked=False)
        if not await uow.referrals.add(referral):
            uow.case_id_unused(case.case_id)
            await _seen_before(uow, cmd, referral)  # the same submission id never opens a second referral
            return None
        await uow.referrals.add_case(case)
        urgency_due = _urgency_moments(uow, referral)[0] if referral.needs_urgency_assessment else None
        consent = await _intake_consent(uow, referral, case, announced=False) if referral.consent_to_convene else None
        uow.emit(_received(uow, referral, case, urgency_due, consent))
        uow.emit(
            ReferralAssigned,
            case_id=case.case_id,
            referral_id=referral.referral_id,
            team_id=case.team_id,
            municipality=case.municipality,
            concern_category=referral.concern_category,
        )
    if referral.urgent:
        uow.emit(
            ReferralUrgent,
            case_id=case.case_id,
            referral_id=referral.referral_id,
            municipality=referral.municipality,
            channel=referral.channel,  # type: ignore[arg-type]
            team_id=uow.router.on_duty(referral.municipality) or case.team_id,
        )
    if new_deadline:
        assert case.decision_due_by is not None
        _schedule_deadline(uow, case, "assessment_decision", case.decision_due_by)
    if referral.needs_urgency_assessment:
        _schedule_urgency(uow, referral, case)
    if referral.consent_to_convene and referral.linked:  # a new case's is in its referral.received
        await _intake_consent(uow, referral, case, announced=True)
    return referral


async def _intake_consent(uow: ReferralUnitOfWork, referral: Referral, case: Case, *, announced: bool) -> Consent:
    """The consent to convene given at intake, in the ledger. Recorded for every channel; a
    child-protection notification is handled without it (ReferralReceived.statutory tells
    consumers), but what the family agreed to still counts. ``announced``: with a consent.given of
    its own (a linked referral: the case's readers may hold an earlier withdrawal to clear), else
    in the new case's referral.received (its readers learn nothing more from a consent.given)."""
    guardian = _consenting_guardian(referral)
    return await _give(uow, case.case_id, "convene_team", None, guardian, INTAKE_RECORDER, None, announced=announced)


def _consenting_guardian(r: Referral) -> str:
    guardians = [c.contact_id for c in r.contacts if c.role == "guardian"]
    return guardians[0] if guardians else "family"


def _contacts(r: Referral) -> list[ContactPoint]:
    # The intake checked and normalised these addresses (screening.check_submission); not again.
    return [ContactPoint.model_validate(c.__dict__, context=TRUSTED) for c in r.contacts]


def _received(
    uow: ReferralUnitOfWork, r: Referral, case: Case, urgency_due_at: datetime | None = None, consent: Consent | None = None
) -> ReferralReceived:
    return uow.envelope(  # type: ignore[no-any-return]
        ReferralReceived,
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
        guardian_keys=r.guardian_keys,
        handled_at=r.handled_at,
        urgency_due_at=urgency_due_at,
        team_id=case.team_id,
        intake_consent_id=consent.consent_id if consent is not None else None,
    )


# -- retention ------------------------------------------------------------------------------------


async def forget_old_rejections(uow: ReferralUnitOfWork) -> int:
    """Delete stored rejections (raw submission and reasons) older than their retention
    (``KOOLLE_REFERRAL_REJECTION_RETENTION_DAYS``). Returns how many were deleted."""
    cutoff = uow.now() - timedelta(days=uow.config.rejection_retention_days)
    deleted = await uow.referrals.forget_rejections_before(cutoff)
    await uow.commit()
    return deleted


# -- deadlines --------------------------------------------------------------------------------------


def _schedule_deadline(uow: ReferralUnitOfWork, case: Case, kind: str, due: date, *, future_only: bool = False) -> None:
    """Two durable timers per deadline: a reminder ``lead`` working days before, and the breach.
    ``future_only``: only the timers still to fire (a transfer moves them; those that fired stay fired)."""
    approaching_at, breached_at = timer_moments(due, uow.config.deadline_lead_working_days)
    for which, at, model in (("approaching", approaching_at, DeadlineApproaching), ("breached", breached_at, DeadlineBreached)):
        if future_only and at <= uow.now():
            continue
        event = uow.envelope(model, case_id=case.case_id, occurred_at=at, deadline=kind, due_by=due, team_id=case.team_id)
        uow.schedule(event, timer_subject=timer_subject(kind, case.case_id, which), at=at, timer_id=f"timer:{uuid4()}")


def _cancel_deadline(uow: ReferralUnitOfWork, case: Case, kind: str) -> None:
    for which in ("approaching", "breached"):
        uow.cancel_timer(timer_subject(kind, case.case_id, which), cancel_id=f"cancel:{uuid4()}")


URGENCY_TIMERS = ("on_duty", "team_lead")


def _urgency_moments(uow: ReferralUnitOfWork, r: Referral) -> tuple[datetime, datetime]:
    return urgency_timer_moments(
        r.received_at,
        timedelta(minutes=uow.config.urgency_assessment_minutes),
        timedelta(minutes=uow.config.urgency_escalation_minutes),
    )


def _schedule_urgency(uow: ReferralUnitOfWork, r: Referral, case: Case) -> None:
    """Two durable timers per referral to assess at once: page the on-duty social worker when the
    assessment is overdue, then the team lead. Any hour of the week: no working-day arithmetic."""
    due, escalate = _urgency_moments(uow, r)
    for which, at in zip(URGENCY_TIMERS, (due, escalate), strict=True):
        event = uow.envelope(
            UrgencyAssessmentOverdue,
            case_id=case.case_id,
            occurred_at=at,
            referral_id=r.referral_id,
            municipality=r.municipality,
            channel=r.channel,
            urgent=r.urgent,
            received_at=r.received_at,
            due_at=due,
            escalation=which,
            team_id=case.team_id,
        )
        subject = timer_subject("urgency_assessment", r.referral_id, which)
        uow.schedule(event, timer_subject=subject, at=at, timer_id=f"timer:{uuid4()}")


def _cancel_urgency(uow: ReferralUnitOfWork, r: Referral) -> None:
    for which in URGENCY_TIMERS:
        uow.cancel_timer(timer_subject("urgency_assessment", r.referral_id, which), cancel_id=f"cancel:{uuid4()}")


async def _case(uow: ReferralUnitOfWork, case_id: UUID) -> Case:
    case = await uow.referrals.get_case(case_id)
    if case is None:
        raise NotFound("case_id")
    return case


async def start_assessment(cmd: StartAssessmentV2, uow: ReferralUnitOfWork) -> Reply:
    now = uow.now()
    case = await _case(uow, cmd.case_id)
    started_on = cmd.started_on or helsinki_date(now)
    had_decision_deadline = case.decision_pending
    complete_by = case.start_assessment(started_on, uow.actor, now)
    await uow.referrals.save_case(case)
    if had_decision_deadline:
        _cancel_deadline(uow, case, "assessment_decision")
    _schedule_deadline(uow, case, "assessment_completion", complete_by)
    uow.emit(
        AssessmentStarted,
        case_id=case.case_id,
        started_on=started_on,
        complete_by=complete_by,
        social_worker_id=uow.actor,
    )
    return Reply(ok=True, id=str(case.case_id), data={"complete_by": complete_by.isoformat()})


async def record_decision(cmd: RecordDecision, uow: ReferralUnitOfWork) -> Reply:
    """The 7-working-day decision, by the verified social worker: recorded with its outcome, the
    decision clock stops (its timers are cancelled), the case history holds who decided, when and
    why (the audit trail)."""
    case = await _case(uow, cmd.case_id)
    decided_on = cmd.decided_on or helsinki_date(uow.now())
    complete_by = case.record_decision(cmd.outcome, decided_on, uow.actor, uow.now(), cmd.reason)
    await uow.referrals.save_case(case)
    _cancel_deadline(uow, case, "assessment_decision")
    if complete_by is not None:
        _schedule_deadline(uow, case, "assessment_completion", complete_by)
    assert case.decision_due_by is not None
    within_time = bool(case.decided_within_time)
    uow.emit(
        DecisionRecorded,
        outcome=cmd.outcome,
        decided_on=decided_on,
        social_worker_id=uow.actor,
        received_at=case.received_at,
        due_by=case.decision_due_by,
        within_time=within_time,
        complete_by=complete_by,
        case_closed=case.status == "closed",
    )
    data = {"within_time": within_time, "complete_by": complete_by.isoformat() if complete_by else None}
    return Reply(ok=True, id=str(case.case_id), data=data)


async def assess_urgency(cmd: AssessUrgency, uow: ReferralUnitOfWork) -> Reply:
    """Who assessed the urgency (the verified social worker), when, and the outcome; the urgency
    timers stop. Guardians of a child-protection notification are told it was received unless that
    would endanger the child."""
    now = uow.now()
    case = await _case(uow, cmd.case_id)
    referral = await uow.referrals.get(cmd.referral_id)
    if referral is None or referral.case_id != case.case_id:
        raise NotFound("referral_id")
    at = cmd.assessed_at or now
    referral.assess_urgency(cmd.urgent_protection_needed, uow.actor, at, now, cmd.guardians_endangered, cmd.endangerment_reason)
    case.note(
        now,
        "urgency_assessed",
        referral_id=str(referral.referral_id),
        by=uow.actor,
        assessed_at=at.isoformat(),
        urgent_protection_needed=cmd.urgent_protection_needed,
        guardians_told=referral.guardians_may_be_told,
    )
    await uow.referrals.save_referral(referral)
    await uow.referrals.save_case(case)
    due = _urgency_moments(uow, referral)[0] if referral.needs_urgency_assessment else None
    if due is not None:
        _cancel_urgency(uow, referral)
    within_time = (at <= due) if due is not None else None
    uow.emit(
        UrgencyAssessed,
        referral_id=referral.referral_id,
        channel=referral.channel,
        municipality=referral.municipality,
        assessed_by=uow.actor,
        assessed_at=at,
        urgent_protection_needed=cmd.urgent_protection_needed,
        received_at=referral.received_at,
        due_at=due,
        within_time=within_time,
        guardians_may_be_told=referral.guardians_may_be_told,
        guardian_contact_ids=referral.guardian_ids if referral.guardians_may_be_told else [],
    )
    data = {"within_time": within_time, "guardians_told": referral.guardians_may_be_told}
    return Reply(ok=True, id=str(referral.referral_id), data=data)


async def transfer_case(cmd: TransferCase, uow: ReferralUnitOfWork) -> Reply:
    """The case goes to another team (and municipality), by the verified caller of its current team.
    Open statutory deadlines keep their days (counted from the receipt) and now warn the new team:
    their timers are scheduled again with the new team."""
    if cmd.team_id not in uow.router.teams():
        raise DomainError("unknown_team", "team_id")
    case = await _case(uow, cmd.case_id)
    previous_team, previous_municipality = case.transfer(cmd.team_id, cmd.municipality, uow.actor, uow.now(), cmd.reason)
    await uow.referrals.save_case(case)
    for kind, due in case.open_deadlines():
        _schedule_deadline(uow, case, kind, due, future_only=True)  # the same timer subjects: replaced
    uow.emit(
        CaseTransferred,
        team_id=cmd.team_id,
        previous_team_id=previous_team,
        municipality=case.municipality,
        previous_municipality=previous_municipality,
        transferred_by=uow.actor,
    )
    data = {"team_id": cmd.team_id, "previous_team_id": previous_team, "municipality": case.municipality}
    return Reply(ok=True, id=str(case.case_id), data=data)


async def restrict_guardian_access(cmd: RestrictGuardianAccess, uow: ReferralUnitOfWork) -> Reply:
    """A social worker restricts a guardian's access to the case, or lifts the restriction: every
    service refuses that guardian from the event on (shared/case_access.py, shared/policy.py). The
    guardian is named by henkilötunnus, kept only as its keyed hash; the note stays in the case history."""
    case = await _case(uow, cmd.case_id)
    try:
        key = person_key(parse_hetu(cmd.guardian_personal_id).value)
    except InvalidHetu as exc:
        raise DomainError(exc.code, "guardian_personal_id") from None
    [relation] = await CaseAccess(uow).relations([case.case_id])
    if key not in relation.guardians:
        raise DomainError("not_a_guardian_of_case", "guardian_personal_id")
    restricted = not cmd.lifted
    what = "guardian_access_restricted" if restricted else "guardian_access_restriction_lifted"
    case.note(uow.now(), what, by=uow.actor, reason=cmd.reason, note=cmd.note)
    await uow.referrals.save_case(case)
    uow.emit(GuardianAccessRestricted, guardian_key=key, restricted=restricted, reason=cmd.reason, recorded_by=uow.actor)
    return Reply(ok=True, id=str(case.case_id))


# -- statistics ----------------------------------------------------------------------------------------


async def on_statistics_event(ev: Any, uow: ReferralUnitOfWork) -> None:
    """The live statistics read models: the case's statutory facts, folded exactly as a rebuild folds
    the stream (services/referral/statistics.py), and for ``referral.received`` the channel counts."""
    data = ev.model_dump(mode="json")
    if ev.event_type == ReferralReceived.event_type:
        # The channel statistics: counted as a rebuild counts the stream (channel_statistics.py).
        await uow.referrals.count_referral(*channel_statistics.increments(data))
    known = await uow.referrals.statistics_facts(ev.case_id)
    model = StatutoryStatistics({str(ev.case_id): dict(known or {})})
    case = model.apply(ev.event_type, data)
    if case is not None and model.facts[case] != known:
        await uow.referrals.save_statistics_facts(case, model.facts[case], new=known is None)
        if changed := statistics.change(known, model.facts[case]):  # (a new case counts nothing yet)
            await uow.referrals.count_statutory(changed)


async def statutory_statistics(q: StatutoryStatisticsQuery, uow: ReferralUnitOfWork) -> Reply:
    rows = statistics.figures(await uow.referrals.statutory_counts(), q.municipality)
    rows = [
        r
        for r in rows
        if (q.from_month is None or r["month"] >= q.from_month) and (q.to_month is None or r["month"] <= q.to_month)
    ]
    data: dict[str, Any] = {"rows": rows}
    if q.format == "csv":
        data["csv"] = statistics.to_csv(rows)
    elif q.format == "svg":
        data |= {"content_type": "image/svg+xml", "svg": statistics.chart(rows, q.language)}
    return Reply(ok=True, data=data)


async def channel_statistics_query(q: ReferralChannelStatisticsQuery, uow: ReferralUnitOfWork) -> Reply:
    rows = channel_statistics.ChannelStatistics(await uow.referrals.channel_counts()).rows(
        q.municipality, q.from_month, q.to_month
    )
    data: dict[str, Any] = {"rows": rows}
    if q.format == "csv":
        data["csv"] = channel_statistics.to_csv(rows)
    return Reply(ok=True, data=data)


# -- migration ----------------------------------------------------------------------------------------

RECEIPT_MIGRATION = "2026-12-statutory-clocks-from-receipt"


async def recompute_open_cases(uow: ReferralUnitOfWork) -> int:
    """Once: the statutory clocks of every open case counted again from the recorded receipt
    (``submitted_at``) instead of the moment the service handled the referral, and the 3-month
    completion from receipt instead of the assessment's start. Changed timers are rescheduled; each
    change is noted in the case history and logged with ids only. Returns the cases changed."""
    if await uow.referrals.migration_applied(RECEIPT_MIGRATION):
        return 0
    now = uow.now()
    changed_cases = 0
    for case in await uow.referrals.open_cases():
        referrals = await uow.referrals.by_case(case.case_id)
        for r in referrals:
            if r.handled_at is None:  # stored before the receipt was kept apart from the handling
                r.handled_at = r.received_at
                submitted = r.details.get("submitted_at")
                if submitted:
                    r.received_at = domain.receipt_moment(datetime.fromisoformat(submitted), r.handled_at)
                await uow.referrals.save_referral(r)
        changes = case.recompute_deadlines(referrals)
        if not changes:
            continue
        changed_cases += 1
        case.note(now, "deadlines_recomputed", reason=RECEIPT_MIGRATION, changes={k: list(v) for k, v in changes.items()})
        await uow.referrals.save_case(case)
        for kind, (_, new) in changes.items():
            if new is None:
                _cancel_deadline(uow, case, kind)
            else:
                _schedule_deadline(uow, case, kind, date.fromisoformat(new))
        log.info("case %s: statutory deadlines recomputed from receipt (%s)", case.case_id, ", ".join(sorted(changes)))
    await uow.referrals.mark_migration(RECEIPT_MIGRATION, now, changed_cases)
    log.info("migration %s: %d open cases changed", RECEIPT_MIGRATION, changed_cases)
    return changed_cases


CLOSING_OUTCOMES = {"no_need_for_services", "referred_elsewhere"}
"""Outcomes after which the case at the referral stage is closed (a later referral opens a new case)."""


async def complete_assessment(cmd: CompleteAssessmentV2, uow: ReferralUnitOfWork) -> Reply:
    now = uow.now()
    case = await _case(uow, cmd.case_id)
    completed_on = cmd.completed_on or helsinki_date(now)
    case.complete_assessment(completed_on, cmd.outcome, uow.actor, now)
    if cmd.outcome in CLOSING_OUTCOMES:
        case.status = "closed"
        case.note(now, "case_closed", by=uow.actor)
    await uow.referrals.save_case(case)
    _cancel_deadline(uow, case, "assessment_completion")
    today = helsinki_date(now)
    purposes = {c.purpose for c in await uow.referrals.consents_of(case.case_id) if c.active(today)}
    may_tell = domain.referrer_may_be_told(await uow.referrals.by_case(case.case_id), purposes)
    uow.emit(
        AssessmentCompleted,
        case_id=case.case_id,
        completed_on=completed_on,
        outcome=cmd.outcome,
        social_worker_id=uow.actor,
        referrer_may_be_told=may_tell,
    )
    return Reply(ok=True, id=str(case.case_id), data={"referrer_may_be_told": may_tell})


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
    *,
    announced: bool = True,
) -> Consent:
    now = uow.now()
    consent = give_consent(case_id, purpose, recipient, given_by, recorded_by, now, valid_until)
    await uow.referrals.add_consent(consent)
    if not announced:
        return consent
    uow.emit(
        ConsentGiven,
        case_id=case_id,
        causation_id=causation_id,
        consent_id=consent.consent_id,
        purpose=purpose,
        recipient=recipient,
        given_by=given_by,
        recorded_by=recorded_by,
        valid_until=valid_until,  # type: ignore[arg-type],
    )
    return consent


def _consenting(uow: ReferralUnitOfWork, named: str | None, field: str) -> str:
    """Who gave (or withdrew) the consent: a guardian acting themself, or the family member a
    worker names."""
    if uow.principal is not None and uow.principal.kind == "guardian":
        return uow.actor
    if not named:
        raise DomainError("missing", field, en=N_("Name the family member."))
    return named


async def record_consent(cmd: RecordConsentV2, uow: ReferralUnitOfWork) -> Reply:
    case = await _case(uow, cmd.case_id)
    given_by = _consenting(uow, cmd.given_by, "given_by")
    consent = await _give(uow, case.case_id, cmd.purpose, cmd.recipient, given_by, uow.actor, cmd.valid_until, cmd.command_id)
    case.note(uow.now(), "consent_given", purpose=cmd.purpose, recipient=cmd.recipient, by=uow.actor)
    await uow.referrals.save_case(case)
    return Reply(ok=True, id=str(consent.consent_id))


async def withdraw_consent(cmd: WithdrawConsentV2, uow: ReferralUnitOfWork) -> Reply:
    now = uow.now()
    consent = await uow.referrals.get_consent(cmd.consent_id)
    if consent is None or consent.case_id != cmd.case_id:
        raise NotFound("consent_id")
    withdrawn_by = _consenting(uow, cmd.withdrawn_by, "withdrawn_by")
    withdraw(consent, withdrawn_by, now)
    await uow.referrals.save_consent(consent)
    case = await _case(uow, cmd.case_id)
    case.note(now, "consent_withdrawn", purpose=consent.purpose, recipient=consent.recipient, by=uow.actor)
    await uow.referrals.save_case(case)
    uow.emit(
        ConsentWithdrawn,
        case_id=consent.case_id,
        consent_id=consent.consent_id,
        purpose=consent.purpose,
        recipient=consent.recipient,
        withdrawn_by=withdrawn_by,
        recorded_by=uow.actor,
    )
    return Reply(ok=True, id=str(consent.consent_id))


# -- linking ----------------------------------------------------------------------------------------


async def unlink_referral(cmd: UnlinkReferralV2, uow: ReferralUnitOfWork) -> Reply:
    now = uow.now()
    referral = await uow.referrals.get(cmd.referral_id)
    if referral is None or referral.case_id != cmd.case_id:
        raise NotFound("referral_id")
    old = await _case(uow, referral.case_id)
    if len(old.referral_ids) < 2 or old.referral_ids[0] == str(referral.referral_id):
        raise DomainError("not_linked", "referral_id")
    old.remove_referral(referral.referral_id, now, uow.actor)
    new = Case(case_id=uow.new_case_id(), municipality=referral.municipality, opened_at=now)
    new.team_id = uow.router.route(referral.municipality, referral.concern_category, referral.channel)
    await uow.referrals.move(referral, new.case_id)
    remaining = await uow.referrals.by_case(old.case_id)
    # The unlinked referral may have been what started the old case's clocks: count them again
    # from the referrals that stay.
    for kind, (_, due) in old.recompute_deadlines(remaining).items():
        if due is None:
            _cancel_deadline(uow, old, kind)
        else:
            _schedule_deadline(uow, old, kind, date.fromisoformat(due))
    await uow.referrals.save_case(old)
    new_deadline = new.add_referral(referral, linked=False)
    if referral.needs_urgency_assessment and referral.urgency is None:
        _schedule_urgency(uow, referral, new)  # the same timers (by referral id), now of the new case
    new.note(now, "unlinked_from", previous_case_id=str(old.case_id), by=uow.actor, reason=cmd.reason)
    await uow.referrals.add_case(new)
    uow.emit(
        ReferralUnlinked,
        case_id=new.case_id,
        referral_id=referral.referral_id,
        previous_case_id=old.case_id,
        recorded_by=uow.actor,
        team_id=new.team_id,
        municipality=new.municipality,
    )
    uow.emit(
        ReferralAssigned,
        case_id=new.case_id,
        referral_id=referral.referral_id,
        team_id=new.team_id,
        municipality=new.municipality,
        concern_category=referral.concern_category,
    )
    if new_deadline:
        assert new.decision_due_by is not None
        _schedule_deadline(uow, new, "assessment_decision", new.decision_due_by)
    return Reply(ok=True, id=str(new.case_id), data={"previous_case_id": str(old.case_id)})


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


async def get_case(q: CaseQueryV2, uow: ReferralUnitOfWork) -> Reply:
    case = await uow.referrals.get_case(q.case_id)
    found = await uow.referrals.by_case(q.case_id) if case else []
    await uow.referrals.audit(
        actor=uow.actor,
        case_id=str(q.case_id),
        action="read_case",
        purpose=q.purpose,
        result="found" if case else "not_found",
        scope=f"case:{q.case_id}",
    )
    if case is None:
        raise NotFound("case_id")
    consents = await uow.referrals.consents_of(q.case_id)
    return Reply(
        ok=True,
        id=str(q.case_id),
        data={
            **_case_summary(case),
            "received_at": case.received_at.isoformat() if case.received_at else None,
            "decision": case.decision,
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
                    "handled_at": r.handled_at.isoformat() if r.handled_at else None,
                    "urgency": r.urgency,
                    "status": r.status,
                    "urgent": r.urgent,
                    "statutory": r.statutory,
                    "linked": r.linked,
                    "details": r.details,
                    "contacts": [{"contact_id": c.contact_id, "role": c.role, "language": c.language} for c in r.contacts],
                }
                for r in found
            ],
        },
    )


async def access_log(q: AccessLogQueryV2, uow: ReferralUnitOfWork) -> Reply:
    """Who has seen this case's data (Client Data Act 703/2023 s. 11). The answer is itself a
    disclosure, so it is audited after it is read (it shows up in the next answer)."""
    case_ids = [str(q.case_id)] if await uow.referrals.get_case(q.case_id) else []
    entries = await uow.referrals.access_log(case_ids) if case_ids else []
    await uow.referrals.audit(
        actor=uow.actor,
        case_id=str(q.case_id),
        action="read_access_log",
        purpose=q.purpose,
        result="found" if case_ids else "not_found",
        scope=f"case:{q.case_id}",
    )
    if not case_ids:
        raise NotFound("case_id")
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
        actor=uow.actor,
        case_id=None,  # a rejected submission belongs to no case
        action="read_rejected_submission",
        purpose=q.purpose,
        result="found" if found else "not_found",
        scope=f"rejection:{q.rejection_id}",
    )
    if found is None:
        raise NotFound("rejection_id")
    return Reply(
        ok=True, data={"rejection": {**_rejection_summary(found), "raw_base64": base64.b64encode(found["raw"]).decode()}}
    )


async def erase_family(cmd: EraseFamilyCommand, uow: ReferralUnitOfWork) -> Reply:
    """An operator erases a family's case at the end of its retention (``ops.referral.erase_family.v1``):
    the order is audited (ids only), the case's data key is destroyed (every sealed field of the
    case, in every stream, becomes unreadable), and ``referral.case_erased`` tells every service,
    this one included, to erase the family's data in its own database."""
    found = await uow.referrals.get_case(cmd.case_id) is not None
    destroyed, result = False, "erased" if found else "not_found"
    if found and uow.db.sealer is not None:
        try:
            # Before the commit: a failure leaves nothing half done that a retry would not finish.
            destroyed = await uow.db.sealer.keys.destroy(str(cmd.case_id))
        except Exception as exc:  # noqa: BLE001 - refused with a code; the order's record says so
            log.error("case key of %s not destroyed (%s)", cmd.case_id, type(exc).__name__)
            result = "key_store_unavailable"
    await uow.referrals.audit(
        actor=uow.actor,
        case_id=str(cmd.case_id),
        action="erase_family",
        purpose=cmd.ground,
        result=result,
        scope=f"retention:{cmd.reference}" if cmd.reference else None,
    )
    if not found:
        raise NotFound("case_id")
    if result != "erased":
        raise DomainError("key_store_unavailable", "$")
    event = uow.emit(CaseErased, case_id=cmd.case_id, erased_by=uow.actor, key_destroyed=destroyed)
    return Reply(
        ok=True,
        id=str(cmd.case_id),
        data={"case_id": str(cmd.case_id), "key_destroyed": destroyed, "event_id": str(event.event_id)},
    )


def _rejection_summary(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "rejection_id": r["rejection_id"],
        "submission_id": r["submission_id"],
        "received_at": r["received_at"].isoformat(),
        "stream_seq": r["stream_seq"],
        "reasons": [{"field": x.get("field"), "code": x.get("code")} for x in r["reasons"] or []],
    }


async def team_cases(q: TeamCasesQueryV2, uow: ReferralUnitOfWork) -> Reply:
    found = await uow.referrals.open_cases_of_team(q.team_id)
    await uow.audit.read_cases(q, "list_team_cases", [c.case_id for c in found], scope=f"team:{q.team_id}")
    return Reply(ok=True, id=q.team_id, data={"team_id": q.team_id, "cases": [_case_summary(c) for c in found]})


async def deadlines_due(q: DeadlinesDueQueryV2, uow: ReferralUnitOfWork) -> Reply:
    today = helsinki_date(uow.now())
    horizon = add_working_days(today, q.working_days)
    found = await uow.referrals.cases_due_by(horizon, q.team_id)
    rows = [
        {"case_id": str(c.case_id), "team_id": c.team_id, "deadline": kind, "due_by": due.isoformat(), "overdue": due < today}
        for c in found
        for kind, due in c.open_deadlines()
        if due <= horizon
    ]
    scope = f"team:{q.team_id}" if q.team_id else "all"
    await uow.audit.read_cases(q, "list_deadlines", [c.case_id for c in found], scope=scope)
    rows.sort(key=lambda r: r["due_by"])
    return Reply(ok=True, data={"until": horizon.isoformat(), "deadlines": rows})
