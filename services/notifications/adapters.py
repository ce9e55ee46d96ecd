"""Notifications persistence: the contact directory and the notifications with their state."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter
from sqlalchemy import Column, Integer, MetaData, String, Table, UniqueConstraint, insert, select, update

from shared.db import JSONText, UnitOfWork, UTCDateTime, messaging_tables

from .domain import Notification

metadata = MetaData()
messaging_tables(metadata)

contacts = Table(
    "contacts",
    metadata,
    Column("case_id", String(36), primary_key=True),
    Column("contact_id", String(100), primary_key=True),
    Column("role", String(100), nullable=False),
    Column("language", String(10), nullable=False),
    Column("email", String(254), nullable=True),
    Column("phone", String(32), nullable=True),
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
    Column("attempts", Integer, nullable=False, default=0),
    Column("failure", String(100), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("state", JSONText, nullable=False),
    # Never twice: one notification per event and recipient.
    UniqueConstraint("source_event_id", "recipient_id", name="uq_notification_event_recipient"),
)

_notification = TypeAdapter(Notification)


class NotificationRepository:
    def __init__(self, uow: UnitOfWork) -> None:
        self.s = uow.session
        self.now = uow.now

    async def upsert_contact(self, case_id: UUID, c: dict[str, Any]) -> None:
        key = (contacts.c.case_id == str(case_id)) & (contacts.c.contact_id == c["contact_id"])
        values = {
            "role": c["role"],
            "language": c.get("language") or "fi",
            "email": c.get("email"),
            "phone": c.get("phone"),
            "updated_at": self.now(),
        }
        exists = await self.s.scalar(select(contacts.c.contact_id).where(key))
        if exists is None:
            await self.s.execute(insert(contacts).values(case_id=str(case_id), contact_id=c["contact_id"], **values))
        else:
            await self.s.execute(update(contacts).where(key).values(**values))

    async def contact(self, case_id: UUID, contact_id: str) -> Any:
        return (
            await self.s.execute(
                select(contacts).where(contacts.c.case_id == str(case_id), contacts.c.contact_id == contact_id)
            )
        ).first()

    async def languages(self, case_id: UUID) -> dict[str, str]:
        rows = await self.s.execute(select(contacts.c.contact_id, contacts.c.language).where(contacts.c.case_id == str(case_id)))
        return {r.contact_id: r.language for r in rows}

    async def add(self, n: Notification) -> None:
        await self.s.execute(
            insert(notifications).values(
                notification_id=str(n.notification_id),
                case_id=str(n.case_id),
                source_event_id=str(n.source_event_id),
                recipient_id=n.recipient_id,
                status=n.status,
                attempts=n.attempts,
                created_at=n.created_at,
                state=_notification.dump_python(n, mode="json"),
            )
        )

    async def pending(self, limit: int = 100) -> list[Notification]:
        states = await self.s.scalars(
            select(notifications.c.state)
            .where(notifications.c.status == "pending")
            .order_by(notifications.c.created_at)
            .limit(limit)
        )
        return [_notification.validate_python(s) for s in states]

    async def mark(self, n: Notification, status: str, at: datetime, failure: str | None = None) -> None:
        n.status = status
        if status == "sent":
            n.sent_at = at
        await self.s.execute(
            update(notifications)
            .where(notifications.c.notification_id == str(n.notification_id))
            .values(status=status, sent_at=n.sent_at, failure=failure, attempts=n.attempts, state=_notification.dump_python(n, mode="json"))
        )

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


class NotificationsUnitOfWork(UnitOfWork):
    notifications: NotificationRepository

    def _attach(self, session: Any) -> None:
        self.notifications = NotificationRepository(self)
