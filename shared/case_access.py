"""The case-access read model: who stands in which relation to a case, kept by every service
from events it already receives, so that each can decide a request locally (shared/policy.py).

One table, ``case_access`` (case id, kind, value), fed by:
- ``referral.received``: a new case's team and municipality (they also route the service's
  staff-facing events, shared/messaging/routing.py), and the keyed hashes of the guardians'
  henkilötunnus (shared/pseudonyms.py; never the henkilötunnus itself);
- ``referral.unlinked``: the team and municipality of the case an unlinked referral now has;
- ``referral.case_transferred``: the new team and municipality replace the old (the old team loses access);
- ``referral.linked``: the guardians' keyed hashes;
- ``meeting.convened``: the professionals invited;
- ``plan.agreed`` / ``plan.revised`` / ``plan.handed_over`` and ``meeting.held``: the responsible workers;
- ``referral.guardian_access_restricted``: a guardian's keyed hash as restricted, or no longer.
Rows are only added (a person once on a case keeps reaching it), except the team, which follows
the latest assignment, and a guardian's restriction, which a social worker may lift. No personal data: ids and keyed hashes.

``referral.assigned`` says the same team as the ``referral.received`` or ``referral.unlinked``
published with it; it is for staff apps' team feeds, and no service consumes it (a delivery per
referral less in each of three services, bench/README.md, thirteenth session).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, and_, bindparam, delete, or_, select

from shared.contracts.meetings import MeetingConvened, MeetingHeld
from shared.contracts.plans import PlanAgreed, PlanHandedOver, PlanRevised
from shared.contracts.referral import (
    CaseTransferred,
    GuardianAccessRestricted,
    ReferralLinked,
    ReferralReceived,
    ReferralUnlinked,
)
from shared.policy import CaseRelation, Relations
from shared.sealing import leaves_sealed
from shared.storage.fastpath.declare import hot_once
from shared.storage.uow import UnitOfWork

TABLE = "case_access"


def case_access_table(metadata: MetaData) -> Table:
    """Add the ``case_access`` table to a service's metadata (once)."""
    if TABLE in metadata.tables:
        return metadata.tables[TABLE]
    return Table(
        TABLE,
        metadata,
        Column("case_id", String(36), primary_key=True),
        Column("kind", String(24), primary_key=True),  # team, participant, responsible, guardian
        Column("value", String(100), primary_key=True),  # a team id, staff id or guardian key
        info={"erasure": "keep"},  # ids and keyed pseudonyms: who may act on the case (shared/erasure.py)
    )


