"""The delivery worker: pending -> sending (committed before the provider is called) -> sent /
failed, with reconciliation of anything left in ``sending`` by a crash, retries with backoff,
fallback to the next channel, quiet hours for families, and consent/role checked again at send time."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from opentelemetry import trace

from shared import audit
from shared.contracts.notifications import NotificationFailed, NotificationPortalMessage, NotificationSent
from shared.telemetry import continued, extract_context, safe_attributes, tracer

from .adapters import NotificationsUnitOfWork
from .cancellation import audit_disclosure, cancel, withhold
from .channels import Channel, DeliveryError, OutboundMessage
from .config import NotificationsConfig, StaffDirectory
from .domain import Notification, address_for, backoff, channel_order, quiet_until, render, role_allows, sms_text
from .invite import build_invite
from .plan_copy import attachments, body_with_copy, wants_copy
from .templates import place_text

SERVICE = "notifications"
DISPATCH_LIMIT = 250  # notifications per dispatch round
log = logging.getLogger("koolle.notifications")
_tracer = tracer(SERVICE)


@dataclass
class Delivery:
    """The channels and the delivery policy."""

    channels: dict[str, Channel]
    config: NotificationsConfig = field(default_factory=NotificationsConfig)
    staff: StaffDirectory = field(default_factory=StaffDirectory)
    purged_at: datetime | None = None
    report_receiver: Any = None  # the SMS provider's delivery-report webhook, when configured
    receipts_polled_at: datetime | None = None
    reconciled_at: datetime | None = None

    @classmethod
    def of(cls, channel: Channel | Delivery) -> Delivery:
        return channel if isinstance(channel, Delivery) else cls({channel.name: channel}, NotificationsConfig())

    @property
    def available(self) -> tuple[str, ...]:
        return tuple(self.channels) + (
            ("portal",) if "portal" in self.config.channels() and "portal" not in self.channels else ()
        )


async def dispatch_once(uow_factory: Any, channel: Channel | Delivery, limit: int = 100, reconcile_all: bool = False) -> int:
    """One round: reconcile notifications a crash left in ``sending``, then deliver the due ones.
    Returns how many were handled."""
    delivery = Delivery.of(channel)
    now = uow_factory().now()
    stuck: list[Notification] = []
    # Crashed sends are rare: looked for at start and every reconcile_check_seconds, not every round.
    checked, cfg = delivery.reconciled_at, delivery.config
    every = timedelta(seconds=min(cfg.reconcile_check_seconds, cfg.reconcile_after_seconds / 2))
    if reconcile_all or checked is None or now - checked >= every:
        delivery.reconciled_at = now
        async with uow_factory() as uow:
            before = None if reconcile_all else now - timedelta(seconds=cfg.reconcile_after_seconds)
            stuck = await uow.notifications.sending(before, limit)
    for n in stuck:
        await _guard(_reconcile(uow_factory, delivery, n), n, uow_factory)
    due = await _deliver_batch(uow_factory, delivery, limit)
    if delivery.purged_at is None or now - delivery.purged_at >= timedelta(hours=1):
        delivery.purged_at = now
        async with uow_factory() as uow:  # the family's plan copies, once their messages are long out
            await uow.notifications.purge_plan_copies(now - timedelta(hours=cfg.plan_copy_retention_hours))
            await uow.commit()
    if "sms" in delivery.channels and (
        delivery.receipts_polled_at is None
        or now - delivery.receipts_polled_at >= timedelta(seconds=delivery.config.receipt_poll_seconds)
    ):
        delivery.receipts_polled_at = now
        try:
            await poll_receipts(uow_factory, delivery, "sms", now)
        except Exception as exc:  # noqa: BLE001 - receipts are best effort; delivery goes on
            log.warning("receipt poll failed (%s)", type(exc).__name__)
    return len(stuck) + due


async def poll_receipts(uow_factory: Any, delivery: Delivery, channel_name: str, now: datetime) -> int:
    """Ask the provider for delivery receipts of recently sent messages."""
    channel = delivery.channels[channel_name]
    async with uow_factory() as uow:
        waiting = await uow.notifications.awaiting_receipt(
            channel_name, now - timedelta(hours=delivery.config.receipt_window_hours)
        )
    got = 0
    for n in waiting:
        st = await channel.status(str(n.notification_id))
        if st.receipt is None:
            continue
        async with uow_factory() as uow:
            fresh = await uow.notifications.get(n.notification_id)
            if fresh is None:
                continue
            fresh.receipt = st.receipt
            await uow.notifications.save(fresh)
            await uow.commit()
            got += 1
    return got


async def _guard(step: Any, n: Notification, uow_factory: Any) -> None:
    try:
        await step
    except Exception as exc:  # noqa: BLE001 - one bad notification never stops the others
        log.warning("notification %s: dispatch step failed (%s)", n.notification_id, type(exc).__name__)
        try:  # and it does not come round again at once
            async with uow_factory() as uow:
                fresh = await uow.notifications.get(n.notification_id)
                if fresh is not None and fresh.status == "pending":
                    fresh.not_before = uow.now() + timedelta(seconds=60)
                    await uow.notifications.save(fresh)
                    await uow.commit()
        except Exception:  # noqa: BLE001 - the database itself is failing; the dispatcher loop backs off
            pass


async def _reconcile(uow_factory: Any, delivery: Delivery, n: Notification) -> None:
    """A crash left this notification in ``sending``: ask the provider instead of sending again."""
    channel = delivery.channels.get(n.channel)
    status = await channel.status(str(n.notification_id)) if channel else None
    async with uow_factory() as uow:
        fresh = await uow.notifications.get(n.notification_id)
        if fresh is None or fresh.status != "sending":
            return
        if status is not None and status.state == "sent":
            log.info("notification %s reconciled as sent", n.notification_id)
            fresh.provider_ref, fresh.receipt = status.provider_ref, status.receipt
            await _record_sent(uow, fresh, fresh.channel)
        elif status is None or status.state == "not_sent" or getattr(channel, "resend_when_unknown", False):
            fresh.status = "pending"  # the provider never took it: sending it now is not a duplicate
            fresh.not_before = None
            await uow.notifications.save(fresh)
        else:
            await uow.notifications.save(fresh)  # cannot tell yet: ask again later
            await uow.commit()
            return
        await uow.commit()


@dataclass
class _Ready:
    """A notification marked ``sending``, with its rendered message, waiting for the channel."""

    n: Notification
    chosen: str
    msg: OutboundMessage
    fallback_left: bool


_UNREAD: Any = object()


async def _prepare(
    uow: NotificationsUnitOfWork,
    delivery: Delivery,
    n: Notification,
    fresh: Notification | None = _UNREAD,
    contact: Any = _UNREAD,
) -> _Ready | None:
    """Checks at send time and the channel choice, in the caller's transaction. Returns the message
    to send (the row is then ``sending``), or None when the notification was settled here.

    ``fresh`` and ``contact``, when given, were read in this same transaction (a batch reads them
    all at once); otherwise they are read here."""
    cfg = delivery.config
    now = uow.now()
    n = await uow.notifications.get(n.notification_id) if fresh is _UNREAD else fresh  # type: ignore[assignment]
    if n is None or n.status != "pending" or (n.not_before is not None and n.not_before > now):
        return None
    if contact is _UNREAD:
        contact = await uow.notifications.contact(n.case_id, n.recipient_id)
    if n.recipient_kind == "staff" and (contact is None or not (contact.email or contact.phone)):
        contact = _staff_contact(delivery.staff, n.recipient_id, contact)
    # Consent and role, again, at send time.
    if n.consent_purpose and await uow.notifications.consent_withdrawn(
        n.case_id, n.consent_purpose, n.recipient_id, n.consent_id
    ):
        if await withhold(uow, n):
            return None
    if not role_allows(n.template, contact.role if contact else None):
        await cancel(uow, n, "role_not_allowed")
        return None
    if n.meeting and n.template in ("meeting_invitation", "meeting_rescheduled", "meeting_reminder"):
        m = await uow.notifications.meeting(str(n.meeting["meeting_id"]))
        if m is not None and (m.cancelled or m.sequence > int(n.meeting.get("sequence", 0))):
            await cancel(uow, n, "meeting_cancelled" if m.cancelled else "superseded")
            return None
    # Choose the channel: preferred first, then fallbacks; skip missing/invalid details.
    usable, reasons = [], []
    preferred = contact.preferred_channel if contact else None
    for ch in channel_order(n, preferred, delivery.available):
        if ch in n.channels_tried and (ch != n.channel or n.channel_attempts == 0):
            continue  # given up on this one already
        addr, problem = address_for(ch, contact.email if contact else None, contact.phone if contact else None, n.recipient_id)
        if problem:
            reasons.append(problem)
            continue
        usable.append((ch, addr))
    chosen, address = usable[0] if usable else (None, None)
    if chosen is None:
        await _fail(uow, n, n.failure or _best_reason(reasons))
        return None
    if chosen == "sms" and n.recipient_kind == "family" and not n.urgent:
        until = quiet_until(now, cfg.quiet_start_hour, cfg.quiet_end_hour)
        if until is not None:
            n.not_before = until  # no SMS to a family at night: queued until morning
            await uow.notifications.save(n)
            return None
    copy = None
    if chosen == "email" and wants_copy(n.template, n.params):
        copy = await uow.notifications.plan_copy(n.params["plan_id"], int(n.params["plan_version"]))
        waited = (now - n.created_at).total_seconds() if n.created_at else cfg.plan_copy_wait_seconds
        if copy is None and waited < cfg.plan_copy_wait_seconds:
            n.not_before = now + timedelta(seconds=min(5.0, cfg.plan_copy_wait_seconds - waited))
            await uow.notifications.save(n)  # the copy is on its way (plan.copy_prepared): a moment
            return None
    if chosen not in n.channels_tried:
        n.channels_tried.append(chosen)
        n.channel_attempts = 0
    n.channel = chosen
    if chosen == "portal":  # the portal message is published with the state change: exactly once
        n.attempts += 1
        with _in_trace(n):
            await _record_sent(uow, n, "portal")
        return None
    try:
        msg = _message(n, chosen, address or "", cfg, delivery, now, copy)
    except Exception as exc:  # noqa: BLE001 - a message we cannot render is failed, not retried forever
        log.error("notification %s: cannot render (%s)", n.notification_id, type(exc).__name__)
        await _fail(uow, n, "template_error")
        return None
    n.status = "sending"
    n.attempts += 1
    n.channel_attempts += 1
    # Once committed, a crash means reconciliation, not a blind resend. The claim is conditional, so
    # when several replicas dispatch, only one of them sends a given notification.
    if not await uow.notifications.claim_sending(n):
        return None
    return _Ready(n, chosen, msg, len(usable) > 1)


@dataclass(frozen=True)
class _WorkContact:
    """A worker's work contact point from configuration (staff file or roster), shaped as a directory row."""

    role: str
    email: str | None
    phone: str | None
    preferred_channel: str | None = None


