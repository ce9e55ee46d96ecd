"""Thin entrypoints of the plans service: subjects to use cases."""

from __future__ import annotations

from shared.contracts import AgreePlan, FollowupDue, PlanCaseQuery
from shared.service import Service

from . import handlers


def register(svc: Service) -> None:
    svc.on_event(FollowupDue)(handlers.on_followup_due)
    svc.request("cmd.plans.agree.v1", AgreePlan)(handlers.agree_plan)
    svc.request("query.plans.case.v1", PlanCaseQuery)(handlers.case_plans)
