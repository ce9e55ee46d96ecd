"""Meetings persistence: tables, repository and the unit of work."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter
from sqlalchemy import Column, MetaData, String, Table, delete, insert, select, update

from shared.db import JSONText, UnitOfWork, UTCDateTime, messaging_tables

from .domain import Convening, Meeting

metadata = MetaData()
messaging_tables(metadata)

convenings = Table(
    "convenings",
    metadata,
    Column("case_id", String(36), primary_key=True),
    Column("municipality", String(200), nullable=False, index=True),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("state", JSONText, nullable=False),
)

meetings = Table(
    "meetings",
    metadata,
    Column("meeting_id", String(36), primary_key=True),
    Column("case_id", String(36), nullable=False, index=True),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("status", String(20), nullable=False),
    Column("state", JSONText, nullable=False),
)

bookings = Table(
    "bookings",
    metadata,
    Column("resource", String(200), primary_key=True),  # room:<name> | person:<id>
    Column("meeting_id", String(36), primary_key=True),
    Column("starts_at", UTCDateTime, nullable=False, index=True),
    Column("ends_at", UTCDateTime, nullable=False),
)

_convening = TypeAdapter(Convening)
_meeting = TypeAdapter(Meeting)


class MeetingRepository:
    def __init__(self, uow: UnitOfWork) -> None:
        self.s = uow.session

    async def add_convening(self, c: Convening) -> bool:
        if await self.convening(c.case_id) is not None:
            return False
        await self.s.execute(
            insert(convenings).values(
                case_id=str(c.case_id),
                municipality=c.municipality,
                opened_at=c.opened_at,
                state=_convening.dump_python(c, mode="json"),
            )
        )
        return True

    async def convening(self, case_id: UUID) -> Convening | None:
        state = await self.s.scalar(select(convenings.c.state).where(convenings.c.case_id == str(case_id)))
        return _convening.validate_python(state) if state else None

    async def busy_resources(self, resources: list[str], starts_at: datetime, ends_at: datetime) -> set[str]:
        rows = await self.s.scalars(
            select(bookings.c.resource).where(
                bookings.c.resource.in_(resources), bookings.c.starts_at < ends_at, bookings.c.ends_at > starts_at
            )
        )
        return set(rows)

    async def add_meeting(self, m: Meeting) -> None:
        await self.s.execute(
            insert(meetings).values(
                meeting_id=str(m.meeting_id),
                case_id=str(m.case_id),
                starts_at=m.starts_at,
                ends_at=m.ends_at,
                status=m.status,
                state=_meeting.dump_python(m, mode="json"),
            )
        )
        await self.s.execute(
            insert(bookings),
            [
                {"resource": r, "meeting_id": str(m.meeting_id), "starts_at": m.starts_at, "ends_at": m.ends_at}
                for r in m.resources()
            ],
        )

    async def save_meeting(self, m: Meeting) -> None:
        await self.s.execute(
            update(meetings)
            .where(meetings.c.meeting_id == str(m.meeting_id))
            .values(status=m.status, state=_meeting.dump_python(m, mode="json"))
        )

    async def release_bookings(self, meeting_id: UUID) -> None:
        await self.s.execute(delete(bookings).where(bookings.c.meeting_id == str(meeting_id)))

    async def meeting(self, meeting_id: UUID) -> Meeting | None:
        state = await self.s.scalar(select(meetings.c.state).where(meetings.c.meeting_id == str(meeting_id)))
        return _meeting.validate_python(state) if state else None

    async def meetings_of_case(self, case_id: UUID) -> list[Meeting]:
        states = await self.s.scalars(
            select(meetings.c.state).where(meetings.c.case_id == str(case_id)).order_by(meetings.c.starts_at)
        )
        return [_meeting.validate_python(s) for s in states]


class MeetingsUnitOfWork(UnitOfWork):
    meetings: MeetingRepository

    def _attach(self, session: Any) -> None:
        self.meetings = MeetingRepository(self)