def _staff_contact(staff: StaffDirectory, staff_id: str, row: Any) -> Any:
    """The directory row when it has details; else the worker's configured work contact, keeping the
    role the case gave them (a worker named without contact details still gets the message)."""
    c = staff.contact(staff_id)
    if c is None:
        return row
    role = row.role if row is not None else c.get("role") or "staff"
    return _WorkContact(role, c.get("email"), c.get("phone"), row.preferred_channel if row is not None else None)


def _in_trace(n: Notification) -> Any:
    """Continue the trace of the event that caused the notification (a span only while exported)."""
    return continued(
        _tracer, "notification record", extract_context(n.trace), lambda: {"messaging.message.id": str(n.notification_id)}
    )


async def _send(delivery: Delivery, r: _Ready) -> tuple[Any, DeliveryError | None]:
    n, chosen = r.n, r.chosen
    scope = continued(
        _tracer,
        f"notification send {chosen}",
        extract_context(n.trace),
        lambda: safe_attributes(
            **{
                "koolle.case_id": str(n.case_id),
                "koolle.event_type": n.source_event_type,
                "messaging.message.id": str(n.notification_id),
            }
        ),
    )
    with scope:
        try:
            receipt, error = await delivery.channels[chosen].send(r.msg), None
        except DeliveryError as exc:
            receipt, error = None, exc
        except Exception as exc:  # noqa: BLE001 - an adapter bug is a temporary failure, not a dead worker
            log.warning("notification %s: channel %s raised %s", n.notification_id, chosen, type(exc).__name__)
            receipt, error = None, DeliveryError("channel_error")
        trace.get_current_span().set_attribute("koolle.outcome", error.code if error else "sent")  # no-op without a span
    return receipt, error