class CaseAccess:
    """Reads and writes the read model in a unit of work's transaction."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.table: Table = uow.db.metadata.tables[TABLE]

    async def relations(self, case_ids: Iterable[Any]) -> list[CaseRelation]:
        ids = [str(c) for c in dict.fromkeys(case_ids)]
        if not ids:
            return []
        t = self.table
        result = await self.uow.execute(select(t.c.case_id, t.c.kind, t.c.value).where(t.c.case_id.in_(ids)))
        by_case = {c: Relations(c) for c in ids}
        for case_id, kind, value in result:
            by_case[case_id].rows.append((kind, value))
        return [by_case[c].relation() for c in ids]

    async def cases_of(self, kind: str, value: str) -> list[str]:
        """The cases where ``value`` stands in relation ``kind`` (e.g. a worker's responsible cases).
        Rare (a roster change): no index of its own."""
        t = self.table
        result = await self.uow.execute(select(t.c.case_id).where(t.c.kind == kind, t.c.value == value))
        return sorted(r[0] for r in result)

    async def add(self, case_id: Any, kind: str, values: Iterable[str]) -> None:
        for value in dict.fromkeys(v for v in values if v):
            self.uow.insert_new_later(self.table, {"case_id": str(case_id), "kind": kind, "value": value[:100]})

    async def remove(self, case_id: Any, kind: str, value: str) -> None:
        t = self.table
        stmt = hot_once(
            ("case_access.remove", t),
            lambda: delete(t).where(
                t.c.case_id == bindparam("case_id"), t.c.kind == bindparam("kind"), t.c.value == bindparam("value")
            ),
        )
        row = {"case_id": str(case_id), "kind": kind, "value": value[:100]}
        self.uow.later(stmt, row, scope=row)

    async def route(self, case_id: Any, team_id: str, municipality: str) -> None:
        """The case's team and municipality (one value each) in place of the old ones. Held
        (shared/storage/deferred.py): the delete removes only values other than the new ones, and
        the new ones are inserted unless there, so the two touch different rows and go in one
        round (one statement on PostgreSQL); a batch's routes as one DELETE and one INSERT."""
        t = self.table
        stmt = hot_once(
            ("case_access.unroute", t),
            lambda: delete(t).where(
                t.c.case_id == bindparam("case_id"),
                or_(
                    and_(t.c.kind == "team", t.c.value != bindparam("team")),
                    and_(t.c.kind == "municipality", t.c.value != bindparam("municipality")),
                ),
            ),
        )
        case, team, place = str(case_id), (team_id or "")[:100], (municipality or "")[:100]
        # An empty value stands for none: no row has it, so the delete removes every team (municipality).
        new = tuple({"kind": k, "value": v} for k, v in (("team", team), ("municipality", place)) if v)
        self.uow.later(stmt, {"case_id": case, "team": team, "municipality": place}, scope={"case_id": case}, spares=new)
        for row in new:
            self.uow.insert_new_later(t, {"case_id": case, **row})


# -- the projection: one function per event, registered by the runtime on every service ---------------


@leaves_sealed
async def on_received(ev: ReferralReceived, uow: UnitOfWork) -> None:
    access = CaseAccess(uow)
    if ev.team_id:  # empty only in an event published before the field was added
        await access.route(ev.case_id, ev.team_id, ev.municipality)  # the municipality: the route of its events
    await access.add(ev.case_id, "guardian", ev.guardian_keys)


@leaves_sealed
async def on_unlinked(ev: ReferralUnlinked, uow: UnitOfWork) -> None:
    if ev.team_id:
        await CaseAccess(uow).route(ev.case_id, ev.team_id, ev.municipality or "")


@leaves_sealed
async def on_transferred(ev: CaseTransferred, uow: UnitOfWork) -> None:
    await CaseAccess(uow).route(ev.case_id, ev.team_id, ev.municipality)


@leaves_sealed
async def on_linked(ev: ReferralLinked, uow: UnitOfWork) -> None:
    await CaseAccess(uow).add(ev.case_id, "guardian", ev.guardian_keys)


async def on_convened(ev: MeetingConvened, uow: UnitOfWork) -> None:
    await CaseAccess(uow).add(ev.case_id, "participant", [p.participant_id for p in ev.participants if p.kind == "professional"])


@leaves_sealed
async def on_held(ev: MeetingHeld, uow: UnitOfWork) -> None:
    await CaseAccess(uow).add(ev.case_id, "responsible", ev.responsible_worker_ids)


@leaves_sealed
async def on_plan(ev: PlanAgreed | PlanRevised, uow: UnitOfWork) -> None:
    await CaseAccess(uow).add(ev.case_id, "responsible", [w.worker_id for w in ev.responsible_workers])


@leaves_sealed
async def on_handed_over(ev: PlanHandedOver, uow: UnitOfWork) -> None:
    await CaseAccess(uow).add(ev.case_id, "responsible", [ev.responsible_worker.worker_id])


@leaves_sealed
async def on_guardian_access_restricted(ev: GuardianAccessRestricted, uow: UnitOfWork) -> None:
    access = CaseAccess(uow)
    if ev.restricted:
        await access.add(ev.case_id, "guardian_restricted", [ev.guardian_key])
    else:
        await access.remove(ev.case_id, "guardian_restricted", ev.guardian_key)


PROJECTION: tuple[tuple[type[Any], Any], ...] = (
    (ReferralReceived, on_received),
    (ReferralUnlinked, on_unlinked),
    (CaseTransferred, on_transferred),
    (ReferralLinked, on_linked),
    (MeetingConvened, on_convened),
    (MeetingHeld, on_held),
    (PlanAgreed, on_plan),
    (PlanRevised, on_plan),
    (PlanHandedOver, on_handed_over),
    (GuardianAccessRestricted, on_guardian_access_restricted),
)
"""(event, handler) pairs every service subscribes to, before its own handlers of the same event."""
