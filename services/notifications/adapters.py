"""Notifications persistence: the contact directory (fed by events), the notifications with their
state, consent withdrawals, the case's team and the meetings' latest revision."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter
from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, UniqueConstraint, delete, insert, select, update

from shared.audit import AuditLog, audit_table
from shared.db import JSONText, UnitOfWork, UTCDateTime, messaging_tables

from .domain import Notification

metadata = MetaData()
messaging_tables(metadata)
audit_log = audit_table(metadata)  # append-only (shared.audit)

contacts = Table(
    "contacts",
    metadata,
    Column("case_id", String(36), primary_key=True),
    Column("contact_id", String(100), primary_key=True),
    Column("role", String(100), nullable=False),
    Column("language", String(10), nullable=False),
    Column("email", String(254), nullable=True),
    Column("phone", String(32), nullable=True),
    Column("preferred_channel", String(20), nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

notifications = Table(
    "notifications",
    metadata,
    Column("notification_id", String(36), primary_key=True),
    Column("case_id", String(36), nullable=False, index=True),
    Column("source_event_id", String(36), nullable=False),
    Column("recipient_id", String(100), nullable=False),
    Column("status", String(20), nullable=False, index=True),
    Column("channel", String(20), nullable=True),
    Column("urgent", Boolean, nullable=False, default=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("failure", String(100), nullable=True),
    Column("dedupe_key", String(200), nullable=True, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=True),
    Column("not_before", UTCDateTime, nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("receipt", String(20), nullable=True),
    Column("state", JSONText, nullable=False),
    # Never twice: one notification per event and recipient.
    UniqueConstraint("source_event_id", "recipient_id", name="uq_notification_event_recipient"),
)

consent_withdrawals = Table(
    "consent_withdrawals",
    metadata,
    Column("case_id", String(36), primary_key=True),
    Column("purpose", String(40), primary_key=True),
    Column("recipient", String(100), primary_key=True),  # "" = every recipient of the purpose
    Column("consent_id", String(36), nullable=False),
    Column("withdrawn_at", UTCDateTime, nullable=False),
)

case_teams = Table(
    "case_teams",
    metadata,
    Column("case_id", String(36), primary_key=True),
    Column("team_id", String(100), nullable=False),
    Column("municipality", String(100), nullable=True),
)

meetings = Table(
    "meetings",
    metadata,
    Column("meeting_id", String(36), primary_key=True),
    Column("case_id", String(36), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("cancelled", Boolean, nullable=False, default=False),
)

_notification = TypeAdapter(Notification)


class NotificationRepository:
    def __init__(self, uow: UnitOfWork) -> None:
        self.s = uow.session
        self.now = uow.now

    # -- directory -------------------------------------------------------------------------------
    async def upsert_contact(self, case_id: UUID, c: dict[str, Any]) -> None:
        """Add or update a person's contact point; a detail missing from this event keeps the known one."""
        key = (contacts.c.case_id == str(case_id)) & (contacts.c.contact_id == c["contact_id"])
        existing = (await self.s.execute(select(contacts).where(key))).first()
        values = {
            "role": c["role"],
            "language": c.get("language") or "fi",
            "email": c.get("email") or (existing.email if existing else None),
            "phone": c.get("phone") or (existing.phone if existing else None),
            "updated_at": self.now(),
        }
        if c.get("preferred_channel"):
            values["preferred_channel"] = c["preferred_channel"]
        if existing is None:
            await self.s.execute(insert(contacts).values(case_id=str(case_id), contact_id=c["contact_id"], **values))
        else:
            await self.s.execute(update(contacts).where(key).values(**values))

    async def set_preference(self, case_id: UUID, contact_id: str, channel: str, language: str | None) -> bool:
        key = (contacts.c.case_id == str(case_id)) & (contacts.c.contact_id == contact_id)
        values: dict[str, Any] = {"preferred_channel": channel, "updated_at": self.now()}
        if language:
            values["language"] = language
        result = await self.s.execute(update(contacts).where(key).values(**values))
        return bool(result.rowcount)

    async def contact(self, case_id: UUID, contact_id: str) -> Any:
        return (
            await self.s.execute(
                select(contacts).where(contacts.c.case_id == str(case_id), contacts.c.contact_id == contact_id)
            )
        ).first()

    async def contacts_of_case(self, case_id: UUID) -> list[Any]:
        return list((await self.s.execute(select(contacts).where(contacts.c.case_id == str(case_id)))).all())

    async def languages(self, case_id: UUID) -> dict[str, str]:
        rows = await self.s.execute(select(contacts.c.contact_id, contacts.c.language).where(contacts.c.case_id == str(case_id)))
        return {r.contact_id: r.language for r in rows}

    # -- notifications ---------------------------------------------------------------------------
    async def add(self, n: Notification) -> bool:
        """Store a new notification; False when one with the same dedupe key exists (already told)."""
        if n.dedupe_key is not None:
            seen = await self.s.scalar(select(notifications.c.notification_id).where(notifications.c.dedupe_key == n.dedupe_key))
            if seen is not None:
                return False
        await self.s.execute(
            insert(notifications).values(
                notification_id=str(n.notification_id),
                case_id=str(n.case_id),
                source_event_id=str(n.source_event_id),
                recipient_id=n.recipient_id,
                status=n.status,
                channel=None,
                urgent=n.urgent,
                attempts=n.attempts,
                dedupe_key=n.dedupe_key,
                created_at=n.created_at,
                updated_at=n.created_at,
                not_before=n.not_before,
                state=_notification.dump_python(n, mode="json"),
            )
        )
        return True

    async def get(self, notification_id: UUID) -> Notification | None:
        state = await self.s.scalar(select(notifications.c.state).where(notifications.c.notification_id == str(notification_id)))
        return None if state is None else _notification.validate_python(state)

    async def due(self, now: datetime, limit: int = 100) -> list[Notification]:
        """Pending notifications whose time has come: urgent ones first, then oldest first."""
        states = await self.s.scalars(
            select(notifications.c.state)
            .where(notifications.c.status == "pending")
            .where((notifications.c.not_before.is_(None)) | (notifications.c.not_before <= now))
            .order_by(notifications.c.urgent.desc(), notifications.c.created_at)
            .limit(limit)
        )
        return [_notification.validate_python(s) for s in states]

    async def pending(self, limit: int = 100) -> list[Notification]:
        states = await self.s.scalars(
            select(notifications.c.state).where(notifications.c.status == "pending").order_by(notifications.c.created_at).limit(limit)
        )
        return [_notification.validate_python(s) for s in states]

    async def sending(self, updated_before: datetime | None = None, limit: int = 100) -> list[Notification]:
        q = select(notifications.c.state).where(notifications.c.status == "sending")
        if updated_before is not None:
            q = q.where(notifications.c.updated_at <= updated_before)
        states = await self.s.scalars(q.order_by(notifications.c.created_at).limit(limit))
        return [_notification.validate_python(s) for s in states]

    async def awaiting_receipt(self, channel: str, sent_after: datetime, limit: int = 100) -> list[Notification]:
        """Sent on a channel that gives delivery receipts, receipt not in yet."""
        states = await self.s.scalars(
            select(notifications.c.state)
            .where(notifications.c.status == "sent", notifications.c.channel == channel, notifications.c.receipt.is_(None))
            .where(notifications.c.sent_at >= sent_after)
            .order_by(notifications.c.sent_at)
            .limit(limit)
        )
        return [_notification.validate_python(s) for s in states]

    async def pending_of_case(self, case_id: UUID) -> list[Notification]:
        states = await self.s.scalars(
            select(notifications.c.state).where(notifications.c.case_id == str(case_id), notifications.c.status == "pending")
        )
        return [_notification.validate_python(s) for s in states]

    async def save(self, n: Notification) -> None:
        await self.s.execute(
            update(notifications)
            .where(notifications.c.notification_id == str(n.notification_id))
            .values(
                status=n.status,
                channel=n.channel,
                attempts=n.attempts,
                failure=n.failure,
                not_before=n.not_before,
                sent_at=n.sent_at,
                receipt=n.receipt,
                updated_at=self.now(),
                state=_notification.dump_python(n, mode="json"),
            )
        )

    async def claim_sending(self, n: Notification) -> bool:
        """pending -> sending, only if still pending: of two dispatchers (replicas) only one wins."""
        result = await self.s.execute(
            update(notifications)
            .where(notifications.c.notification_id == str(n.notification_id), notifications.c.status == "pending")
            .values(
                status="sending",
                channel=n.channel,
                attempts=n.attempts,
                updated_at=self.now(),
                state=_notification.dump_python(n, mode="json"),
            )
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def mark(self, n: Notification, status: str, at: datetime, failure: str | None = None) -> None:
        n.status = status
        if status == "sent":
            n.sent_at = at
        n.failure = failure if failure is not None else n.failure
        await self.save(n)

    async def of_case(self, case_id: UUID) -> list[Any]:
        return list(
            (
                await self.s.execute(
                    select(notifications.c.notification_id, notifications.c.recipient_id, notifications.c.status, notifications.c.failure, notifications.c.state)
                    .where(notifications.c.case_id == str(case_id))
                    .order_by(notifications.c.created_at)
                )
            ).all()
        )

    async def failed(self, case_id: UUID | None, limit: int) -> list[Any]:
        q = select(notifications.c.case_id, notifications.c.notification_id, notifications.c.recipient_id, notifications.c.failure, notifications.c.updated_at, notifications.c.state).where(
            notifications.c.status == "failed"
        )
        if case_id is not None:
            q = q.where(notifications.c.case_id == str(case_id))
        return list((await self.s.execute(q.order_by(notifications.c.updated_at.desc()).limit(limit))).all())

    # -- consent, team, meetings -------------------------------------------------------------------
    async def record_withdrawal(self, case_id: UUID, purpose: str, recipient: str | None, consent_id: UUID) -> None:
        key = (
            (consent_withdrawals.c.case_id == str(case_id))
            & (consent_withdrawals.c.purpose == purpose)
            & (consent_withdrawals.c.recipient == (recipient or ""))
        )
        await self.s.execute(delete(consent_withdrawals).where(key))
        await self.s.execute(
            insert(consent_withdrawals).values(
                case_id=str(case_id), purpose=purpose, recipient=recipient or "", consent_id=str(consent_id), withdrawn_at=self.now()
            )
        )

    async def clear_withdrawal(self, case_id: UUID, purpose: str, recipient: str | None) -> None:
        await self.s.execute(
            delete(consent_withdrawals).where(
                (consent_withdrawals.c.case_id == str(case_id))
                & (consent_withdrawals.c.purpose == purpose)
                & (consent_withdrawals.c.recipient == (recipient or ""))
            )
        )

    async def consent_withdrawn(self, case_id: UUID, purpose: str, recipient: str, consent_id: str | None) -> bool:
        rows = (
            await self.s.execute(
                select(consent_withdrawals.c.recipient, consent_withdrawals.c.consent_id).where(
                    consent_withdrawals.c.case_id == str(case_id), consent_withdrawals.c.purpose == purpose
                )
            )
        ).all()
        return any(r.recipient in ("", recipient) or (consent_id and r.consent_id == consent_id) for r in rows)

    async def set_team(self, case_id: UUID, team_id: str, municipality: str | None) -> None:
        await self.s.execute(delete(case_teams).where(case_teams.c.case_id == str(case_id)))
        await self.s.execute(insert(case_teams).values(case_id=str(case_id), team_id=team_id, municipality=municipality))

    async def team(self, case_id: UUID) -> str | None:
        return await self.s.scalar(select(case_teams.c.team_id).where(case_teams.c.case_id == str(case_id)))

    async def meeting_revision(self, meeting_id: str, case_id: UUID, sequence: int, cancelled: bool = False) -> None:
        """Remember the newest revision of a meeting (an older event never overrides a newer one)."""
        row = (await self.s.execute(select(meetings).where(meetings.c.meeting_id == meeting_id))).first()
        if row is None:
            await self.s.execute(insert(meetings).values(meeting_id=meeting_id, case_id=str(case_id), sequence=sequence, cancelled=cancelled))
        elif sequence >= row.sequence:
            await self.s.execute(
                update(meetings).where(meetings.c.meeting_id == meeting_id).values(sequence=sequence, cancelled=cancelled or row.cancelled)
            )

    async def meeting(self, meeting_id: str) -> Any:
        return (await self.s.execute(select(meetings).where(meetings.c.meeting_id == meeting_id))).first()


class NotificationsUnitOfWork(UnitOfWork):
    audit: AuditLog
    notifications: NotificationRepository

    def _attach(self, session: Any) -> None:
        self.notifications = NotificationRepository(self)
        self.audit = AuditLog(self, "notifications")
