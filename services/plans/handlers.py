"""Plans use cases: one async function per command, query or consumed event."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any
from uuid import uuid4

from shared import audit
from shared.clock import local
from shared.contracts import FieldError, Reply
from shared.contracts.common import ContactPoint
from shared.contracts.meetings import MeetingHeld, ResponsibleWorkerDeactivated
from shared.contracts.plans import (
    AgreePlan,
    ClosePlan,
    CompleteHandover,
    EffectivenessChartQuery,
    EffectivenessQuery,
    FollowupDue,
    FollowupGraceEnded,
    FollowupMeetingRequested,
    FollowupOverdue,
    FollowupRecorded,
    FollowupReminderDue,
    FollowupRescheduled,
    OverdueQuery,
    PlanAgreed,
    PlanCaseQuery,
    PlanClosed,
    PlanCopyPrepared,
    PlanHandedOver,
    PlanHandoverOpened,
    PlanQuery,
    PlanRevised,
    PlansAccessLogQuery,
    PlanShared,
    PrintablePlanQuery,
    RecordFollowup,
    RecordServiceStatus,
    RescheduleFollowup,
    ResponsibleWorker,
    RevisePlan,
    ServiceStartOverdue,
    ServiceStatusRecorded,
)
from shared.contracts.referral import ConsentGiven, ConsentWithdrawn
from shared.errors import DomainError, NotFound
from shared.requests import reachable

from . import charts, domain, printable
from .adapters import PlansUnitOfWork

SERVICE = "plans"


def _frame(cmd: AgreePlan | RevisePlan) -> dict[str, Any]:
    return {
        "changes_needed": list(cmd.changes_needed),
        "actions": {
            "home": [a.model_dump(mode="json", exclude_none=True) for a in cmd.actions_at_home],
            "everyday_environment": [a.model_dump(mode="json", exclude_none=True) for a in cmd.actions_in_everyday_environment],
            "elsewhere": [a.model_dump(mode="json") for a in cmd.actions_elsewhere],
        },
        "worker_contacts_family": cmd.worker_contacts_family,
        "family_contacts_worker": cmd.family_contacts_worker,
        "responsible_workers": [w.model_dump(mode="json") for w in cmd.responsible_workers],
        "next_contact_at": cmd.next_contact_at,
        "family_contacts": [c.model_dump(mode="json") for c in cmd.family_contacts],
        "other_parties": [p.model_dump(mode="json") for p in cmd.other_parties],
        "family_language": cmd.family_language,
    }


def refusal(exc: domain.PlanIncomplete) -> Reply:
    """Every missing part of the frame in one reply."""
    return Reply(ok=False, errors=[FieldError(field=p.field, code=p.code, message=p.message) for p in exc.problems])


async def _plan(uow: PlansUnitOfWork, plan_id: Any) -> domain.Plan:
    """The plan, if it belongs to the case the request names (access was decided from the case)."""
    plan = await uow.plans.get(plan_id)
    if plan is None or str(plan.case_id) != str(uow.cause.case_id):
        raise NotFound("plan_id")
    return plan


# -- the plan and its versions --------------------------------------------------------------------


async def agree_plan(cmd: AgreePlan, uow: PlansUnitOfWork) -> Reply:
    if cmd.meeting_id is not None:
        held_for = await uow.plans.case_of_meeting(cmd.meeting_id)
        if held_for is not None and held_for != str(cmd.case_id):
            raise DomainError("meeting_of_other_case", "meeting_id")
    try:
        plan = domain.agree(case_id=cmd.case_id, meeting_id=cmd.meeting_id, recorded_by=uow.actor, now=uow.now(), **_frame(cmd))
    except domain.PlanIncomplete as exc:
        return refusal(exc)
    new_services = domain.track_services(plan, uow.now())
    await uow.plans.add(plan)
    uow.emit(
        PlanAgreed,
        case_id=plan.case_id,
        occurred_at=plan.agreed_at,
        plan_id=plan.plan_id,
        plan_version=plan.version,
        meeting_id=plan.meeting_id,
        responsible_workers=[ResponsibleWorker.model_validate(w) for w in plan.responsible_workers],
        next_contact_at=plan.next_contact_at,
        family_contacts=[ContactPoint.model_validate(c) for c in plan.family_contacts],
    )
    _family_copy(plan, uow)
    apply_timers(plan, uow)
    for svc in new_services:
        schedule_service(plan, svc, uow)
    return Reply(ok=True, id=str(plan.plan_id), data={"version": plan.version})


def _family_copy(plan: domain.Plan, uow: PlansUnitOfWork) -> None:
    """The family's copy of this version (HTML and PDF) for the notifications service, which sends it
    with the plan message. Shared parties are not named: a new version is not shared yet."""
    # ReportLab (≈ 15 MB resident) is loaded when the first plan is agreed, not at start.
    from . import printable_pdf

    content = plan.snapshot()
    language = plan.language()
    uow.emit(
        PlanCopyPrepared,
        case_id=plan.case_id,
        plan_id=plan.plan_id,
        plan_version=plan.version,
        language=language,
        html=printable.render(content, language),
        pdf_base64=base64.b64encode(printable_pdf.render_pdf(content, language)).decode("ascii"),
    )


async def revise_plan(cmd: RevisePlan, uow: PlansUnitOfWork) -> Reply:
    plan = await _plan(uow, cmd.plan_id)
    try:
        domain.revise(plan, recorded_by=uow.actor, now=uow.now(), expected_version=cmd.expected_version, **_frame(cmd))
    except domain.PlanIncomplete as exc:
        return refusal(exc)
    new_services = domain.track_services(plan, uow.now())
    await uow.plans.add_version(plan)
    await uow.plans.save(plan)
    assert plan.next_contact_at is not None
    uow.emit(
        PlanRevised,
        case_id=plan.case_id,
        plan_id=plan.plan_id,
        plan_version=plan.version,
        responsible_workers=[ResponsibleWorker.model_validate(w) for w in plan.responsible_workers],
        next_contact_at=plan.next_contact_at,
        family_contacts=[ContactPoint.model_validate(c) for c in plan.family_contacts],
    )
    _family_copy(plan, uow)
    apply_timers(plan, uow)
    for svc in new_services:
        schedule_service(plan, svc, uow)
    return Reply(ok=True, id=str(plan.plan_id), data={"version": plan.version})


async def close_plan(cmd: ClosePlan, uow: PlansUnitOfWork) -> Reply:
    plan = await _plan(uow, cmd.plan_id)
    domain.close(plan, outcome=cmd.outcome, recorded_by=uow.actor, now=uow.now())
    await uow.plans.save(plan)
    uow.emit(
        PlanClosed,
        case_id=plan.case_id,
        plan_id=plan.plan_id,
        plan_version=plan.version,
        outcome=cmd.outcome,
    )
    apply_timers(plan, uow)  # closed: every follow-up timer is cancelled
    return Reply(ok=True, id=str(plan.plan_id), data={"version": plan.version})


# -- follow-up timers -----------------------------------------------------------------------------


def apply_timers(plan: domain.Plan, uow: PlansUnitOfWork, *, future_only: bool = False) -> None:
    """Put the open round's durable timers in place (a timer subject scheduled again replaces the
    earlier one) and cancel the ones the round does not have (closed plan, no next contact).
    ``future_only``: a handover moves only the timers still to fire (those that fired stay fired)."""
    at = domain.timers(plan, uow.now(), uow.policy)
    if future_only:
        at = {k: None if v is None or v <= uow.now() else v for k, v in at.items()}
    due = plan.next_contact_at
    common: dict[str, Any] = {"producer": SERVICE, "case_id": plan.case_id, "plan_id": plan.plan_id, "plan_version": plan.version}
    subjects = {"reminder": plan.reminder_subject(), "due": plan.timer_subject(), "grace": plan.grace_subject()}
    # Schedules first, cancels last: the relay sends a purge only after the publishes before it, so this
    # order lets the timers that matter go out in one pipelined round.
    for kind in ("due", "grace", "reminder"):
        when = at[kind]
        if when is None:
            continue
        assert due is not None
        ev: Any
        if kind == "reminder":
            ev = FollowupReminderDue(
                **common,
                occurred_at=when,
                due_at=due,
                responsible_worker_ids=plan.responsible_worker_ids,
                family_contact_ids=plan.family_contact_ids,
            )
        elif kind == "due":
            ev = FollowupDue(
                **common,
                occurred_at=when,
                due_at=due,
                responsible_worker_ids=plan.responsible_worker_ids,
                family_contact_ids=plan.family_contact_ids,
            )
        else:
            ev = FollowupGraceEnded(**common, occurred_at=when, due_at=due)
        uow.schedule(ev, timer_subject=subjects[kind], at=when, timer_id=f"timer:{uuid4()}")
    for kind in ("reminder", "due", "grace"):
        if at[kind] is None and not future_only:
            uow.cancel_timer(subjects[kind], f"cancel:{uuid4()}")


def _service_timer(svc: dict[str, Any]) -> str:
    return f"timers.plans.service.{svc['service_id']}"


def schedule_service(plan: domain.Plan, svc: dict[str, Any], uow: PlansUnitOfWork) -> None:
    """The onward service's start-by timer (durable): scheduled while it has not started by an agreed
    day, cancelled once it started or was declined. Scheduling again replaces it."""
    at = domain.service_start_overdue_at(svc)
    if at is None:
        uow.cancel_timer(_service_timer(svc), f"cancel:{uuid4()}")
        return
    event = uow.envelope(
        ServiceStartOverdue,
        case_id=plan.case_id,
        occurred_at=at,
        plan_id=plan.plan_id,
        service_id=svc["service_id"],
        start_by=svc["start_by"],
        responsible_worker_ids=plan.responsible_worker_ids,
        family_contact_ids=plan.family_contact_ids,
    )
    uow.schedule(event, timer_subject=_service_timer(svc), at=at, timer_id=f"timer:{uuid4()}")


# Kept for callers of the skeleton's name.
def schedule_followup(plan: domain.Plan, uow: PlansUnitOfWork) -> None:
    apply_timers(plan, uow)


async def reschedule_followup(cmd: RescheduleFollowup, uow: PlansUnitOfWork) -> Reply:
    plan = await _plan(uow, cmd.plan_id)
    previous = domain.reschedule(plan, next_contact_at=cmd.next_contact_at, now=uow.now())
    await uow.plans.save(plan)
    uow.emit(
        FollowupRescheduled,
        case_id=plan.case_id,
        plan_id=plan.plan_id,
        plan_version=plan.version,
        previous_due_at=previous,
        due_at=cmd.next_contact_at,
        responsible_worker_ids=plan.responsible_worker_ids,
        family_contact_ids=plan.family_contact_ids,
    )
    apply_timers(plan, uow)
    return Reply(ok=True, id=str(plan.plan_id))


async def on_followup_due(ev: FollowupDue, uow: PlansUnitOfWork) -> None:
    """The follow-up timer fired. Stale (moved, revised, closed) or repeated timers change nothing."""
    plan = await uow.plans.get(ev.plan_id)
    if domain.followup_fired(plan, plan_version=ev.plan_version, due_at=ev.due_at, now=uow.now()):
        assert plan is not None
        await uow.plans.save(plan)


async def on_grace_ended(ev: FollowupGraceEnded, uow: PlansUnitOfWork) -> None:
    plan = await uow.plans.get(ev.plan_id)
    if domain.grace_ended(plan, plan_version=ev.plan_version, due_at=ev.due_at, now=uow.now()):
        assert plan is not None
        await uow.plans.save(plan)
        uow.emit(
            FollowupOverdue,
            case_id=plan.case_id,
            plan_id=plan.plan_id,
            plan_version=plan.version,
            due_at=ev.due_at,
            responsible_worker_ids=plan.responsible_worker_ids,
        )


async def record_followup(cmd: RecordFollowup, uow: PlansUnitOfWork) -> Reply:
    plan = await _plan(uow, cmd.plan_id)
    now = uow.now()
    domain.record_followup(
        plan,
        recorded_by=uow.actor,
        now=now,
        next_contact_at=cmd.next_contact_at,
        meeting_requested=cmd.followup_meeting is not None,
    )
    await uow.plans.save(plan)
    record_id = str(uuid4())
    scores = {k: int(v) for k, v in cmd.wellbeing_scores.items()}
    await uow.plans.add_followup_record(
        record_id=record_id,
        plan_id=str(plan.plan_id),
        case_id=str(plan.case_id),
        plan_version=plan.version,
        recorded_by=uow.actor,
        recorded_at=now,
        what_happened=cmd.what_happened,
        wellbeing_scores=scores,
        next_contact_at=cmd.next_contact_at,
        meeting=cmd.followup_meeting.model_dump(mode="json") if cmd.followup_meeting else None,
    )
    recorded = uow.emit(
        FollowupRecorded,
        case_id=plan.case_id,
        plan_id=plan.plan_id,
        plan_version=plan.version,
        recorded_by=uow.actor,
        wellbeing_scores=scores,
        next_contact_at=cmd.next_contact_at,
        followup_meeting_requested=cmd.followup_meeting is not None,
    )
    if scores:  # keyed by the event, so that a rebuild from the PLANS stream finds the same measurement
        await uow.plans.add_measurement(f"followup:{recorded.event_id}", plan.case_id, "followup", now, scores)
    if cmd.followup_meeting is not None:
        m = cmd.followup_meeting
        uow.emit(
            FollowupMeetingRequested,
            case_id=plan.case_id,
            plan_id=plan.plan_id,
            plan_version=plan.version,
            requested_by=uow.actor,
            roles_needed=list(m.roles_needed),
            participant_ids=list(m.participant_ids) or plan.family_contact_ids + plan.responsible_worker_ids,
            not_before=m.not_before,
        )
    apply_timers(plan, uow)
    return Reply(ok=True, id=record_id, data={"plan_id": str(plan.plan_id)})


# -- onward services ---------------------------------------------------------------------------------


async def record_service_status(cmd: RecordServiceStatus, uow: PlansUnitOfWork) -> Reply:
    plan = await _plan(uow, cmd.plan_id)
    today = local(uow.now()).date()
    svc, previous = domain.record_service_status(
        plan, str(cmd.service_id), cmd.status, on=cmd.on or today, today=today, start_by=cmd.start_by, by=uow.actor
    )
    await uow.plans.save(plan)
    schedule_service(plan, svc, uow)
    uow.emit(
        ServiceStatusRecorded,
        plan_id=plan.plan_id,
        service_id=cmd.service_id,
        status=cmd.status,
        previous_status=previous,
        on=cmd.on or today,
        start_by=svc.get("start_by"),
        days_late=svc.get("days_late"),
        recorded_by=uow.actor,
    )
    data = {"status": svc["status"], "start_by": svc.get("start_by"), "days_late": svc.get("days_late")}
    return Reply(ok=True, id=str(cmd.service_id), data=data)


async def on_service_start_overdue(ev: ServiceStartOverdue, uow: PlansUnitOfWork) -> None:
    """The start-by timer fired: the service is marked late (it counts in the statistics)."""
    plan = await uow.plans.get(ev.plan_id)
    if domain.service_overdue(plan, str(ev.service_id), ev.start_by, uow.now()) is not None:
        assert plan is not None
        await uow.plans.save(plan)


# -- handover: a responsible worker leaves ---------------------------------------------------------


async def on_responsible_worker_deactivated(ev: ResponsibleWorkerDeactivated, uow: PlansUnitOfWork) -> None:
    """A handover opens for each active plan of the case the worker is responsible for; with a
    successor named in the roster it completes at once."""
    for plan in await uow.plans.of_case(ev.case_id):
        h = domain.open_handover(plan, from_worker_id=ev.worker_id, now=uow.now())
        if h is None:
            continue
        uow.emit(
            PlanHandoverOpened,
            plan_id=plan.plan_id,
            plan_version=plan.version,
            handover_id=h["handover_id"],
            from_worker_id=ev.worker_id,
            successor_named=ev.successor is not None,
        )
        if ev.successor is not None:
            await _hand_over(plan, h["handover_id"], ev.successor, uow, by=ev.recorded_by)
        await uow.plans.save(plan)


async def complete_handover(cmd: CompleteHandover, uow: PlansUnitOfWork) -> Reply:
    plan = await _plan(uow, cmd.plan_id)
    await _hand_over(plan, str(cmd.handover_id), cmd.responsible_worker, uow, by=uow.actor)
    await uow.plans.save(plan)
    return Reply(ok=True, id=str(plan.plan_id), data={"responsible_worker_ids": plan.responsible_worker_ids})


async def _hand_over(plan: domain.Plan, handover_id: str, successor: ResponsibleWorker, uow: PlansUnitOfWork, *, by: str) -> None:
    """The new worker takes over: the plan's timers still to fire now name them, they get the plan,
    and the family is told its new contact (plan.handed_over)."""
    h = domain.complete_handover(plan, handover_id, successor.model_dump(mode="json"), by=by, now=uow.now())
    apply_timers(plan, uow, future_only=True)
    for svc in plan.services:
        at = domain.service_start_overdue_at(svc)
        if at is not None and at > uow.now():
            schedule_service(plan, svc, uow)
    uow.emit(
        PlanHandedOver,
        plan_id=plan.plan_id,
        plan_version=plan.version,
        handover_id=handover_id,
        from_worker_id=h["from_worker_id"],
        responsible_worker=successor,
        responsible_worker_ids=plan.responsible_worker_ids,
        family_contact_ids=plan.family_contact_ids,
        family_language=plan.language(),
    )
    await share_current_version(plan, uow, only=successor.worker_id)


# -- sharing --------------------------------------------------------------------------------------


async def share_current_version(plan: domain.Plan, uow: PlansUnitOfWork, *, only: str | None = None, cause: Any = None) -> int:
    """Share the plan's current version with every recipient it may go to and has not gone to yet.
    Consent is read NOW, at sharing time: a consent withdrawn after the agreement stops the share."""
    if plan.status != "active":
        return 0
    consents = await uow.plans.consents_of_case(plan.case_id)
    done = await uow.plans.shared_with(plan.plan_id, plan.version)
    today = local(uow.now()).date()
    n = 0
    scope = f"plan:{plan.plan_id}:v{plan.version}"
    for t in domain.share_targets(plan, consents, today):
        if t.recipient_id in done or (only is not None and t.recipient_id != only):
            continue
        await uow.plans.add_share(plan, t.recipient_id, t.recipient_role, t.basis, t.consent_id, t.language, uow.now())
        await uow.audit.record(
            actor=t.recipient_id,
            case_id=plan.case_id,
            action="share_plan",
            purpose=f"to {t.recipient_role} (basis: {t.basis})",
            result=audit.DISCLOSED,
            scope=scope,
        )
        uow.emit(
            PlanShared,
            case_id=plan.case_id,
            causation_id=cause,
            plan_id=plan.plan_id,
            plan_version=plan.version,
            recipient_id=t.recipient_id,
            recipient_role=t.recipient_role,
            basis=t.basis,  # type: ignore[arg-type]
            consent_id=t.consent_id,
            contact=ContactPoint.model_validate(t.contact) if t.contact else None,
            language=t.language,
        )
        n += 1
    if only is None:
        for party_id in domain.withheld_parties(plan, consents, today):
            if party_id not in done:
                await uow.audit.record(
                    actor=party_id,
                    case_id=plan.case_id,
                    action="share_plan",
                    purpose="no share_plan consent in force",
                    result=audit.WITHHELD,
                    scope=scope,
                )
    return n


async def on_plan_agreed(ev: PlanAgreed, uow: PlansUnitOfWork) -> None:
    """The sharing step, after the agreement has committed."""
    plan = await uow.plans.get(ev.plan_id)
    if plan is not None and plan.version == ev.plan_version:  # a later version is shared on its own event
        await share_current_version(plan, uow, cause=ev.event_id)


async def on_plan_revised(ev: PlanRevised, uow: PlansUnitOfWork) -> None:
    plan = await uow.plans.get(ev.plan_id)
    if plan is not None and plan.version == ev.plan_version:
        await share_current_version(plan, uow, cause=ev.event_id)


async def on_consent_given(ev: ConsentGiven, uow: PlansUnitOfWork) -> None:
    if ev.purpose != "share_plan" or not ev.recipient:
        return
    if not await uow.plans.consent_given(ev.consent_id, ev.case_id, ev.recipient, ev.valid_until, uow.now()):
        return  # known already (its withdrawal came first): nothing is shared
    # Consent given after the plan was shared: the current version goes to the party now.
    for plan in await uow.plans.of_case(ev.case_id):
        if await uow.plans.shared_with(plan.plan_id, plan.version):  # the sharing step has run for this version
            await share_current_version(plan, uow, only=ev.recipient, cause=ev.event_id)


async def on_consent_withdrawn(ev: ConsentWithdrawn, uow: PlansUnitOfWork) -> None:
    """From now on no share to this party is made; shares already made stay made."""
    if ev.purpose != "share_plan" or not ev.recipient:
        return
    await uow.plans.consent_withdrawn(ev.consent_id, ev.case_id, ev.recipient, uow.now())


# -- wellbeing star -------------------------------------------------------------------------------


async def on_meeting_held(ev: MeetingHeld, uow: PlansUnitOfWork) -> None:
    """The first look at the wellbeing star, at the joint meeting."""
    await uow.plans.remember_meeting(ev.meeting_id, ev.case_id)
    if ev.wellbeing_scores:
        await uow.plans.add_measurement(f"meeting:{ev.meeting_id}", ev.case_id, "meeting", ev.held_at, dict(ev.wellbeing_scores))


# -- queries --------------------------------------------------------------------------------------


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


async def _refuse(uow: PlansUnitOfWork, q: Any, action: str, case_id: Any, scope: str, field: str) -> NotFound:
    """A refused read is audited too: recorded here; the runtime commits a read's records before it answers."""
    await uow.audit.read(q, action, case_id, audit.NOT_FOUND, scope)
    return NotFound(field)


