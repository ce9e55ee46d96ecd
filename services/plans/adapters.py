"""Plans persistence."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import TypeAdapter
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, update

from shared.db import JSONText, UnitOfWork, UTCDateTime, messaging_tables

from .domain import Plan

metadata = MetaData()
messaging_tables(metadata)

plans = Table(
    "plans",
    metadata,
    Column("plan_id", String(36), primary_key=True),
    Column("case_id", String(36), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("next_contact_at", UTCDateTime, nullable=False, index=True),
    Column("state", JSONText, nullable=False),
)

_plan = TypeAdapter(Plan)


class PlanRepository:
    def __init__(self, uow: UnitOfWork) -> None:
        self.s = uow.session

    def _row(self, p: Plan) -> dict[str, Any]:
        return {
            "case_id": str(p.case_id),
            "version": p.version,
            "status": p.status,
            "next_contact_at": p.next_contact_at,
            "state": _plan.dump_python(p, mode="json"),
        }

    async def add(self, p: Plan) -> None:
        await self.s.execute(insert(plans).values(plan_id=str(p.plan_id), **self._row(p)))

    async def save(self, p: Plan) -> None:
        await self.s.execute(update(plans).where(plans.c.plan_id == str(p.plan_id)).values(**self._row(p)))

    async def get(self, plan_id: UUID) -> Plan | None:
        state = await self.s.scalar(select(plans.c.state).where(plans.c.plan_id == str(plan_id)))
        return _plan.validate_python(state) if state else None

    async def of_case(self, case_id: UUID) -> list[Plan]:
        states = await self.s.scalars(select(plans.c.state).where(plans.c.case_id == str(case_id)))
        return [_plan.validate_python(s) for s in states]


class PlansUnitOfWork(UnitOfWork):
    plans: PlanRepository

    def _attach(self, session: Any) -> None:
        self.plans = PlanRepository(self)
