"""Contracts of the notifications service."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from shared.policy import Access

from .audit import CaseAccessLogQuery
from .base import Contract, Event
from .common import Id, ShortText
from .versions import successor

NotificationChannel = Literal["log", "email", "sms", "portal"]


class NotificationSent(Event):
    """A message was delivered to one recipient. Carries no address and no content."""

    event_type: ClassVar[str] = "notification.sent"
    stream: ClassVar[str] = "NOTIFICATIONS"

    notification_id: UUID
    source_event_id: UUID = Field(description="The event this notification tells about.")
    source_event_type: str
    recipient_id: str = Field(description="Contact id of the recipient within the case.")
    recipient_role: str
    channel: str = Field(description="Delivery channel: log, email, sms, portal.")
    template: str
    language: str
    sent_at: datetime


class NotificationFailed(Event):
    """A notification could not be delivered on any channel after its last attempt. Visible to staff
    (``query.notifications.failed.v1``). Carries a reason code, never an address."""

    event_type: ClassVar[str] = "notification.failed"
    stream: ClassVar[str] = "NOTIFICATIONS"

    notification_id: UUID
    source_event_id: UUID
    source_event_type: str
    recipient_id: str = Field(description="Contact id of the recipient within the case.")
    recipient_role: str
    template: str
    channels_tried: list[str] = Field(description="Channels tried, in order.")
    attempts: int = Field(description="Delivery attempts made in all.")
    reason: str = Field(
        description="Machine code: no_contact_details, invalid_email, invalid_phone, recipient_refused, "
        "provider_unavailable, provider_rejected, template_error."
    )
    failed_at: datetime


class NotificationCancelled(Event):
    """A pending notification was cancelled before it was sent: consent withdrawn or the recipient's
    role no longer allows it. Nothing was sent."""

    event_type: ClassVar[str] = "notification.cancelled"
    stream: ClassVar[str] = "NOTIFICATIONS"

    notification_id: UUID
    source_event_id: UUID
    recipient_id: str
    reason: str = Field(description="consent_withdrawn, role_not_allowed, meeting_cancelled, superseded.")


class NotificationPortalMessage(Event):
    """A message for the client portal or the staff app (the portal channel). The text is one of our
    templates, rendered in the recipient's language; it never holds free text from the case."""

    event_type: ClassVar[str] = "notification.portal_message"
    stream: ClassVar[str] = "NOTIFICATIONS"

    notification_id: UUID
    recipient_id: str = Field(description="Contact id of the recipient within the case.")
    recipient_role: str
    audience: Literal["family", "staff"] = Field(description="Client portal (family, referrer) or staff app.")
    template: str
    language: str
    title: str = Field(description="Subject line of the message.")
    body: str
    source_event_type: str


class SetContactPreference(Contract):
    """``cmd.notifications.set_preference.v1``: a person's preferred channel (and optionally language)
    for one case; the other channels remain fallbacks."""

    command_id: UUID
    case_id: UUID
    contact_id: Id
    preferred_channel: NotificationChannel
    language: Literal["fi", "sv", "en", "other"] | None = None
    requested_by: Id


class NotificationCaseQuery(Contract):
    """``query.notifications.case.v1``: notifications of one case (audited)."""

    case_id: UUID
    requested_by: str = Field(description="Staff id of the reader (written to the audit log).")
    purpose: ShortText = Field(default="case work", description="Why the data is read (written to the audit log).")


class FailedNotificationsQuery(Contract):
    """``query.notifications.failed.v1``: notifications that failed (all cases, or one), newest first."""

    case_id: UUID | None = None
    requested_by: str = Field(description="Staff id of the reader (written to the audit log).")
    purpose: ShortText = Field(default="delivery follow-up", description="Why the data is read (written to the audit log).")
    limit: int = Field(default=100, ge=1, le=1000)


class NotificationsAccessLogQuery(CaseAccessLogQuery):
    """``query.notifications.access_log.v1``: who has read these cases' notifications, and who was sent
    (or not sent) a notification of them (audit log). This read is audited too."""


# -- replies: the ``data`` of each request's Reply -----------------------------------------------------


class NotificationView(Contract):
    notification_id: UUID
    recipient_id: str
    status: str = Field(description="pending, sent, failed or cancelled.")
    failure: str | None = Field(description="Reason code when failed or cancelled.")
    template: str
    source_event_type: str
    channel: str | None = Field(description="The channel it went out on.")
    channels_tried: list[str]
    attempts: int
    receipt: str | None = Field(description="Delivery receipt state from the provider, when known.")
    not_before: datetime | None = Field(description="Held until then (quiet hours).")