async def case_plans(q: PlanCaseQuery, uow: PlansUnitOfWork) -> Reply:
    found = await uow.plans.of_case(q.case_id)
    if not found:
        raise await _refuse(uow, q, "read_plans", q.case_id, f"case:{q.case_id}", "case_id")
    await uow.audit.read(q, "read_plans", q.case_id, audit.FOUND, f"case:{q.case_id}")
    now = uow.now()
    return Reply(
        ok=True,
        id=str(q.case_id),
        data={
            "plans": [
                {
                    "plan_id": str(p.plan_id),
                    "version": p.version,
                    "status": p.status,
                    "outcome": p.outcome,
                    "next_contact_at": _iso(p.next_contact_at),
                    "followup_due_fired_at": _iso(p.followup_due_fired_at),
                    "overdue": domain.is_overdue(p, now, uow.policy.overdue_grace),
                    "followups_recorded": p.followups_recorded,
                    "responsible_worker_ids": p.responsible_worker_ids,
                }
                for p in found
            ]
        },
    )


async def _audited_version(
    uow: PlansUnitOfWork, q: PlanQuery | PrintablePlanQuery, action: str
) -> tuple[domain.Plan, dict[str, Any]]:
    """The plan version asked for, with the read recorded (found, or refused as not found)."""
    plan = await uow.plans.get(q.plan_id)
    if plan is None or str(plan.case_id) != str(q.case_id):
        raise await _refuse(uow, q, action, q.case_id, f"plan:{q.plan_id}", "plan_id")
    content = await uow.plans.version(plan.plan_id, q.version or plan.version)
    scope = f"plan:{plan.plan_id}:v{q.version or plan.version}"
    if content is None:
        raise await _refuse(uow, q, action, plan.case_id, scope, "version")
    await uow.audit.read(q, action, plan.case_id, audit.FOUND, scope)
    return plan, content


