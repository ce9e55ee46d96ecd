"""Staff requests to the notifications service: a case's notifications, failed notifications, the
access log, and a contact's preferred channel."""

from __future__ import annotations

from shared import audit
from shared.contracts.base import Reply
from shared.contracts.notifications import (
    FailedNotificationsQuery,
    NotificationCaseQuery,
    NotificationsAccessLogQuery,
    SetContactPreference,
)
from shared.errors import NotFound

from .adapters import NotificationsUnitOfWork


async def case_notifications(q: NotificationCaseQuery, uow: NotificationsUnitOfWork) -> Reply:
    rows = await uow.notifications.of_case(q.case_id)
    # Audited, a refused read too: the record commits before the answer (or the refusal) leaves.
    await uow.audit.read(q, "read_notifications", q.case_id, audit.FOUND if rows else audit.NOT_FOUND, f"case:{q.case_id}")
    if not rows:
        raise NotFound("case_id")
    return Reply(
        ok=True,
        id=str(q.case_id),
        data={
            "notifications": [
                {
                    "notification_id": r.notification_id,
                    "recipient_id": r.recipient_id,
                    "status": r.status,
                    "failure": r.failure,
                    "template": r.state["template"],
                    "source_event_type": r.state["source_event_type"],
                    "channel": r.state.get("channel"),
                    "channels_tried": r.state.get("channels_tried", []),
                    "attempts": r.state.get("attempts", 0),
                    "receipt": r.state.get("receipt"),
                    "not_before": r.state.get("not_before"),
                }
                for r in rows
            ]
        },
    )


async def failed_notifications(q: FailedNotificationsQuery, uow: NotificationsUnitOfWork) -> Reply:
    rows = await uow.notifications.failed(q.case_id, q.limit)
    scope = f"case:{q.case_id}" if q.case_id else "all"
    await uow.audit.read_cases(q, "list_failed_notifications", (r.case_id for r in rows), scope, empty_case=q.case_id)
    return Reply(
        ok=True,
        data={
            "failed": [
                {
                    "case_id": r.case_id,
                    "notification_id": r.notification_id,
                    "recipient_id": r.recipient_id,
                    "recipient_role": r.state["recipient_role"],
                    "template": r.state["template"],
                    "source_event_type": r.state["source_event_type"],
                    "reason": r.failure,
                    "channels_tried": r.state.get("channels_tried", []),
                    "attempts": r.state.get("attempts", 0),
                    "failed_at": r.updated_at.isoformat() if r.updated_at else None,
                }
                for r in rows
            ]
        },
    )


async def access_log(q: NotificationsAccessLogQuery, uow: NotificationsUnitOfWork) -> Reply:
    """Who has read these cases' notifications and who was sent one. Audited after it is read."""
    return await audit.answer_access_log(q, uow.audit)


async def set_preference(cmd: SetContactPreference, uow: NotificationsUnitOfWork) -> Reply:
    if not await uow.notifications.set_preference(cmd.case_id, cmd.contact_id, cmd.preferred_channel, cmd.language):
        raise NotFound("contact_id")
    return Reply(ok=True, id=cmd.contact_id)
