"""Thin entrypoints of the notifications service: subjects to use cases."""

from __future__ import annotations

from shared.contracts import FollowupDue, MeetingConvened, NotificationCaseQuery, PlanAgreed, ReferralReceived
from shared.service import Service

from . import handlers
from .channels import LogChannel


def register(svc: Service) -> None:
    svc.on_event(ReferralReceived)(handlers.on_referral_received)
    svc.on_event(MeetingConvened)(handlers.on_meeting_convened)
    svc.on_event(PlanAgreed)(handlers.on_plan_agreed)
    svc.on_event(FollowupDue)(handlers.on_followup_due)
    svc.request("query.notifications.case.v1", NotificationCaseQuery)(handlers.case_notifications)

    channel = LogChannel(svc.settings.data_dir / "notifications" / "delivered.jsonl")

    @svc.background
    async def dispatch() -> None:
        await handlers.dispatcher(svc.uow, channel, svc.db.signal(handlers.SIGNAL), svc.settings.outbox_poll_seconds)