async def _conclude(
    uow: NotificationsUnitOfWork,
    delivery: Delivery,
    r: _Ready,
    receipt: Any,
    error: DeliveryError | None,
    status: str | None = _UNREAD,
) -> bool:
    """Record the channel's answer in the caller's transaction. True when the notification should
    be tried again at once on its next channel (fallback). ``status``, when given, is the row's
    status read in this same transaction."""
    cfg = delivery.config
    n, chosen = r.n, r.chosen
    now = uow.now()
    if status is _UNREAD:
        status = await uow.notifications.status(n.notification_id)
    if status != "sending":
        return False  # someone reconciled it meanwhile: record nothing twice
    if error is None:
        n.provider_ref, n.receipt = receipt.provider_ref, receipt.receipt
        with _in_trace(n):
            await _record_sent(uow, n, chosen)
        return False
    log.info("notification %s: %s on %s (attempt %d)", n.notification_id, error.code, chosen, n.channel_attempts)
    n.failure = error.code
    n.status = "pending"
    # Urgent messages do not wait for a retry while another channel can reach the person now.
    if error.temporary and n.channel_attempts < cfg.attempts_per_channel and not (n.urgent and r.fallback_left):
        n.not_before = now + backoff(n.channel_attempts, cfg.backoff_base_seconds, cfg.backoff_cap_seconds)
        await uow.notifications.save(n)
        return False
    # This channel is done for: fall back to the next one at once.
    n.channel_attempts = 0
    n.not_before = None
    await uow.notifications.save(n)
    return True


