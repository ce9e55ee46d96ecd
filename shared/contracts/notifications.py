"""Contracts of the notifications service."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar
from uuid import UUID

from pydantic import Field

from .base import Contract, Event


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


class NotificationCaseQuery(Contract):
    """``query.notifications.case.v1``: notifications of one case."""

    case_id: UUID
    requested_by: str


EVENTS = ((NotificationSent, "notifications", ("staff apps",)),)
REQUESTS = (("query.notifications.case.v1", NotificationCaseQuery, "Notifications of one case."),)
