"""Notifications that will not be sent: cancelled or withheld (consent withdrawn, role no longer
fits, meeting moved or cancelled), and the disclosure record that a notification's content was given
to, or withheld from, its recipient. Used both when an event decides it and at send time."""

from __future__ import annotations

from shared import audit
from shared.contracts.notifications import NotificationCancelled

from .adapters import NotificationsUnitOfWork
from .domain import Notification


async def withhold(uow: NotificationsUnitOfWork, n: Notification) -> bool:
    """Consent withdrawn: the notification is cancelled (True). An outcome to the referrer instead
    becomes only that the assessment is done: the referrer always hears back, the outcome needs consent."""
    if n.template == "assessment_completed":
        n.template = "assessment_done"
        n.params = {k: v for k, v in n.params.items() if k != "outcome"}
        n.consent_purpose = n.consent_id = None
        await uow.notifications.save(n)
        return False
    await cancel(uow, n, "consent_withdrawn")
    return True


# Cancellations that refuse the recipient the content (as opposed to a superseded or cancelled meeting).
WITHHOLDING = frozenset({"consent_withdrawn", "role_not_allowed"})


async def cancel(uow: NotificationsUnitOfWork, n: Notification, reason: str) -> None:
    n.status = "cancelled"
    n.failure = reason
    await uow.notifications.save(n)
    if reason in WITHHOLDING:
        await audit_disclosure(uow, n, audit.WITHHELD, reason)
    uow.emit(
        NotificationCancelled,
        case_id=n.case_id,
        causation_id=n.source_event_id,
        notification_id=n.notification_id,
        source_event_id=n.source_event_id,
        recipient_id=n.recipient_id,
        reason=reason,
    )


async def audit_disclosure(uow: NotificationsUnitOfWork, n: Notification, result: str, why: str) -> None:
    """A notification's content given to (or withheld from) its recipient, in the same transaction
    as its status: who = the recipient, what = the template."""
    await uow.audit.record(
        actor=n.recipient_id,
        case_id=n.case_id,
        action="send_notification",
        purpose=f"{why} to {n.recipient_role}",
        result=result,
        scope=f"notification:{n.notification_id}",
    )
