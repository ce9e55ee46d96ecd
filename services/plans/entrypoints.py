"""Thin entrypoints of the plans service: subjects to use cases."""

from __future__ import annotations

from shared.contracts.meetings import MeetingHeld, ResponsibleWorkerDeactivated
from shared.contracts.plans import (
    AgreePlan,
    AgreePlanV2,
    ClosePlan,
    ClosePlanV2,
    CompleteHandover,
    EffectivenessChartQuery,
    EffectivenessChartQueryV2,
    EffectivenessQuery,
    EffectivenessQueryV2,
    FollowupDue,
    FollowupGraceEnded,
    OverdueQuery,
    OverdueQueryV2,
    PlanAgreed,
    PlanCaseQuery,
    PlanCaseQueryV2,
    PlanQuery,
    PlanQueryV2,
    PlanRevised,
    PlansAccessLogQuery,
    PlansAccessLogQueryV2,
    PrintablePlanQuery,
    PrintablePlanQueryV2,
    RecordFollowup,
    RecordFollowupV2,
    RecordServiceStatus,
    RescheduleFollowup,
    RescheduleFollowupV2,
    RevisePlan,
    RevisePlanV2,
    ServiceStartOverdue,
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
    svc.on_event(ResponsibleWorkerDeactivated)(handlers.on_responsible_worker_deactivated)
    svc.on_event(ServiceStartOverdue)(handlers.on_service_start_overdue)
    # commands
    svc.request("cmd.plans.agree.v2", AgreePlanV2)(handlers.agree_plan)
    svc.retired("cmd.plans.agree.v1", AgreePlan)
    svc.request("cmd.plans.revise.v2", RevisePlanV2)(handlers.revise_plan)
    svc.retired("cmd.plans.revise.v1", RevisePlan)
    svc.request("cmd.plans.close.v2", ClosePlanV2)(handlers.close_plan)
    svc.retired("cmd.plans.close.v1", ClosePlan)
    svc.request("cmd.plans.reschedule_followup.v2", RescheduleFollowupV2)(handlers.reschedule_followup)
    svc.retired("cmd.plans.reschedule_followup.v1", RescheduleFollowup)
    svc.request("cmd.plans.record_followup.v2", RecordFollowupV2)(handlers.record_followup)
    svc.retired("cmd.plans.record_followup.v1", RecordFollowup)
    svc.request("cmd.plans.complete_handover.v1", CompleteHandover)(handlers.complete_handover)
    svc.request("cmd.plans.record_service_status.v1", RecordServiceStatus)(handlers.record_service_status)
    # queries
    svc.request("query.plans.case.v2", PlanCaseQueryV2)(handlers.case_plans)
    svc.retired("query.plans.case.v1", PlanCaseQuery)
    svc.request("query.plans.plan.v2", PlanQueryV2)(handlers.plan_detail)
    svc.retired("query.plans.plan.v1", PlanQuery)
    svc.request("query.plans.printable.v2", PrintablePlanQueryV2)(handlers.printable_plan)
    svc.retired("query.plans.printable.v1", PrintablePlanQuery)
    svc.request("query.plans.overdue.v2", OverdueQueryV2)(handlers.overdue_followups)
    svc.retired("query.plans.overdue.v1", OverdueQuery)
    svc.request("query.plans.effectiveness.v2", EffectivenessQueryV2)(handlers.effectiveness)
    svc.retired("query.plans.effectiveness.v1", EffectivenessQuery)
    svc.request("query.plans.effectiveness_chart.v2", EffectivenessChartQueryV2)(handlers.effectiveness_chart)
    svc.retired("query.plans.effectiveness_chart.v1", EffectivenessChartQuery)
    svc.request("query.plans.access_log.v2", PlansAccessLogQueryV2)(handlers.access_log)
    svc.retired("query.plans.access_log.v1", PlansAccessLogQuery)