class CaseNotifications(Contract):
    """``data`` of ``query.notifications.case.v2``."""

    notifications: list[NotificationView]


class FailedNotificationView(Contract):
    case_id: UUID
    notification_id: UUID
    recipient_id: str
    recipient_role: str
    template: str
    source_event_type: str
    reason: str | None = Field(description="Machine code, as in notification.failed.")
    channels_tried: list[str]
    attempts: int
    failed_at: datetime | None


class FailedNotifications(Contract):
    """``data`` of ``query.notifications.failed.v2``."""

    failed: list[FailedNotificationView] = Field(description="Newest first.")


# Each request's reply data (``Reply.data``).
SetContactPreference.reply_data = None
NotificationCaseQuery.reply_data = CaseNotifications
FailedNotificationsQuery.reply_data = FailedNotifications


# (event, producer, consumers outside the four services); the services' own subscriptions are
# read from their bootstraps (infra.wiring).
class InvitationAnswered(Event):
    """A participant answered a meeting's calendar invitation from their own calendar (kalenterikutsuun
    vastattu): the notifications service read an iMIP reply (RFC 6047, METHOD:REPLY) from the
    organizer mailbox and matched its attendee to the meeting's participant. The meetings service
    records it as the participant's response. Carries ids only, never the address."""

    event_type: ClassVar[str] = "notification.invitation_answered"
    stream: ClassVar[str] = "NOTIFICATIONS"

    meeting_id: UUID
    participant_id: str = Field(description="The participant whose calendar answered (their id in the meeting).")
    answer: Literal["accepted", "declined", "tentative"] = Field(
        description="The reply's PARTSTAT: ACCEPTED, DECLINED or TENTATIVE."
    )
    sequence: int = Field(
        ge=0, description="The invitation revision answered (the reply's SEQUENCE); an answer to an older time is stale."
    )
    answered_at: datetime = Field(description="When the participant answered (the reply's DTSTAMP, UTC).")


EVENTS = (
    (NotificationSent, "notifications", ("staff apps",)),
    (NotificationFailed, "notifications", ("staff apps",)),
    (NotificationCancelled, "notifications", ("staff apps",)),
    (NotificationPortalMessage, "notifications", ("client portal", "staff apps")),
    (InvitationAnswered, "notifications", ()),
)

# -- version 2: the actor from the verified token, the case named, a purpose on every read ----------
NotificationCaseQueryV2 = successor(NotificationCaseQuery, "query.notifications.case.v2", Access("read"))
FailedNotificationsQueryV2 = successor(
    FailedNotificationsQuery,
    "query.notifications.failed.v2",
    Access("read"),
    required={"case_id": (UUID, Field(description="The case whose failed notifications are listed."))},
)
NotificationsAccessLogQueryV2 = successor(
    NotificationsAccessLogQuery, "query.notifications.access_log.v2", Access("read", case="case_ids", guardian=True)
)
SetContactPreferenceV2 = successor(SetContactPreference, "cmd.notifications.set_preference.v2", Access("write"))

REQUESTS = (
    (
        "query.notifications.case.v1",
        NotificationCaseQuery,
        "Retired: use query.notifications.case.v2. Notifications of one case (audited).",
    ),
    (
        "query.notifications.failed.v1",
        FailedNotificationsQuery,
        "Retired: use query.notifications.failed.v2. Failed notifications, for staff (audited per case).",
    ),
    (
        "query.notifications.access_log.v1",
        NotificationsAccessLogQuery,
        "Retired: use query.notifications.access_log.v2. Who has read or been sent these cases' notifications: the append-only audit log (audited).",
    ),
    (
        "cmd.notifications.set_preference.v1",
        SetContactPreference,
        "Retired: use cmd.notifications.set_preference.v2. Set a person's preferred channel.",
    ),
    ("query.notifications.case.v2", NotificationCaseQueryV2, "Notifications of one case (audited)."),
    ("query.notifications.failed.v2", FailedNotificationsQueryV2, "Failed notifications, for staff (audited per case)."),
    (
        "query.notifications.access_log.v2",
        NotificationsAccessLogQueryV2,
        "Who has read or been sent these cases' notifications: the append-only audit log (audited).",
    ),
    ("cmd.notifications.set_preference.v2", SetContactPreferenceV2, "Set a person's preferred channel."),
)
