"""Plans use cases."""

from __future__ import annotations

from uuid import uuid4

from shared.contracts import AgreePlan, FollowupDue, PlanAgreed, PlanCaseQuery, Reply
from shared.contracts.common import ContactPoint
from shared.contracts.plans import ResponsibleWorker
from shared.errors import NotFound

from . import domain
from .adapters import PlansUnitOfWork

SERVICE = "plans"


async def agree_plan(cmd: AgreePlan, uow: PlansUnitOfWork) -> Reply:
    plan = domain.agree(
        case_id=cmd.case_id,
        meeting_id=cmd.meeting_id,
        recorded_by=cmd.recorded_by,
        now=uow.now(),
        changes_needed=list(cmd.changes_needed),
        actions={
            "home": [a.model_dump() for a in cmd.actions_at_home],
            "everyday_environment": [a.model_dump() for a in cmd.actions_in_everyday_environment],
            "elsewhere": [a.model_dump() for a in cmd.actions_elsewhere],
        },
        worker_contacts_family=cmd.worker_contacts_family,
        family_contacts_worker=cmd.family_contacts_worker,
        responsible_workers=[w.model_dump(mode="json") for w in cmd.responsible_workers],
        next_contact_at=cmd.next_contact_at,
        family_contacts=[c.model_dump(mode="json") for c in cmd.family_contacts],
    )
    await uow.plans.add(plan)
    uow.emit(
        PlanAgreed(
            producer=SERVICE,
            case_id=plan.case_id,
            causation_id=cmd.command_id,
            occurred_at=plan.agreed_at,
            plan_id=plan.plan_id,
            plan_version=plan.version,
            meeting_id=plan.meeting_id,
            responsible_workers=[ResponsibleWorker.model_validate(w) for w in plan.responsible_workers],
            next_contact_at=plan.next_contact_at,
            family_contacts=[ContactPoint.model_validate(c) for c in plan.family_contacts],
        )
    )
    schedule_followup(plan, uow)
    reply = Reply(ok=True, id=str(plan.plan_id))
    await uow.remember_reply(str(cmd.command_id), "cmd.plans.agree.v1", reply.model_dump(mode="json"))
    await uow.commit()
    return reply


def schedule_followup(plan: domain.Plan, uow: PlansUnitOfWork) -> None:
    """The next contact time becomes a durable JetStream message schedule that emits followup.due."""
    due = FollowupDue(
        producer=SERVICE,
        case_id=plan.case_id,
        occurred_at=plan.next_contact_at,
        plan_id=plan.plan_id,
        plan_version=plan.version,
        due_at=plan.next_contact_at,
        responsible_worker_ids=[w["worker_id"] for w in plan.responsible_workers],
        family_contact_ids=[c["contact_id"] for c in plan.family_contacts],
    )
    uow.schedule(due, timer_subject=plan.timer_subject(), at=plan.next_contact_at, timer_id=f"timer:{uuid4()}")


async def on_followup_due(ev: FollowupDue, uow: PlansUnitOfWork) -> None:
    plan = await uow.plans.get(ev.plan_id)
    if domain.followup_fired(plan, plan_version=ev.plan_version, now=uow.now()):
        assert plan is not None
        await uow.plans.save(plan)


async def case_plans(q: PlanCaseQuery, uow: PlansUnitOfWork) -> Reply:
    found = await uow.plans.of_case(q.case_id)
    if not found:
        raise NotFound("case_id")
    return Reply(
        ok=True,
        id=str(q.case_id),
        data={
            "plans": [
                {
                    "plan_id": str(p.plan_id),
                    "version": p.version,
                    "status": p.status,
                    "next_contact_at": p.next_contact_at.isoformat(),
                    "followup_due_fired_at": p.followup_due_fired_at.isoformat() if p.followup_due_fired_at else None,
                    "responsible_worker_ids": [w["worker_id"] for w in p.responsible_workers],
                }
                for p in found
            ]
        },
    )
