"""Meetings persistence: tables, repository and the unit of work."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Index,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from shared.audit import AuditLog, audit_table
from shared.errors import DomainError
from shared.storage.columns import JSONText, UTCDateTime
from shared.storage.fastpath.declare import hot, hot_all
from shared.storage.tables import messaging_tables
from shared.storage.uow import UnitOfWork

from .domain import Convening, Meeting
from .joint_statistics import JointWorkStatistics
from .meeting_statistics import MeetingStatisticsModel
from .slots import Interval, Professional, Room

metadata = MetaData()
messaging_tables(metadata)
audit_log = audit_table(metadata)  # append-only (shared.audit)

convenings = Table(
    "convenings",
    metadata,
    Column("case_id", String(36), primary_key=True),
    Column("municipality", String(200), nullable=False, index=True),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("state", JSONText, nullable=False),
)
_CONVENINGS_OF = hot(select(convenings.c.case_id).where(convenings.c.case_id.in_(bindparam("ids", expanding=True))))

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

# The guard against double booking under concurrency, on any database: every booked resource holds
# one row per 5-minute cell its meeting touches, and (resource, cell) is the primary key. Two
# transactions that would book the same person or room at overlapping times cannot both commit.
CELL = timedelta(minutes=5)
booking_cells = Table(
    "booking_cells",
    metadata,
    Column("resource", String(200), primary_key=True),
    Column("cell", UTCDateTime, primary_key=True),
    Column("meeting_id", String(36), nullable=False, index=True),
)

professionals = Table(
    "professionals",
    metadata,
    Column("professional_id", String(100), primary_key=True),
    Column("municipality", String(200), nullable=False, index=True),
    Column("source", String(10), nullable=False),  # config | staff
    Column("data", JSONText, nullable=False),
)

rooms = Table(
    "rooms",
    metadata,
    Column("room_id", String(200), primary_key=True),
    Column("municipality", String(200), nullable=False, index=True),
    Column("source", String(10), nullable=False),
    Column("data", JSONText, nullable=False),
)

consents = Table(
    "consents",
    metadata,
    Column("case_id", String(36), primary_key=True),
    Column("consent_id", String(64), primary_key=True),
    Column("purpose", String(40), primary_key=True),
    Column("withdrawn", Boolean, nullable=False),
    Column("valid_until", Date, nullable=True),
)


# The statistics read models: small fact records keyed by what they describe, no personal data; a
# rebuild replaces every row in one transaction. Beside each record, what it is found by
# (``index_of`` of its model): its kind, the Helsinki months it counts in and its case, so that a
# query for some months reads those months' records, not the whole history.
def _facts_table(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("key", String(200), primary_key=True),
        Column("facts", JSONText, nullable=False),
        Column("kind", String(20), nullable=True),
        Column("month", String(7), nullable=True),
        Column("last_month", String(7), nullable=True),  # a second month it counts in (joint: a service)
        Column("case_id", String(36), nullable=True),
        Index(f"ix_{name}_kind_month", "kind", "month"),
        Index(f"ix_{name}_kind_last_month", "kind", "last_month"),
        Index(f"ix_{name}_case_id", "case_id"),
    )


joint_statistics_facts = _facts_table("joint_statistics_facts")  # services/meetings/joint_statistics.py
meeting_statistics_facts = _facts_table("meeting_statistics_facts")  # services/meetings/meeting_statistics.py
FACT_TABLES = {"joint": joint_statistics_facts, "meetings": meeting_statistics_facts}
"""The statistics read models: joint (joint-work statistics) and meetings (joint-meeting statistics)."""
INDEX_OF: dict[str, Callable[[str, dict[str, Any]], dict[str, Any]]] = {
    "joint": JointWorkStatistics.index_of,
    "meetings": MeetingStatisticsModel.index_of,
}
INDEX_COLUMNS = ("kind", "month", "last_month", "case_id")


def _facts_of(t: Table) -> Any:
    return select(t.c.key, t.c.facts).where(t.c.key.in_(bindparam("keys", expanding=True))).with_for_update()


# A batch's facts in one statement, locked until commit (PostgreSQL), declared for the fast path.
_FACTS_OF = {"joint": hot(_facts_of(joint_statistics_facts)), "meetings": hot(_facts_of(meeting_statistics_facts))}


def _facts_where(t: Table, *where: Any) -> Any:
    return select(t.c.key, t.c.facts).where(*where)


# What the statistics queries read, declared for the fast path (an IN list goes to PostgreSQL as one
# array parameter): by kind, by kind in months (of ``month`` or ``last_month``), by case before a month, by key.
_KINDS = bindparam("kinds", expanding=True)
_OF_KIND = {m: _facts_where(t, t.c.kind.in_(_KINDS)) for m, t in FACT_TABLES.items()}
_IN_MONTHS = {
    (m, on): _facts_where(t, t.c.kind.in_(_KINDS), t.c[on] >= bindparam("first"), t.c[on] <= bindparam("last"))
    for m, t in FACT_TABLES.items()
    for on in ("month", "last_month")
}
_OF_CASES_BEFORE = {  # a case's records that count in a month before some month
    m: _facts_where(
        t, t.c.kind == bindparam("kind"), t.c.case_id.in_(bindparam("values", expanding=True)), t.c.month < bindparam("month")
    )
    for m, t in FACT_TABLES.items()
}
_BY_KEY = {m: _facts_where(t, t.c.key.in_(bindparam("values", expanding=True))) for m, t in FACT_TABLES.items()}
hot_all(_OF_KIND, _IN_MONTHS, _OF_CASES_BEFORE, _BY_KEY)


def _index_statistics_facts(conn: Connection) -> None:
    """Idempotent, at every start: a facts table created before its index columns gets them (empty:
    adding a nullable column rewrites nothing) and their indexes. Its records get their values after
    the start, a page at a time (:meth:`MeetingRepository.index_statistics_facts`); until then the
    queries read the table whole, as before."""
    for t in FACT_TABLES.values():
        if "kind" not in {c["name"] for c in inspect(conn).get_columns(t.name)}:
            for name in INDEX_COLUMNS:
                conn.execute(text(f"ALTER TABLE {t.name} ADD COLUMN {name} VARCHAR({t.c[name].type.length})"))
        for index in t.indexes:
            index.create(conn, checkfirst=True)


metadata.info.setdefault("upgrades", []).append(_index_statistics_facts)

# Each municipality's adoption stage of the model, as last recorded (the history is in the events
# and the audit log).
adoption_stages = Table(
    "adoption_stages",
    metadata,
    Column("municipality", String(200), primary_key=True),
    Column("stage", String(30), nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("recorded_by", String(100), nullable=False),
)

proposals = Table(
    "proposals",
    metadata,
    Column("proposal_id", String(36), primary_key=True),
    Column("case_id", String(36), nullable=False, index=True),
    Column("kind", String(20), nullable=False),  # convene | substitute | reschedule
    Column("status", String(20), nullable=False),  # open | accepted | superseded
    Column("created_at", UTCDateTime, nullable=False),
    Column("state", JSONText, nullable=False),
)


def cells(starts_at: datetime, ends_at: datetime) -> list[datetime]:
    """The 5-minute cells [starts_at, ends_at) touches (rounded outwards: never misses an overlap)."""
    s = starts_at.astimezone(UTC)
    c = s.replace(second=0, microsecond=0, minute=s.minute - s.minute % 5)
    out = []
    while c < ends_at:
        out.append(c)
        c += CELL
    return out


def _double_booked() -> DomainError:
    return DomainError("double_booked", "participants")


_convening = TypeAdapter(Convening)
_meeting = TypeAdapter(Meeting)


class MeetingRepository:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.s = uow  # execute/scalar(s) take the driver fast path (shared/storage/fastpath/)
        # Statistics facts read for this transaction's batch (None: no row yet), and as written since.
        self._facts: dict[tuple[str, str], dict[str, Any] | None] = {}
        # Whether a case has a convening, read for this transaction's batch and as added since.
        self._convening_known: dict[str, bool] = {}

    async def preload_convenings(self, case_ids: set[str]) -> None:
        """Which of a batch's cases have a convening, in one statement."""
        wanted = sorted(c for c in case_ids if c not in self._convening_known)
        if not wanted:
            return
        found = set(await self.uow.scalars(_CONVENINGS_OF, {"ids": wanted}))
        for c in wanted:
            self._convening_known[c] = c in found

    async def add_convening(self, c: Convening) -> bool:
        """Open the case's convening unless it has one; True if opened. Held (one statement for the
        batch) when the batch's preload told that the case has none."""
        row = {
            "case_id": str(c.case_id),
            "municipality": c.municipality,
            "opened_at": c.opened_at,
            "state": _convening.dump_python(c, mode="json"),
        }
        known = self._convening_known.get(row["case_id"])
        if known is None:
            return await self.uow.insert_new(convenings, row)
        if known:
            return False
        self._convening_known[row["case_id"]] = True
        self.uow.insert_new_later(convenings, row)
        return True

    async def convening(self, case_id: UUID) -> Convening | None:
        row = await self.uow.row(convenings, case_id=str(case_id))
        return _convening.validate_python(row.state) if row else None

    async def busy_resources(self, resources: list[str], starts_at: datetime, ends_at: datetime) -> set[str]:
        rows = await self.s.scalars(
            select(bookings.c.resource).where(
                bookings.c.resource.in_(resources), bookings.c.starts_at < ends_at, bookings.c.ends_at > starts_at
            )
        )
        return set(rows)

    async def save_convening(self, c: Convening) -> None:
        await self.uow.update(convenings, {"case_id": str(c.case_id)}, {"state": _convening.dump_python(c, mode="json")})

    async def all_convenings(self) -> dict[str, Convening]:
        rows = await self.s.execute(select(convenings.c.case_id, convenings.c.state))
        return {r.case_id: _convening.validate_python(r.state) for r in rows}

    async def busy_intervals(self, resources: list[str], since: datetime) -> dict[str, list[Interval]]:
        rows = await self.s.execute(
            select(bookings.c.resource, bookings.c.starts_at, bookings.c.ends_at).where(
                bookings.c.resource.in_(resources), bookings.c.ends_at > since
            )
        )
        out: dict[str, list[Interval]] = {}
        for r in rows:
            out.setdefault(r.resource, []).append((r.starts_at, r.ends_at))
        return out

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
        await self.book(m)

    async def book(self, m: Meeting) -> None:
        """Book the meeting's resources. A concurrent booking of the same cell fails on the primary
        key; the transaction is then refused as double booked."""
        await self.s.execute(
            insert(bookings),
            [
                {"resource": r, "meeting_id": str(m.meeting_id), "starts_at": m.starts_at, "ends_at": m.ends_at}
                for r in m.resources()
            ],
        )
        try:
            await self.s.execute(
                insert(booking_cells),
                # one global order (resource, cell): concurrent bookers wait on each other, never deadlock
                [
                    {"resource": r, "cell": c, "meeting_id": str(m.meeting_id)}
                    for r in sorted(m.resources())
                    for c in cells(m.starts_at, m.ends_at)
                ],
            )
        except IntegrityError as exc:
            raise _double_booked() from exc

    async def save_meeting(self, m: Meeting) -> None:
        await self.s.execute(
            update(meetings)
            .where(meetings.c.meeting_id == str(m.meeting_id))
            .values(status=m.status, starts_at=m.starts_at, ends_at=m.ends_at, state=_meeting.dump_python(m, mode="json"))
        )

    async def end_bookings(self, meeting_id: UUID, at: datetime) -> None:
        """The meeting is over at ``at``: its people and room are free again from then on."""
        floor = at.astimezone(UTC).replace(second=0, microsecond=0)
        floor = floor.replace(minute=floor.minute - floor.minute % 5)
        await self.s.execute(
            delete(booking_cells).where(booking_cells.c.meeting_id == str(meeting_id), booking_cells.c.cell >= floor)
        )
        await self.s.execute(
            update(bookings).where(bookings.c.meeting_id == str(meeting_id), bookings.c.ends_at > at).values(ends_at=at)
        )

    async def release_bookings(self, meeting_id: UUID) -> None:
        await self.uow.delete(bookings, meeting_id=str(meeting_id))
        await self.uow.delete(booking_cells, meeting_id=str(meeting_id))

    async def all_meetings(self) -> list[Meeting]:
        return [_meeting.validate_python(s) for s in await self.s.scalars(select(meetings.c.state))]

    # -- roster ---------------------------------------------------------------------------------
    async def upsert_professional(self, p: Professional, source: str, *, keep_staff: bool = False) -> bool:
        """Insert or update; with ``keep_staff`` an entry last changed by staff is left alone."""
        values = {"municipality": p.municipality, "source": source, "data": p.to_dict()}
        return await self._upsert(professionals.c.professional_id, p.professional_id, values, keep_staff)

    async def upsert_room(self, r: Room, source: str, *, keep_staff: bool = False) -> bool:
        values = {"municipality": r.municipality, "source": source, "data": r.to_dict()}
        return await self._upsert(rooms.c.room_id, r.room_id, values, keep_staff)

    async def _upsert(self, key: Any, key_value: str, values: dict[str, Any], keep_staff: bool) -> bool:
        """True when the entry was written with new data (the caller then announces the change)."""
        table = key.table
        current = (await self.s.execute(select(table.c.source, table.c.data).where(key == key_value))).first()
        if current is None:
            await self.s.execute(insert(table).values({key.name: key_value, **values}))
        elif keep_staff and current.source == "staff":
            return False
        elif current.data == values["data"]:
            if current.source != values["source"]:
                await self.s.execute(update(table).where(key == key_value).values(source=values["source"]))
            return False  # the same data again (the roster file at every start): nothing to announce
        else:
            await self.s.execute(update(table).where(key == key_value).values(**values))
        return True

    async def roster(self) -> list[Professional]:
        return [Professional.from_dict(d) for d in await self.s.scalars(select(professionals.c.data))]

    async def rooms(self, municipality: str | None = None) -> list[Room]:
        q = select(rooms.c.data)
        if municipality is not None:
            q = q.where(rooms.c.municipality == municipality)
        return [Room.from_dict(d) for d in await self.s.scalars(q)]

    async def room(self, room_id: str) -> Room | None:
        d = await self.s.scalar(select(rooms.c.data).where(rooms.c.room_id == room_id))
        return Room.from_dict(d) if d else None

    # -- consent ledger ---------------------------------------------------------------------------
    async def record_consent(
        self, case_id: UUID, consent_id: str, purpose: str, *, withdrawn: bool, valid_until: Any = None
    ) -> None:
        key = {"case_id": str(case_id), "consent_id": consent_id, "purpose": purpose}
        row = key | {"withdrawn": withdrawn, "valid_until": valid_until}
        if not withdrawn:  # held: nothing waits for whether it was new
            self.uow.insert_new_later(consents, row)
        elif not await self.uow.insert_new(consents, row):
            await self.uow.update(consents, key, {"withdrawn": True})
        # a withdrawal is final: a late "given" for the same entry does not undo it

    async def consents(self, case_id: UUID) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in await self.uow.rows(consents, case_id=str(case_id))]

    # -- proposals --------------------------------------------------------------------------------
    async def add_proposal(self, proposal_id: UUID, case_id: UUID, kind: str, state: dict[str, Any], now: datetime) -> None:
        await self.s.execute(
            insert(proposals).values(
                proposal_id=str(proposal_id), case_id=str(case_id), kind=kind, status="open", created_at=now, state=state
            )
        )

    async def proposal(self, proposal_id: UUID) -> dict[str, Any] | None:
        row = (await self.s.execute(select(proposals).where(proposals.c.proposal_id == str(proposal_id)))).first()
        return dict(row._mapping) if row else None

    async def set_proposal_status(self, proposal_id: UUID, status: str) -> None:
        await self.s.execute(update(proposals).where(proposals.c.proposal_id == str(proposal_id)).values(status=status))

    async def proposals_of_case(self, case_id: UUID) -> list[dict[str, Any]]:
        rows = await self.s.execute(select(proposals).where(proposals.c.case_id == str(case_id)).order_by(proposals.c.created_at))
        return [dict(r._mapping) for r in rows]

    async def meeting(self, meeting_id: UUID) -> Meeting | None:
        state = await self.s.scalar(select(meetings.c.state).where(meetings.c.meeting_id == str(meeting_id)))
        return _meeting.validate_python(state) if state else None

    async def meetings_of_case(self, case_id: UUID) -> list[Meeting]:
        states = await self.s.scalars(
            select(meetings.c.state).where(meetings.c.case_id == str(case_id)).order_by(meetings.c.starts_at)
        )
        return [_meeting.validate_python(s) for s in states]

    # -- statistics read models (FACT_TABLES) --------------------------------------------------------
    async def statistics_facts(self, key: str, model: str = "joint") -> dict[str, Any] | None:
        if (model, key) in self._facts:
            known = self._facts[(model, key)]
            return dict(known) if known is not None else None
        t = FACT_TABLES[model]
        # Locked until commit (PostgreSQL): two events of one key handled at once by two consumers
        # would otherwise each write its own fold over the other's (SQLite writers take turns anyway).
        found = await self.uow.row(t, for_update=True, key=key)
        return dict(found.facts) if found is not None else None

    async def preload_statistics_facts(self, keys: set[str], model: str = "joint") -> None:
        """The facts of a batch's keys in one statement, locked as :meth:`statistics_facts` locks them."""
        wanted = sorted(k for k in keys if (model, k) not in self._facts)
        if not wanted:
            return
        t = FACT_TABLES[model]
        if any(self.uow.holds(t, key=k) for k in wanted):
            await self.uow.send_held(frozenset({t.name}))
        rows = await self.s.execute(_FACTS_OF[model], {"keys": wanted}, send_held=False)
        found = {r.key: dict(r.facts) for r in rows}
        for k in wanted:
            self._facts[(model, k)] = found.get(k)

    async def save_statistics_facts(self, key: str, facts: dict[str, Any], *, new: bool, model: str = "joint") -> None:
        t = FACT_TABLES[model]
        self._facts[(model, key)] = dict(facts)
        if new:
            self.uow.insert_later(t, {"key": key, "facts": facts} | INDEX_OF[model](key, facts))
        else:
            self.uow.update_later(t, {"key": key}, {"facts": facts} | INDEX_OF[model](key, facts))

    async def all_statistics_facts(self, model: str = "joint") -> dict[str, dict[str, Any]]:
        t = FACT_TABLES[model]
        return {k: dict(f) for k, f in (await self.s.execute(select(t.c.key, t.c.facts))).all()}

    async def statistics_facts_of_kind(
        self, model: str, kinds: tuple[str, ...], months: tuple[str, str] | None = None, on: str = "month"
    ) -> dict[str, dict[str, Any]]:
        """The fact records of these kinds; with ``months`` (first, last: YYYY-MM), only those whose
        ``on`` column (``month`` or ``last_month``) falls between them."""
        if months is None:
            rows = await self.s.execute(_OF_KIND[model], {"kinds": list(kinds)})
        else:
            rows = await self.s.execute(_IN_MONTHS[(model, on)], {"kinds": list(kinds), "first": months[0], "last": months[1]})
        return dict(rows.all())  # each record fresh from its JSON: nothing to copy

    async def statistics_facts_of_cases(
        self, model: str, kind: str, case_ids: set[str], before: str
    ) -> dict[str, dict[str, Any]]:
        """The fact records of this kind that belong to these cases and count in a month (``month``)
        before ``before`` (YYYY-MM)."""
        return await self._facts_in(_OF_CASES_BEFORE[model], sorted(case_ids), kind=kind, month=before)

    async def statistics_facts_by_key(self, model: str, keys: set[str]) -> dict[str, dict[str, Any]]:
        return await self._facts_in(_BY_KEY[model], sorted(keys))

    async def _facts_in(self, stmt: Any, values: list[str], **params: Any) -> dict[str, dict[str, Any]]:
        # PostgreSQL takes the list as one array; SQLite binds each value, and bounds their number.
        step = len(values) if self.uow.db.engine.dialect.name == "postgresql" else 5000
        out: dict[str, dict[str, Any]] = {}
        for i in range(0, len(values), step or 1):
            out |= dict((await self.s.execute(stmt, {"values": values[i : i + step], **params})).all())
        return out

    async def statistics_facts_indexed(self, model: str) -> bool:
        """Has every fact record its index columns? (Not yet, for a while after the upgrade that
        added them: :meth:`index_statistics_facts`.)"""
        t = FACT_TABLES[model]
        return (await self.s.execute(select(t.c.key).where(t.c.kind.is_(None)).limit(1))).first() is None

    async def index_statistics_facts(self, model: str, limit: int = 1000) -> int:
        """Give up to ``limit`` records without index columns their values; returns how many. A record
        a consumer rewrote meanwhile has its values from that write and is left as it is."""
        t = FACT_TABLES[model]
        page = (await self.s.execute(select(t.c.key, t.c.facts).where(t.c.kind.is_(None)).limit(limit))).all()
        if page:
            await self.s.execute(
                update(t).where(t.c.key == bindparam("k"), t.c.kind.is_(None)).values({c: bindparam(c) for c in INDEX_COLUMNS}),
                [{"k": r.key, **INDEX_OF[model](r.key, r.facts)} for r in page],
            )
        return len(page)

    async def replace_statistics_facts(self, facts: dict[str, dict[str, Any]], model: str = "joint") -> None:
        """A rebuild's result in place of the live rows, in the unit of work's one transaction."""
        t = FACT_TABLES[model]
        self._facts = {k: v for k, v in self._facts.items() if k[0] != model}
        await self.s.execute(delete(t))
        rows = [{"key": k, "facts": f} | INDEX_OF[model](k, f) for k, f in facts.items()]
        for i in range(0, len(rows), 500):
            await self.uow.insert(t, rows[i : i + 500])

    # -- adoption stage ----------------------------------------------------------------------------
    async def adoption_stage(self, municipality: str) -> str | None:
        found = await self.s.scalar(select(adoption_stages.c.stage).where(adoption_stages.c.municipality == municipality))
        return str(found) if found is not None else None

    async def save_adoption_stage(self, municipality: str, stage: str, at: datetime, by: str, *, new: bool) -> None:
        values = {"stage": stage, "recorded_at": at, "recorded_by": by}
        if new:
            await self.s.execute(insert(adoption_stages).values(municipality=municipality, **values))
        else:
            await self.s.execute(update(adoption_stages).where(adoption_stages.c.municipality == municipality).values(**values))


class MeetingsUnitOfWork(UnitOfWork):
    producer = "meetings"
    audit: AuditLog
    meetings: MeetingRepository
    reminder_lead: timedelta = timedelta(hours=24)

    def _attach(self, session: Any) -> None:
        self.meetings = MeetingRepository(self)
        self.audit = AuditLog(self, "meetings")
        # An event's JSON form, by the event's id() (the event kept with it): two read models and
        # their preloads read each referral.received, and one dump serves all four (read only).
        self.payloads: dict[int, tuple[Any, dict[str, Any]]] = {}
