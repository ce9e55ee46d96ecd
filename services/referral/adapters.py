"""Referral persistence: tables, repository and the unit of work."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, Column, Integer, LargeBinary, MetaData, String, Table, insert, select

from shared.db import JSONText, UnitOfWork, UTCDateTime, messaging_tables

from .domain import Contact, Referral

metadata = MetaData()
messaging_tables(metadata)

referrals = Table(
    "referrals",
    metadata,
    Column("referral_id", String(36), primary_key=True),
    Column("case_id", String(36), nullable=False, index=True),
    Column("submission_id", String(100), nullable=False, unique=True),
    Column("channel", String(40), nullable=False),
    Column("municipality", String(200), nullable=False, index=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("status", String(20), nullable=False),
    Column("urgent", Boolean, nullable=False),
    Column("state", JSONText, nullable=False),  # the rest of the aggregate, incl. personal data
)

rejected_submissions = Table(
    "rejected_submissions",
    metadata,
    Column("rejection_id", String(36), primary_key=True),
    Column("submission_id", String(100), nullable=False, index=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("stream_seq", Integer, nullable=True),
    Column("raw", LargeBinary, nullable=False),  # kept as received: nothing is lost; access-controlled
    Column("reasons", JSONText, nullable=False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("case_id", String(36), nullable=True, index=True),
    Column("action", String(60), nullable=False),
    Column("purpose", String(200), nullable=False),
    Column("result", String(20), nullable=False),
)


class ReferralRepository:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow

    async def add(self, r: Referral) -> None:
        state = asdict(r)
        for k in ("referral_id", "case_id", "submission_id", "channel", "municipality", "received_at", "status", "urgent"):
            state.pop(k)
        await self.uow.session.execute(
            insert(referrals).values(
                referral_id=str(r.referral_id),
                case_id=str(r.case_id),
                submission_id=r.submission_id,
                channel=r.channel,
                municipality=r.municipality,
                received_at=r.received_at,
                status=r.status,
                urgent=r.urgent,
                state=state,
            )
        )

    async def by_submission(self, submission_id: str) -> Referral | None:
        row = (await self.uow.session.execute(select(referrals).where(referrals.c.submission_id == submission_id))).first()
        return _to_domain(row) if row else None

    async def by_case(self, case_id: UUID) -> list[Referral]:
        rows = (
            await self.uow.session.execute(
                select(referrals).where(referrals.c.case_id == str(case_id)).order_by(referrals.c.received_at)
            )
        ).all()
        return [_to_domain(r) for r in rows]

    async def add_rejection(self, **values: Any) -> None:
        await self.uow.session.execute(insert(rejected_submissions).values(**values))

    async def audit(self, **values: Any) -> None:
        await self.uow.session.execute(insert(audit_log).values(at=self.uow.now(), **values))


def _to_domain(row: Any) -> Referral:
    state = dict(row.state)
    state["contacts"] = [Contact(**c) for c in state.get("contacts", [])]
    return Referral(
        referral_id=UUID(row.referral_id),
        case_id=UUID(row.case_id),
        submission_id=row.submission_id,
        channel=row.channel,
        municipality=row.municipality,
        received_at=row.received_at,
        status=row.status,
        urgent=row.urgent,
        **state,
    )


class ReferralUnitOfWork(UnitOfWork):
    referrals: ReferralRepository

    def _attach(self, session: Any) -> None:
        self.referrals = ReferralRepository(self)