async def _deliver(uow_factory: Any, delivery: Delivery, n: Notification) -> None:
    """One notification in its own transactions (the isolation path when a batch fails)."""
    for _ in range(len(delivery.available) + 1):  # fall through channels that cannot be used
        async with uow_factory() as uow:
            r = await _prepare(uow, delivery, n)
            await uow.commit()
        if r is None:
            return
        receipt, error = await _send(delivery, r)
        async with uow_factory() as uow:
            again = await _conclude(uow, delivery, r, receipt, error)
            await uow.commit()
        if not again:
            return
        n = r.n


async def _deliver_batch(uow_factory: Any, delivery: Delivery, limit: int = 100) -> int:
    """Up to ``limit`` due notifications with two transactions in all: read and mark them
    ``sending`` together (what is read there is fresh, no second read), send them concurrently,
    record the answers together. Any error falls back to one at a time. Returns how many were due."""
    due: list[Notification] = []
    try:
        ready: list[_Ready] = []
        async with uow_factory() as uow:
            due = await uow.notifications.due(uow.now(), limit)
            fresh = {str(n.notification_id): n for n in due}
            if not due:
                return 0
            directory = await uow.notifications.contacts_of_cases({str(f.case_id) for f in fresh.values()})
            # The claims in one statement; if another replica took one meanwhile, one by one below.
            async with uow.notifications.claims_together():
                for n in due:
                    f = fresh.get(str(n.notification_id))
                    contact = None if f is None else directory.get((str(f.case_id), f.recipient_id))
                    r = await _prepare(uow, delivery, n, f, contact)
                    if r is not None:
                        ready.append(r)
            await uow.commit()
    except Exception as exc:  # noqa: BLE001 - find the bad one by going one by one
        log.warning("notification batch prepare failed (%s); one by one", type(exc).__name__)
        for n in due:
            await _guard(_deliver(uow_factory, delivery, n), n, uow_factory)
        return len(due)
    # Sends at once per channel: a provider's connections are limited, the spool file is not (its
    # journal writes everything waiting with one fsync).
    gates = {name: asyncio.Semaphore(getattr(ch, "max_concurrent", 20)) for name, ch in delivery.channels.items()}

    async def send(r: _Ready) -> tuple[Any, DeliveryError | None]:
        async with gates[r.chosen]:
            return await _send(delivery, r)

    # One person's messages one after the other, in the order they fell due (the acknowledgement
    # of a contact before the invitation that follows it); different people's at once.
    of_person: dict[tuple[str, str], list[int]] = {}
    for i, r in enumerate(ready):
        of_person.setdefault((str(r.n.case_id), r.n.recipient_id), []).append(i)
    results: list[tuple[Any, DeliveryError | None]] = [(None, None)] * len(ready)

    async def send_in_order(indexes: list[int]) -> None:
        for i in indexes:
            results[i] = await send(ready[i])

    await asyncio.gather(*(send_in_order(indexes) for indexes in of_person.values()))
    try:
        fall_back = []
        async with uow_factory() as uow:
            statuses = await uow.notifications.statuses([r.n.notification_id for r in ready])
            # Nothing here reads back what it writes: the saves and audit records go in one statement each.
            async with uow.notifications.saves_together(), uow.audit.together():
                for r, (receipt, error) in zip(ready, results, strict=True):
                    if await _conclude(uow, delivery, r, receipt, error, statuses.get(str(r.n.notification_id))):
                        fall_back.append(r.n)
            await uow.commit()
        for n in fall_back:  # the next channel at once, as the one-by-one path does
            await _guard(_deliver(uow_factory, delivery, n), n, uow_factory)
    except Exception as exc:  # noqa: BLE001
        log.warning("notification batch record failed (%s); one by one", type(exc).__name__)
        for r, (receipt, error) in zip(ready, results, strict=True):
            try:
                async with uow_factory() as uow:
                    await _conclude(uow, delivery, r, receipt, error)
                    await uow.commit()
            except Exception as exc1:  # noqa: BLE001 - stays 'sending': reconciled later, never resent blindly
                log.warning("notification %s: record failed (%s)", r.n.notification_id, type(exc1).__name__)
    return len(due)