def _as_read_by(uow: PlansUnitOfWork, content: dict[str, Any]) -> dict[str, Any]:
    guardian = uow.principal is not None and uow.principal.kind == "guardian"
    return domain.guardian_view(content) if guardian else content


async def plan_detail(q: PlanQuery, uow: PlansUnitOfWork) -> Reply:
    plan, content = await _audited_version(uow, q, "read_plan")
    content = _as_read_by(uow, content)
    shared = await uow.plans.shared_with(plan.plan_id, content["version"])
    withheld = domain.withheld_parties(plan, await uow.plans.consents_of_case(plan.case_id), local(uow.now()).date())
    versions = await uow.plans.versions(plan.plan_id)
    followups = await uow.plans.followup_records(plan.plan_id)
    return Reply(
        ok=True,
        id=str(plan.plan_id),
        data={
            "plan": content,
            "current_version": plan.version,
            "status": plan.status,
            "outcome": plan.outcome,
            "versions": versions,
            "shared_with": sorted(shared.values(), key=lambda s: s["recipient_id"]),
            "withheld_for_lack_of_consent": withheld if content["version"] == plan.version else [],
            "followups": followups,
            "next_contact_at": _iso(plan.next_contact_at),
            "responsible_worker_ids": plan.responsible_worker_ids,
            "services": plan.services,
            "handovers": plan.handovers,
        },
    )


