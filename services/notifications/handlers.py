"""Notifications use cases: decide who is told (in the consumer's transaction), then deliver
(in the dispatcher) and record ``notification.sent``."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from shared.clock import local
from shared.contracts import (
    FollowupDue,
    MeetingConvened,
    NotificationCaseQuery,
    NotificationSent,
    PlanAgreed,
    ReferralReceived,
    Reply,
)
from shared.errors import NotFound

from .adapters import NotificationsUnitOfWork
from .channels import Channel
from .domain import Notification, Recipient, plan_notifications, render

SERVICE = "notifications"
log = logging.getLogger("koolle.notifications")


def _when(dt: datetime) -> str:
    return local(dt).strftime("%d.%m.%Y %H:%M")


async def _notify(uow: NotificationsUnitOfWork, ev: Any, template: str, recipients: list[Recipient], params: dict[str, str]) -> None:
    languages = await uow.notifications.languages(ev.case_id)
    for n in plan_notifications(
        case_id=ev.case_id,
        source_event_id=ev.event_id,
        source_event_type=ev.event_type,
        template=template,
        recipients=recipients,
        languages=languages,
        params=params,
        now=uow.now(),
    ):
        await uow.notifications.add(n)
    uow.after_commit(uow.db.signal(SIGNAL).set)


async def on_referral_received(ev: ReferralReceived, uow: NotificationsUnitOfWork) -> None:
    for c in ev.contacts:
        await uow.notifications.upsert_contact(ev.case_id, c.model_dump(mode="json"))
    referrer = [Recipient(c.contact_id, c.role) for c in ev.contacts if c.role == "referrer"]
    await _notify(uow, ev, "referral_ack", referrer, {})


async def on_meeting_convened(ev: MeetingConvened, uow: NotificationsUnitOfWork) -> None:
    recipients = []
    for p in ev.participants:
        if p.contact is not None:
            await uow.notifications.upsert_contact(ev.case_id, p.contact.model_dump(mode="json") | {"contact_id": p.participant_id})
        recipients.append(Recipient(p.participant_id, p.role))
    await _notify(uow, ev, "meeting_invitation", recipients, {"when": _when(ev.starts_at)})


async def on_plan_agreed(ev: PlanAgreed, uow: NotificationsUnitOfWork) -> None:
    for w in ev.responsible_workers:
        if w.contact is not None:
            await uow.notifications.upsert_contact(ev.case_id, w.contact.model_dump(mode="json") | {"contact_id": w.worker_id})
    for c in ev.family_contacts:
        await uow.notifications.upsert_contact(ev.case_id, c.model_dump(mode="json"))
    recipients = [Recipient(c.contact_id, c.role) for c in ev.family_contacts]
    recipients += [Recipient(w.worker_id, "responsible_worker") for w in ev.responsible_workers]
    await _notify(uow, ev, "plan_agreed", recipients, {})


async def on_followup_due(ev: FollowupDue, uow: NotificationsUnitOfWork) -> None:
    recipients = [Recipient(w, "responsible_worker") for w in ev.responsible_worker_ids]
    recipients += [Recipient(c, "family") for c in ev.family_contact_ids]
    await _notify(uow, ev, "followup_due", recipients, {"when": _when(ev.due_at)})


async def case_notifications(q: NotificationCaseQuery, uow: NotificationsUnitOfWork) -> Reply:
    rows = await uow.notifications.of_case(q.case_id)
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
                }
                for r in rows
            ]
        },
    )


SIGNAL = "notifications.pending"


async def dispatch_once(uow_factory: Any, channel: Channel, limit: int = 100) -> int:
    """Deliver pending notifications. A notification the channel already has (a crash after
    delivery, before recording) is reconciled as sent, not delivered again."""
    async with uow_factory() as uow:
        pending = await uow.notifications.pending(limit)
        addresses = {}
        for n in pending:
            c = await uow.notifications.contact(n.case_id, n.recipient_id)
            addresses[n.notification_id] = (c.email or c.phone) if c else None
    for n in pending:
        failure = None
        if not await channel.delivered(str(n.notification_id)):
            address = addresses[n.notification_id]
            if not address:
                failure = "no_contact_details"
            else:
                subject, body = render(n.template, n.language, n.params)
                n.attempts += 1
                await channel.send(str(n.notification_id), address, n.recipient_id, n.language, subject, body)
        async with uow_factory() as uow:
            now = uow.now()
            if failure:
                await uow.notifications.mark(n, "failed", now, failure)
            else:
                await uow.notifications.mark(n, "sent", now)
                uow.emit(_sent(n, channel.name, now))
            await uow.commit()
    return len(pending)


def _sent(n: Notification, channel: str, now: datetime) -> NotificationSent:
    return NotificationSent(
        producer=SERVICE,
        case_id=n.case_id,
        causation_id=n.source_event_id,
        occurred_at=now,
        notification_id=n.notification_id,
        source_event_id=n.source_event_id,
        source_event_type=n.source_event_type,
        recipient_id=n.recipient_id,
        recipient_role=n.recipient_role,
        channel=channel,
        template=n.template,
        language=n.language,
        sent_at=now,
    )


async def dispatcher(uow_factory: Any, channel: Channel, wake: asyncio.Event, poll_seconds: float = 1.0) -> None:
    """Runs for the life of the service; ``wake`` is set right after a consumer commits new notifications."""
    while True:
        try:
            n = await dispatch_once(uow_factory, channel)
        except Exception as exc:  # noqa: BLE001 - keep delivering; the row stays pending
            log.warning("dispatch failed (%s)", type(exc).__name__)
            await asyncio.sleep(1.0)
            continue
        if n == 0:
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), poll_seconds)
            except TimeoutError:
                pass