def _best_reason(reasons: list[str]) -> str:
    for r in ("invalid_email", "invalid_phone"):
        if r in reasons:
            return r
    return reasons[0] if reasons else "no_channel"


def _message(
    n: Notification, channel: str, address: str, cfg: NotificationsConfig, delivery: Delivery, now: datetime, copy: Any = None
) -> OutboundMessage:
    subject, body = render(n.template, n.language, n.params, n.recipient_kind)
    ics = None
    method = "REQUEST"
    html, attached = None, ()
    if channel == "email" and wants_copy(n.template, n.params):
        online = cfg.plan_portal_url if n.params.get("guardian_online") and n.recipient_kind == "family" else None
        body = body_with_copy(body, n.language, copy is not None, online)
        if copy is not None:
            html, attached = copy.html, attachments(copy, int(n.params["plan_version"]))
    if channel == "sms":
        body = sms_text(n, subject, body, cfg.portal_url, cfg.sms_max_segments)
    elif channel == "email" and n.meeting and n.template in ("meeting_invitation", "meeting_rescheduled", "meeting_cancelled"):
        method = n.meeting.get("method", "REQUEST")
        # Replies go to the mailbox this service reads (``reply_address``), else to the sender.
        organizer = cfg.reply_address or getattr(delivery.channels.get("email"), "organizer", "no-reply@koolle.example")
        # The calendar entry's LOCATION names the place, never the room id.
        meeting = {k: v for k, v in n.meeting.items() if k != "room"} | {"room": place_text(n.params, n.language)}
        ics = build_invite(meeting, summary=subject, description=body, attendee_email=address, organizer_email=organizer, now=now)
    return OutboundMessage(
        notification_id=str(n.notification_id),
        recipient_id=n.recipient_id,
        address=address,
        language=n.language,
        subject=subject,
        body=body,
        ics=ics,
        ics_method=method,
        html=html,
        attachments=attached,
    )