async def printable_plan(q: PrintablePlanQuery, uow: PlansUnitOfWork) -> Reply:
    plan, content = await _audited_version(uow, q, "print_plan")
    content = _as_read_by(uow, content)
    language = q.language or content.get("family_language") or plan.language()
    shared = await uow.plans.shared_with(plan.plan_id, content["version"])
    doc = printable.render(
        content, language, shared_roles=sorted({s["recipient_role"] for s in shared.values() if s["basis"] == "consent"})
    )
    return Reply(
        ok=True,
        id=str(plan.plan_id),
        data={"content_type": "text/html; charset=utf-8", "language": language, "version": content["version"], "html": doc},
    )


async def overdue_followups(q: OverdueQuery, uow: PlansUnitOfWork) -> Reply:
    now = uow.now()
    grace = uow.policy.overdue_grace
    rows = []
    due = await uow.plans.open_rounds_due_before(now - grace)
    mine = await reachable(uow, [str(p.case_id) for p in due])  # only cases the caller reaches
    for p in due:
        if str(p.case_id) not in mine:
            continue
        if q.responsible_worker_id and q.responsible_worker_id not in p.responsible_worker_ids:
            continue
        assert p.next_contact_at is not None
        rows.append(
            {
                "plan_id": str(p.plan_id),
                "case_id": str(p.case_id),
                "plan_version": p.version,
                "due_at": p.next_contact_at.isoformat(),
                "overdue_since": (p.next_contact_at + grace).isoformat(),
                "responsible_worker_ids": p.responsible_worker_ids,
            }
        )
    scope = f"worker:{q.responsible_worker_id}" if q.responsible_worker_id else "all"
    await uow.audit.read_cases(q, "list_overdue_followups", (r["case_id"] for r in rows), scope)
    return Reply(ok=True, data={"overdue": rows, "grace_seconds": grace.total_seconds()})


