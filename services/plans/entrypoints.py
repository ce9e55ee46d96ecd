"""Thin entrypoints of the plans service: subjects to use cases."""

from __future__ import annotations

from shared.contracts.meetings import MeetingHeld
from shared.contracts.plans import (
    AgreePlan,
    ClosePlan,
    EffectivenessChartQuery,
    EffectivenessQuery,
    FollowupDue,
    FollowupGraceEnded,
    OverdueQuery,
    PlanAgreed,
    PlanCaseQuery,
    PlanQuery,
    PlanRevised,
    PlansAccessLogQuery,
    PrintablePlanQuery,
    RecordFollowup,
    RescheduleFollowup,
    RevisePlan,
)
from shared.contracts.referral import ConsentGiven, ConsentWithdrawn
from shared.service import Service

from . import handlers


def register(svc: Service) -> None:
    # events: the sharing step (own plan.agreed / plan.revised), consent ledger, timers, wellbeing star
    svc.on_event(PlanAgreed)(handlers.on_plan_agreed)
    svc.on_event(PlanRevised)(handlers.on_plan_revised)
    svc.on_event(ConsentGiven)(handlers.on_consent_given)
    svc.on_event(ConsentWithdrawn)(handlers.on_consent_withdrawn)
    svc.on_event(FollowupDue)(handlers.on_followup_due)
    svc.on_event(FollowupGraceEnded)(handlers.on_grace_ended)
    svc.on_event(MeetingHeld)(handlers.on_meeting_held)
    # commands
    svc.request("cmd.plans.agree.v1", AgreePlan)(handlers.agree_plan)
    svc.request("cmd.plans.revise.v1", RevisePlan)(handlers.revise_plan)
    svc.request("cmd.plans.close.v1", ClosePlan)(handlers.close_plan)
    svc.request("cmd.plans.reschedule_followup.v1", RescheduleFollowup)(handlers.reschedule_followup)
    svc.request("cmd.plans.record_followup.v1", RecordFollowup)(handlers.record_followup)
    # queries
    svc.request("query.plans.case.v1", PlanCaseQuery)(handlers.case_plans)
    svc.request("query.plans.plan.v1", PlanQuery)(handlers.plan_detail)
    svc.request("query.plans.printable.v1", PrintablePlanQuery)(handlers.printable_plan)
    svc.request("query.plans.overdue.v1", OverdueQuery)(handlers.overdue_followups)
    svc.request("query.plans.effectiveness.v1", EffectivenessQuery)(handlers.effectiveness)
    svc.request("query.plans.effectiveness_chart.v1", EffectivenessChartQuery)(handlers.effectiveness_chart)
    svc.request("query.plans.access_log.v1", PlansAccessLogQuery)(handlers.access_log)