async def _record_sent(uow: NotificationsUnitOfWork, n: Notification, channel: str) -> None:
    now = uow.now()
    n.status = "sent"
    n.sent_at = now
    n.failure = None
    n.not_before = None
    await uow.notifications.save(n)
    await audit_disclosure(uow, n, audit.DISCLOSED, f"{n.template} via {channel}")
    uow.emit(NotificationSent, **_sent(n, channel, now))
    if channel == "portal" or (channel == "sms" and n.recipient_kind == "family"):
        # The SMS to a family only says where to read the message: the message itself goes to the portal.
        subject, body = render(n.template, n.language, n.params, n.recipient_kind)
        uow.emit(
            NotificationPortalMessage,
            case_id=n.case_id,
            causation_id=n.source_event_id,
            notification_id=n.notification_id,
            recipient_id=n.recipient_id,
            recipient_role=n.recipient_role,
            audience="staff" if n.recipient_kind == "staff" else "family",
            template=n.template,
            language=n.language,
            title=subject,
            body=body,
            source_event_type=n.source_event_type,
        )


async def _fail(uow: NotificationsUnitOfWork, n: Notification, reason: str) -> None:
    now = uow.now()
    n.status = "failed"
    n.failure = reason
    await uow.notifications.save(n)
    log.info("notification %s failed: %s", n.notification_id, reason)
    uow.emit(
        NotificationFailed,
        case_id=n.case_id,
        causation_id=n.source_event_id,
        notification_id=n.notification_id,
        source_event_id=n.source_event_id,
        source_event_type=n.source_event_type,
        recipient_id=n.recipient_id,
        recipient_role=n.recipient_role,
        template=n.template,
        channels_tried=list(n.channels_tried),
        attempts=n.attempts,
        reason=reason,
        failed_at=now,
    )


def _sent(n: Notification, channel: str, now: datetime) -> dict[str, Any]:
    """notification.sent's payload (a dispatch round handles no one event: its cause is named)."""
    return {
        "case_id": n.case_id,
        "causation_id": n.source_event_id,
        "occurred_at": now,
        "notification_id": n.notification_id,
        "source_event_id": n.source_event_id,
        "source_event_type": n.source_event_type,
        "recipient_id": n.recipient_id,
        "recipient_role": n.recipient_role,
        "channel": channel,
        "template": n.template,
        "language": n.language,
        "sent_at": now,
    }


async def dispatcher(uow_factory: Any, channel: Channel | Delivery, wake: asyncio.Event, poll_seconds: float = 1.0) -> None:
    """Runs for the life of the service; ``wake`` is set right after a consumer commits new notifications.
    Notifications a crashed process left in ``sending`` are reconciled once they are
    ``reconcile_after_seconds`` old (``KOOLLE_NOTIFICATIONS_RECONCILE_AFTER_SECONDS``)."""
    while True:
        wake.clear()  # before looking: work committed from here on wakes the next wait at once
        try:
            # Only sends older than reconcile_after_seconds are reconciled: a send in flight in
            # another replica is never taken for a crashed one.
            n = await dispatch_once(uow_factory, channel, DISPATCH_LIMIT)
        except Exception as exc:  # noqa: BLE001 - keep delivering; the row stays pending
            log.warning("dispatch failed (%s)", type(exc).__name__)
            await asyncio.sleep(1.0)
            continue
        # Fewer than a round's worth: nothing else is due now. What was committed meanwhile has
        # set ``wake`` again, so the wait returns at once (no empty round to find that out).
        if n < DISPATCH_LIMIT:
            try:
                await asyncio.wait_for(wake.wait(), poll_seconds)
            except TimeoutError:
                pass
