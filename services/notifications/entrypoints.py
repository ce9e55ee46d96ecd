"""Thin entrypoints of the notifications service: subjects to use cases, channels from configuration."""

from __future__ import annotations

from shared.contracts.meetings import (
    MeetingCancelled,
    MeetingConvened,
    MeetingReminderDue,
    MeetingRescheduled,
    RosterProfessionalChanged,
    RosterRoomChanged,
)
from shared.contracts.notifications import (
    FailedNotificationsQuery,
    FailedNotificationsQueryV2,
    NotificationCaseQuery,
    NotificationCaseQueryV2,
    NotificationsAccessLogQuery,
    NotificationsAccessLogQueryV2,
    SetContactPreference,
    SetContactPreferenceV2,
)
from shared.contracts.plans import (
    FollowupDue,
    FollowupOverdue,
    FollowupReminderDue,
    FollowupRescheduled,
    PlanAgreed,
    PlanClosed,
    PlanCopyPrepared,
    PlanHandedOver,
    PlanHandoverOpened,
    PlanRevised,
    PlanShared,
    ServiceStartOverdue,
)
from shared.contracts.referral import (
    AssessmentCompleted,
    CaseTransferred,
    ConsentGiven,
    ConsentWithdrawn,
    DeadlineApproaching,
    DeadlineBreached,
    ReferralLinked,
    ReferralReceived,
    ReferralUnlinked,
    ReferralUrgent,
    UrgencyAssessed,
    UrgencyAssessmentOverdue,
)
from shared.service import Service

from . import handlers, queries
from .channels import Channel, EmailChannel, LogChannel
from .config import NotificationsConfig, StaffDirectory
from .delivery import Delivery, dispatcher
from .mailbox import ReplyMaildir
from .replies import read_replies
from .sms import PROVIDERS, DeliveryReportReceiver


def build_channels(svc: Service, config: NotificationsConfig) -> dict[str, Channel]:
    spool = svc.settings.data_dir / "notifications"
    available = config.channels()
    channels: dict[str, Channel] = {}
    if available == ("log",):
        channels["log"] = LogChannel(spool / "delivered.jsonl")
    if "email" in available:
        channels["email"] = EmailChannel(
            config.smtp_host,
            config.smtp_port,
            spool / "email-journal.jsonl",
            mail_from=config.mail_from,
            username=config.smtp_username,
            password=config.smtp_password,
            start_tls=config.smtp_starttls,
            timeout=config.smtp_timeout_seconds,
        )
    if "sms" in available:
        provider = PROVIDERS.get(config.sms_provider)
        if provider is None:
            raise ValueError(f"unknown SMS provider {config.sms_provider!r}; known: {sorted(PROVIDERS)}")
        channels["sms"] = provider(
            config.sms_gateway_url,
            spool / f"sms-{config.sms_provider}-journal.jsonl",
            username=config.sms_api_username,
            password=config.sms_api_password,
            sender=config.sms_sender,
            delivery_report_url=config.sms_report_url,
        )
    return channels


def register(svc: Service, config: NotificationsConfig | None = None, channels: dict[str, Channel] | None = None) -> Delivery:
    config = config or NotificationsConfig()
    staff = StaffDirectory.load(config.staff_file, config.roster_file)
    h = handlers.EventHandlers(staff)
    for model, fn in (
        (ReferralReceived, h.on_referral_received),
        (ReferralUnlinked, h.on_referral_unlinked),
        (ReferralUrgent, h.on_referral_urgent),
        (CaseTransferred, h.on_case_transferred),
        (ReferralLinked, h.on_referral_linked),
        (DeadlineApproaching, h.on_deadline_approaching),
        (DeadlineBreached, h.on_deadline_breached),
        (UrgencyAssessmentOverdue, h.on_urgency_assessment_overdue),
        (UrgencyAssessed, h.on_urgency_assessed),
        (AssessmentCompleted, h.on_assessment_completed),
        (ConsentGiven, h.on_consent_given),
        (ConsentWithdrawn, h.on_consent_withdrawn),
        (MeetingConvened, h.on_meeting_convened),
        (MeetingRescheduled, h.on_meeting_rescheduled),
        (MeetingCancelled, h.on_meeting_cancelled),
        (MeetingReminderDue, h.on_meeting_reminder_due),
        (RosterProfessionalChanged, h.on_roster_professional_changed),
        (RosterRoomChanged, h.on_roster_room_changed),
        (PlanAgreed, h.on_plan_agreed),
        (PlanCopyPrepared, h.on_plan_copy_prepared),
        (PlanRevised, h.on_plan_revised),
        (PlanShared, h.on_plan_shared),
        (PlanClosed, h.on_plan_closed),
        (FollowupReminderDue, h.on_followup_reminder_due),
        (FollowupDue, h.on_followup_due),
        (FollowupOverdue, h.on_followup_overdue),
        (FollowupRescheduled, h.on_followup_rescheduled),
        (PlanHandoverOpened, h.on_handover_opened),
        (PlanHandedOver, h.on_plan_handed_over),
        (ServiceStartOverdue, h.on_service_start_overdue),
    ):
        svc.on_event(model)(fn)
    svc.request("query.notifications.case.v2", NotificationCaseQueryV2)(queries.case_notifications)
    svc.retired("query.notifications.case.v1", NotificationCaseQuery)
    svc.request("query.notifications.failed.v2", FailedNotificationsQueryV2)(queries.failed_notifications)
    svc.retired("query.notifications.failed.v1", FailedNotificationsQuery)
    svc.request("query.notifications.access_log.v2", NotificationsAccessLogQueryV2)(queries.access_log)
    svc.retired("query.notifications.access_log.v1", NotificationsAccessLogQuery)
    svc.request("cmd.notifications.set_preference.v2", SetContactPreferenceV2)(queries.set_preference)
    svc.retired("cmd.notifications.set_preference.v1", SetContactPreference)

    delivery = Delivery(channels if channels is not None else build_channels(svc, config), config, staff)

    sms = delivery.channels.get("sms")
    receiver = None
    if config.sms_report_port >= 0 and hasattr(sms, "report"):

        def reported() -> None:  # a delivery report came in: record it in the next round
            delivery.receipts_polled_at = None
            svc.db.signal(handlers.SIGNAL).set()

        receiver = DeliveryReportReceiver(sms, config.sms_report_host, config.sms_report_port, config.sms_report_key, reported)  # type: ignore[arg-type]
        delivery.report_receiver = receiver

    if config.reply_maildir is not None:
        box = ReplyMaildir(config.reply_maildir)

        @svc.background
        async def replies() -> None:
            await read_replies(svc.uow, box, config.reply_poll_seconds)

    @svc.background
    async def dispatch() -> None:
        if receiver is not None:
            await receiver.start()
        try:
            await dispatcher(svc.uow, delivery, svc.db.signal(handlers.SIGNAL), svc.settings.outbox_poll_seconds)
        finally:
            for ch in delivery.channels.values():
                close = getattr(ch, "close", None)
                if close is not None:
                    await close()
            if receiver is not None:
                await receiver.stop()

    return delivery