async def effectiveness(q: EffectivenessQuery, uow: PlansUnitOfWork) -> Reply:
    ms = await uow.plans.measurements(q.case_id)
    if not ms:
        raise await _refuse(uow, q, "read_wellbeing", q.case_id, f"case:{q.case_id}", "case_id")
    await uow.audit.read(q, "read_wellbeing", q.case_id, audit.FOUND, f"case:{q.case_id}")
    return Reply(ok=True, id=str(q.case_id), data=domain.effectiveness(ms))


async def effectiveness_chart(q: EffectivenessChartQuery, uow: PlansUnitOfWork) -> Reply:
    ms = await uow.plans.measurements(q.case_id)
    if not ms:
        raise await _refuse(uow, q, "read_wellbeing_chart", q.case_id, f"case:{q.case_id}", "case_id")
    await uow.audit.read(q, "read_wellbeing_chart", q.case_id, audit.FOUND, f"case:{q.case_id}")
    svg = charts.radar(ms, q.language) if q.kind == "radar" else charts.lines(ms, q.language)
    return Reply(ok=True, id=str(q.case_id), data={"content_type": "image/svg+xml", "kind": q.kind, "svg": svg})


async def access_log(q: PlansAccessLogQuery, uow: PlansUnitOfWork) -> Reply:
    """Who has read these cases' plans, and to whom a plan went (or not). Audited after it is read."""
    return await audit.answer_access_log(q, uow.audit)
