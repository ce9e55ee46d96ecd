"""Referral persistence: tables, repositories and the unit of work."""

from __future__ import annotations

import functools
from dataclasses import fields
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    null,
    select,
    union_all,
    update,
)

from shared import pseudonyms
from shared.audit import AuditLog, audit_table
from shared.storage.columns import JSONText, UTCDateTime
from shared.storage.database import Database
from shared.storage.engine import dialect_insert
from shared.storage.fastpath.declare import hot, hot_once
from shared.storage.indexes import partial_index
from shared.storage.tables import messaging_tables
from shared.storage.uow import UnitOfWork

from .children import child_keys_of_details
from .config import ReferralConfig
from .consent import Consent
from .domain import Case, Contact, Referral
from .routing import Router
from .statistics import COUNTERS, StatutoryStatistics, add_counts, contributions

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

referral_children = Table(
    "referral_children",
    metadata,
    # Keyed HMAC-SHA256 of the henkilötunnus, or of name + date of birth (shared.pseudonyms)
    Column("child_key", String(64), primary_key=True),
    Column("referral_id", String(36), primary_key=True),
    Column("case_id", String(36), nullable=False, index=True),
    info={"erasure": "delete"},  # an erased child is found by no later referral (shared/erasure.py)
)

cases = Table(
    "cases",
    metadata,
    Column("case_id", String(36), primary_key=True),
    Column("municipality", String(200), nullable=False),
    Column("team_id", String(100), nullable=True, index=True),
    Column("status", String(20), nullable=False, index=True),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("next_due", Date, nullable=True, index=True),  # earliest open statutory deadline
    Column("state", JSONText, nullable=False),
)

# A team's open cases without reading its closed history: the team_id index alone grows with every
# case the team ever had (bench/growth.py; 5,050 index entries read per query at 100,000 cases).
partial_index("ix_cases_open_by_team", cases.c.team_id, cases.c.opened_at, where=cases.c.status == "open")

consents = Table(
    "consents",
    metadata,
    Column("consent_id", String(36), primary_key=True),
    Column("case_id", String(36), nullable=False, index=True),
    Column("purpose", String(40), nullable=False),
    Column("recipient", String(100), nullable=True),
    Column("given_by", String(100), nullable=False),
    Column("recorded_by", String(100), nullable=False),
    Column("given_at", UTCDateTime, nullable=False),
    Column("valid_until", Date, nullable=True),
    Column("withdrawn_at", UTCDateTime, nullable=True),
    Column("withdrawn_by", String(100), nullable=True),
)

rejected_submissions = Table(
    "rejected_submissions",
    metadata,
    Column("rejection_id", String(36), primary_key=True),
    Column("submission_id", String(100), nullable=False, index=True),
    # the newest first for operators (ops.referral.rejected.v1), the oldest out at the end of retention
    Column("received_at", UTCDateTime, nullable=False, index=True),
    Column("stream_seq", Integer, nullable=True),
    Column("raw", LargeBinary, nullable=False),  # kept as received: nothing is lost; access-controlled
    Column("reasons", JSONText, nullable=False),
)

audit_log = audit_table(metadata)  # append-only (shared.audit)

data_migrations = Table(
    "data_migrations",
    metadata,
    Column("name", String(100), primary_key=True),  # a one-off change to stored data, applied once
    Column("applied_at", UTCDateTime, nullable=False),
    Column("changed", Integer, nullable=False),  # how many aggregates it changed
)

# The statutory statistics read model (services/referral/statistics.py): one fact record per case, no
# personal data (municipality, dates, in time or not). Rebuilt from the REFERRAL stream by infra.ops.
statistics_facts = Table(
    "statistics_facts",
    metadata,
    Column("case_id", String(36), primary_key=True),
    Column("facts", JSONText, nullable=False),
    info={"erasure": "keep"},  # codes, dates and counts: statistics survive an erasure
)

# The channel statistics read model (services/referral/channel_statistics.py): one counter row per
# municipality, Helsinki month and channel, no personal data. Kept by an upsert that adds to the row in
# the database (two consumers counting into one row at once both count, on PostgreSQL too); rebuilt
# from the REFERRAL stream by infra.ops.
referral_channel_counts = Table(
    "referral_channel_counts",
    metadata,
    Column("municipality", String(200), primary_key=True),
    Column("month", String(7), primary_key=True),  # YYYY-MM, Helsinki
    Column("channel", String(40), primary_key=True),
    Column("referrals", Integer, nullable=False),
    Column("statutory", Integer, nullable=False),
    Column("urgent", Integer, nullable=False),
    info={"erasure": "keep"},  # codes and counts: statistics survive an erasure
)

# The statutory figures' counters (services/referral/statistics.py): one row per municipality and
# Helsinki month, kept with the facts above as they change (an upsert that adds a case's change to
# the row in the database, as the channel counts are kept). ``query.referral.statistics.v1`` reads
# these, not every case's facts: its cost does not grow with the years of cases. No personal data.
statutory_counts = Table(
    "statutory_counts",
    metadata,
    Column("municipality", String(200), primary_key=True),
    Column("month", String(7), primary_key=True),  # YYYY-MM, Helsinki
    Column("decisions", Integer, nullable=False),
    Column("decisions_in_time", Integer, nullable=False),
    Column("assessments_completed", Integer, nullable=False),
    Column("assessments_in_time", Integer, nullable=False),
    info={"erasure": "keep"},  # counts: statistics survive an erasure
)

pseudonym_scheme = Table(
    "pseudonym_scheme",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("key_check", String(64), nullable=False),  # pseudonym("pseudonym-key-check"): which key keyed the index
)


def _rekey_children(conn: Connection) -> None:
    """At start: when the child index was keyed otherwise (the unsalted SHA-256 of earlier versions, or
    another key file), recompute every child key from the stored referrals (their details hold the
    henkilötunnus, or name and date of birth) under the current key, in the start-up transaction."""
    check = pseudonyms.pseudonym("pseudonym-key-check")
    row = conn.execute(select(pseudonym_scheme.c.key_check).where(pseudonym_scheme.c.id == 1)).first()
    if row is not None and row.key_check == check:
        return
    conn.execute(delete(referral_children))
    last = ""
    while True:
        page = conn.execute(
            select(referrals.c.referral_id, referrals.c.case_id, referrals.c.state)
            .where(referrals.c.referral_id > last)
            .order_by(referrals.c.referral_id)
            .limit(1000)
        ).all()
        rows = [
            {"child_key": k, "referral_id": r.referral_id, "case_id": r.case_id}
            for r in page
            for k in dict.fromkeys(child_keys_of_details(r.state.get("details") or {}, pseudonyms.pseudonym))
        ]
        if rows:
            conn.execute(insert(referral_children), rows)
        if len(page) < 1000:
            break
        last = page[-1].referral_id
    if row is None:
        conn.execute(insert(pseudonym_scheme).values(id=1, key_check=check))
    else:
        conn.execute(update(pseudonym_scheme).where(pseudonym_scheme.c.id == 1).values(key_check=check))


metadata.info.setdefault("upgrades", []).append(_rekey_children)

_REFERRAL_COLUMNS = ("referral_id", "case_id", "submission_id", "channel", "municipality", "received_at", "status", "urgent")
_CASE_COLUMNS = ("case_id", "municipality", "team_id", "status", "opened_at")

# The intake's lookup of a child's open case, in two index lookups built once: the cases of these
# children (few), then those cases by primary key. As one join, PostgreSQL with stale statistics
# chose to read every open case through the status index and hash-join them: 4.6 ms per referral
# at 7,000 open cases, and intake fell from 128 to 26 referrals/s as the table grew (bench/).
_CASES_OF_CHILDREN = hot(
    select(referral_children.c.case_id).where(referral_children.c.child_key.in_(bindparam("keys", expanding=True)))
)
_CASE_STATUS = hot(
    select(cases.c.case_id, cases.c.status, cases.c.opened_at).where(cases.c.case_id.in_(bindparam("ids", expanding=True)))
)
# Two of an intake batch's reads in one statement (one round trip on PostgreSQL): the cases of its
# children (kind "child") and which of its submission ids are known ("submission"). Each branch is
# an index lookup of its own, not a join, for the reason above; the status of the cases found (few,
# and none for a new child) is read after it with _CASE_STATUS.
_INTAKE_PRELOAD = hot(
    union_all(
        select(literal("child").label("kind"), referral_children.c.child_key.label("key"), referral_children.c.case_id).where(
            referral_children.c.child_key.in_(bindparam("keys", expanding=True))
        ),
        select(literal("submission"), referrals.c.submission_id, cast(null(), String(36))).where(
            referrals.c.submission_id.in_(bindparam("ids", expanding=True))
        ),
    )
)


_COUNTED = ("referrals", "statutory", "urgent")  # what _count_referral adds to its row


def _count_referral(dialect: str) -> Any:
    t = referral_channel_counts
    stmt = dialect_insert(dialect)(t)
    return stmt.on_conflict_do_update(
        index_elements=[t.c.municipality, t.c.month, t.c.channel],
        set_={
            "referrals": t.c.referrals + stmt.excluded.referrals,
            "statutory": t.c.statutory + stmt.excluded.statutory,
            "urgent": t.c.urgent + stmt.excluded.urgent,
        },
    )


def _count_statutory(dialect: str) -> Any:
    t = statutory_counts
    stmt = dialect_insert(dialect)(t)
    return stmt.on_conflict_do_update(
        index_elements=[t.c.municipality, t.c.month],
        set_={c: t.c[c] + stmt.excluded[c] for c in COUNTERS},
    )


STATUTORY_COUNTS_MIGRATION = "2026-12-statutory-counts-from-facts"


def _fill_statutory_counts(conn: Connection) -> None:
    """Once, at the first start with the counters: count them from the facts a database already holds
    (a page of cases at a time), in the start-up transaction. A new database has no facts: nothing
    to count."""
    done = conn.execute(select(data_migrations.c.name).where(data_migrations.c.name == STATUTORY_COUNTS_MIGRATION)).first()
    if done is not None:
        return
    counts: dict[tuple[str, str], list[int]] = {}
    last, facts = "", 0
    while True:
        page = conn.execute(
            select(statistics_facts.c.case_id, statistics_facts.c.facts)
            .where(statistics_facts.c.case_id > last)
            .order_by(statistics_facts.c.case_id)
            .limit(5000)
        ).all()
        add_counts(counts, *(contributions(r.facts) for r in page))
        facts += len(page)
        if len(page) < 5000:
            break
        last = page[-1].case_id
    conn.execute(delete(statutory_counts))
    rows = _count_rows(counts)
    for i in range(0, len(rows), 500):
        conn.execute(insert(statutory_counts), rows[i : i + 500])
    conn.execute(insert(data_migrations).values(name=STATUTORY_COUNTS_MIGRATION, applied_at=datetime.now(UTC), changed=facts))


metadata.info.setdefault("upgrades", []).append(_fill_statutory_counts)


def _index_rejections_by_receipt(conn: Connection) -> None:
    """Idempotent, at every start: the receipt index on a rejections table created before it."""
    (index,) = (i for i in rejected_submissions.indexes if i.name == "ix_rejected_submissions_received_at")
    index.create(conn, checkfirst=True)


metadata.info.setdefault("upgrades", []).append(_index_rejections_by_receipt)


def _count_rows(counts: dict[tuple[str, str], list[int]]) -> list[dict[str, Any]]:
    return [{"municipality": m, "month": mo, **dict(zip(COUNTERS, v, strict=True))} for (m, mo), v in counts.items() if any(v)]


@functools.cache
def _state_names(cls: type, skip: tuple[str, ...]) -> tuple[str, ...]:
    """The dataclass's field names outside ``skip``, found once per class (three times per referral)."""
    return tuple(f.name for f in fields(cls) if f.name not in skip)


def _state(obj: Any, skip: tuple[str, ...]) -> dict[str, Any]:
    """The aggregate's fields not kept in their own columns, for the JSON ``state`` column.

    Shallow (it is serialised at once), unlike dataclasses.asdict, which deep-copies every nested
    value of the submission."""
    state = {name: getattr(obj, name) for name in _state_names(type(obj), skip)}
    if "contacts" in state:
        state["contacts"] = [dict(c.__dict__) for c in state["contacts"]]
    return state


class ReferralRepository:
    def __init__(self, uow: ReferralUnitOfWork) -> None:
        self.uow = uow
        # Cases opened in this transaction, and statistics facts written in it: a new case has no
        # facts to read, and no other transaction can see it yet (one statement less per referral).
        self._new_cases: set[str] = set()
        self._facts_written: dict[str, dict[str, Any]] = {}
        # An intake batch's reads made at once (preload_intake), kept up to date by its own writes:
        # the cases of its children, those cases' status and opening, and whether a submission id is known.
        self._cases_of_child: dict[str, set[str]] = {}
        self._case_status: dict[str, tuple[str, datetime]] = {}
        self._submission_known: dict[str, bool] = {}

    async def preload_intake(self, child_keys: set[str], submission_ids: set[str]) -> None:
        keys = sorted(k for k in child_keys if k not in self._cases_of_child)
        wanted = sorted(i for i in submission_ids if i not in self._submission_known)
        if not keys and not wanted:
            return
        rows = list(await self.s.execute(_INTAKE_PRELOAD, {"keys": keys, "ids": wanted}))
        for k in keys:
            self._cases_of_child[k] = set()
        for i in wanted:
            self._submission_known[i] = False
        for r in rows:
            if r.kind == "submission":
                self._submission_known[r.key] = True
            else:
                self._cases_of_child[r.key].add(r.case_id)
        ids = sorted({c for k in keys for c in self._cases_of_child[k]} - self._case_status.keys())
        if ids:
            for r in await self.s.execute(_CASE_STATUS, {"ids": ids}):
                self._case_status[r.case_id] = (r.status, r.opened_at)

    @property
    def s(self) -> Any:
        return self.uow  # execute/scalar(s) take the driver fast path (shared/storage/fastpath/)

    # -- referrals ---------------------------------------------------------------------------------
    async def add(self, r: Referral) -> bool:
        """Store a new referral; False (and nothing stored) when its submission id is already known."""
        row = {
            "referral_id": str(r.referral_id),
            "case_id": str(r.case_id),
            "submission_id": r.submission_id,
            "channel": r.channel,
            "municipality": r.municipality,
            "received_at": r.received_at,
            "status": r.status,
            "urgent": r.urgent,
            "state": _state(r, _REFERRAL_COLUMNS),
        }
        known = self._submission_known.get(r.submission_id)
        if known is None:
            if not await self.uow.insert_new(referrals, row):
                return False
        elif known:
            return False
        else:
            # Preloaded as unknown: held. Should another replica store the same id meanwhile, the
            # unique submission id fails this batch's commit and the consumer retries its events one
            # by one, which then find it.
            self._submission_known[r.submission_id] = True
            self.uow.insert_later(referrals, row)
        children = [
            {"child_key": key, "referral_id": str(r.referral_id), "case_id": str(r.case_id)}
            for key in dict.fromkeys(r.child_keys)
        ]
        if children:
            self.uow.insert_later(referral_children, children)
            for c in children:
                if c["child_key"] in self._cases_of_child:
                    self._cases_of_child[c["child_key"]].add(c["case_id"])
        return True

    async def save_referral(self, r: Referral) -> None:
        await self.s.execute(
            update(referrals)
            .where(referrals.c.referral_id == str(r.referral_id))
            .values(received_at=r.received_at, status=r.status, state=_state(r, _REFERRAL_COLUMNS))
        )

    async def move(self, r: Referral, case_id: UUID) -> None:
        """Move a referral (and its children's index rows) to another case."""
        r.case_id = case_id
        r.linked = False
        self._cases_of_child.clear()  # what a batch read of its children's cases no longer holds
        state = _state(r, _REFERRAL_COLUMNS)
        await self.s.execute(
            update(referrals).where(referrals.c.referral_id == str(r.referral_id)).values(case_id=str(case_id), state=state)
        )
        await self.s.execute(
            update(referral_children).where(referral_children.c.referral_id == str(r.referral_id)).values(case_id=str(case_id))
        )

    async def by_submission(self, submission_id: str) -> Referral | None:
        row = await self.uow.row(referrals, submission_id=submission_id)
        return _to_referral(row) if row else None

    async def get(self, referral_id: UUID) -> Referral | None:
        row = (await self.s.execute(select(referrals).where(referrals.c.referral_id == str(referral_id)))).first()
        return _to_referral(row) if row else None

    async def by_case(self, case_id: UUID) -> list[Referral]:
        rows = (
            await self.s.execute(select(referrals).where(referrals.c.case_id == str(case_id)).order_by(referrals.c.received_at))
        ).all()
        return [_to_referral(r) for r in rows]

    async def open_case_for_children(self, keys: list[str]) -> UUID | None:
        """The most recently opened open case of any of these children."""
        if not keys:
            return None
        if all(k in self._cases_of_child for k in keys):  # preloaded for the batch, and kept since
            ids = {c for k in keys for c in self._cases_of_child[k]}
            if ids <= self._case_status.keys():
                known = [(c, *self._case_status[c]) for c in ids]
                open_ = [(opened, c) for c, status, opened in known if status == "open"]
                return UUID(max(open_)[1]) if open_ else None
        # The batch's held rows of other children and cases cannot change the answer: not sent first.
        send = any(self.uow.holds(referral_children, child_key=k) for k in keys)
        ids = {r.case_id for r in await self.s.execute(_CASES_OF_CHILDREN, {"keys": list(keys)}, send_held=send)}
        if not ids:
            return None
        send = any(self.uow.holds(cases, case_id=i) for i in ids)
        open_ = [r for r in await self.s.execute(_CASE_STATUS, {"ids": sorted(ids)}, send_held=send) if r.status == "open"]
        return UUID(max(open_, key=lambda r: r.opened_at).case_id) if open_ else None

    # -- cases -------------------------------------------------------------------------------------
    async def add_case(self, c: Case) -> None:
        self.uow.insert_later(cases, self._case_values(c))
        self._new_cases.add(str(c.case_id))
        self._case_status[str(c.case_id)] = (c.status, c.opened_at)

    async def save_case(self, c: Case) -> None:
        values = self._case_values(c)
        if str(c.case_id) in self._case_status:
            self._case_status[str(c.case_id)] = (c.status, c.opened_at)
        await self.s.execute(update(cases).where(cases.c.case_id == str(c.case_id)).values(**values))

    @staticmethod
    def _case_values(c: Case) -> dict[str, Any]:
        state = _state(c, _CASE_COLUMNS)
        dues = [d for _, d in c.open_deadlines()]
        return {
            "case_id": str(c.case_id),
            "municipality": c.municipality,
            "team_id": c.team_id,
            "status": c.status,
            "opened_at": c.opened_at,
            "next_due": min(dues) if dues else None,
            "state": state,
        }

    async def get_case(self, case_id: UUID) -> Case | None:
        row = (await self.s.execute(select(cases).where(cases.c.case_id == str(case_id)))).first()
        return _to_case(row) if row else None

    async def open_cases_of_team(self, team_id: str) -> list[Case]:
        rows = (
            await self.s.execute(
                select(cases).where(cases.c.team_id == team_id, cases.c.status == "open").order_by(cases.c.opened_at)
            )
        ).all()
        return [_to_case(r) for r in rows]

    async def open_cases(self) -> list[Case]:
        rows = (await self.s.execute(select(cases).where(cases.c.status == "open").order_by(cases.c.opened_at))).all()
        return [_to_case(r) for r in rows]

    # -- one-off data migrations -------------------------------------------------------------------
    async def migration_applied(self, name: str) -> bool:
        return (await self.s.execute(select(data_migrations.c.name).where(data_migrations.c.name == name))).first() is not None

    async def mark_migration(self, name: str, at: datetime, changed: int) -> None:
        await self.s.execute(insert(data_migrations).values(name=name, applied_at=at, changed=changed))

    # -- statistics read model -------------------------------------------------------------------------
    async def statistics_facts(self, case_id: Any) -> dict[str, Any] | None:
        # Locked until commit (PostgreSQL): events of one case handled at once by two consumers would
        # otherwise each write its own fold over the other's (SQLite writers take turns anyway).
        key = str(case_id)
        if key in self._facts_written:
            return dict(self._facts_written[key])
        if key in self._new_cases:
            return None
        found = await self.uow.row(statistics_facts, for_update=True, case_id=key)
        return dict(found.facts) if found is not None else None

    async def save_statistics_facts(self, case_id: Any, facts: dict[str, Any], *, new: bool) -> None:
        self._facts_written[str(case_id)] = dict(facts)
        if new:
            self.uow.insert_later(statistics_facts, {"case_id": str(case_id), "facts": facts})
        else:
            self.uow.update_later(statistics_facts, {"case_id": str(case_id)}, {"facts": facts})

    async def count_statutory(self, change: dict[tuple[str, str], list[int]]) -> None:
        """Add a case's change (:func:`statistics.change`) to the counter rows it touches, in the
        database (INSERT … ON CONFLICT DO UPDATE adds to the row as it is at commit time)."""
        dialect = self.uow.db.engine.dialect.name
        stmt = hot_once(("referral.count_statutory", dialect), lambda: _count_statutory(dialect))
        # In one order everywhere (municipality, month): two transactions that each change two rows
        # (transfers of two cases on two replicas) wait for each other instead of deadlocking.
        for row in sorted(_count_rows(change), key=lambda r: (r["municipality"], r["month"])):
            self.uow.later(stmt, row, adds=COUNTERS)  # a batch's changes of one row: one upsert of their sums

    async def statutory_counts(self) -> dict[tuple[str, str], list[int]]:
        """The counter rows: one per municipality and month."""
        t = statutory_counts
        found = await self.s.execute(select(t.c.municipality, t.c.month, *(t.c[c] for c in COUNTERS)))
        return {(r[0], r[1]): list(r[2:]) for r in found.all()}

    async def replace_statistics_facts(self, facts: dict[str, dict[str, Any]]) -> None:
        """A rebuild's result in place of the live rows, facts and counters, in the unit of work's one
        transaction."""
        self._facts_written.clear()
        await self.s.execute(delete(statistics_facts))
        await self.s.execute(delete(statutory_counts))
        rows = [{"case_id": c, "facts": f} for c, f in facts.items()]
        for i in range(0, len(rows), 500):
            await self.uow.insert(statistics_facts, rows[i : i + 500])
        counted = _count_rows(StatutoryStatistics(facts).counts())
        for i in range(0, len(counted), 500):
            await self.uow.insert(statutory_counts, counted[i : i + 500])

    async def all_statistics_facts(self) -> dict[str, dict[str, Any]]:
        """Every case's facts (tests and checks; the query reads :meth:`statutory_counts`)."""
        return {c: dict(f) for c, f in (await self.s.execute(select(statistics_facts.c.case_id, statistics_facts.c.facts))).all()}

    async def count_referral(self, key: tuple[str, str, str], statutory: int, urgent: int) -> None:
        """Add one referral to its counter row, in the database: INSERT … ON CONFLICT DO UPDATE adds to
        the row as it is at commit time (PostgreSQL waits for a concurrent writer of the same row
        instead of reading a stale count), so no separate lock is needed."""
        municipality, month, channel = key
        dialect = self.uow.db.engine.dialect.name
        values = {"municipality": municipality, "month": month, "channel": channel, "referrals": 1}
        self.uow.later(
            hot_once(("referral.count_referral", dialect), lambda: _count_referral(dialect)),
            values | {"statutory": statutory, "urgent": urgent},
            adds=_COUNTED,  # a batch's referrals of one row: one upsert of their sums
        )

    async def replace_channel_counts(self, counts: dict[tuple[str, str, str], list[int]]) -> None:
        """A rebuild's result in place of the live counter rows, in the unit of work's one transaction."""
        await self.s.execute(delete(referral_channel_counts))
        rows = [
            {"municipality": m, "month": mo, "channel": ch, "referrals": n, "statutory": st, "urgent": u}
            for (m, mo, ch), (n, st, u) in counts.items()
        ]
        for i in range(0, len(rows), 500):
            await self.uow.insert(referral_channel_counts, rows[i : i + 500])

    async def channel_counts(self) -> dict[tuple[str, str, str], list[int]]:
        t = referral_channel_counts
        found = await self.s.execute(select(t.c.municipality, t.c.month, t.c.channel, t.c.referrals, t.c.statutory, t.c.urgent))
        return {(r[0], r[1], r[2]): [r[3], r[4], r[5]] for r in found.all()}

    async def cases_due_by(self, horizon: date, team_id: str | None) -> list[Case]:
        q = select(cases).where(cases.c.next_due.is_not(None), cases.c.next_due <= horizon)
        if team_id is not None:
            q = q.where(cases.c.team_id == team_id)
        rows = (await self.s.execute(q.order_by(cases.c.next_due))).all()
        return [_to_case(r) for r in rows]

    # -- consents ----------------------------------------------------------------------------------
    async def add_consent(self, c: Consent) -> None:
        values = _state(c, ())
        values["consent_id"] = str(c.consent_id)
        values["case_id"] = str(c.case_id)
        self.uow.insert_later(consents, values)

    async def get_consent(self, consent_id: UUID) -> Consent | None:
        row = (await self.s.execute(select(consents).where(consents.c.consent_id == str(consent_id)))).first()
        return _to_consent(row) if row else None

    async def save_consent(self, c: Consent) -> None:
        await self.s.execute(
            update(consents)
            .where(consents.c.consent_id == str(c.consent_id))
            .values(withdrawn_at=c.withdrawn_at, withdrawn_by=c.withdrawn_by)
        )

    async def consents_of(self, case_id: UUID) -> list[Consent]:
        rows = (
            await self.s.execute(select(consents).where(consents.c.case_id == str(case_id)).order_by(consents.c.given_at))
        ).all()
        return [_to_consent(r) for r in rows]

    # -- rejections and audit ----------------------------------------------------------------------
    async def add_rejection(self, **values: Any) -> None:
        await self.s.execute(insert(rejected_submissions).values(**values))

    async def forget_rejections_before(self, moment: datetime) -> int:
        """Delete the stored rejections received before ``moment``; how many there were."""
        result = await self.s.execute(delete(rejected_submissions).where(rejected_submissions.c.received_at < moment))
        return int(result.rowcount)

    async def rejections(self, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """How many rejections are stored, and the newest ``limit`` of them without their raw bytes."""
        t = rejected_submissions
        total = await self.s.scalar(select(func.count()).select_from(t))
        rows = (
            await self.s.execute(
                select(t.c.rejection_id, t.c.submission_id, t.c.received_at, t.c.stream_seq, t.c.reasons)
                .order_by(t.c.received_at.desc(), t.c.stream_seq.desc())
                .limit(limit)
            )
        ).all()
        return int(total or 0), [_rejection(r) for r in rows]

    async def rejection(self, rejection_id: UUID) -> dict[str, Any] | None:
        """One rejection with its raw bytes as received."""
        row = (
            await self.s.execute(select(rejected_submissions).where(rejected_submissions.c.rejection_id == str(rejection_id)))
        ).first()
        return {**_rejection(row), "raw": bytes(row.raw)} if row else None

    async def audit(self, **values: Any) -> None:
        """Append one access record (who, whose data, what, purpose, result; when = now)."""
        await self.uow.audit.record(**values)

    async def cases_of_child(self, key: str) -> list[str]:
        """Every case (open or closed) that holds a referral of this child (hashed key)."""
        rows = await self.s.execute(select(referral_children.c.case_id).where(referral_children.c.child_key == key).distinct())
        return sorted(r.case_id for r in rows)

    async def access_log(self, case_ids: list[str]) -> list[dict[str, Any]]:
        return await self.uow.audit.entries(case_ids)


def _rejection(row: Any) -> dict[str, Any]:
    return {
        "rejection_id": row.rejection_id,
        "submission_id": row.submission_id,
        "received_at": row.received_at,
        "stream_seq": row.stream_seq,
        "reasons": row.reasons,
    }


def _to_referral(row: Any) -> Referral:
    state = dict(row.state)
    state["contacts"] = [Contact(**c) for c in state.get("contacts", [])]
    state["handled_at"] = _datetime(state.get("handled_at"))
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


def _date(v: Any) -> date | None:
    return date.fromisoformat(v) if isinstance(v, str) else v


def _datetime(v: Any) -> datetime | None:
    return datetime.fromisoformat(v) if isinstance(v, str) else v


def _to_case(row: Any) -> Case:
    state = dict(row.state)
    for k in ("decision_due_by", "assessment_started_on", "assessment_complete_by", "assessment_completed_on"):
        state[k] = _date(state.get(k))
    state["received_at"] = _datetime(state.get("received_at"))
    return Case(
        case_id=UUID(row.case_id),
        municipality=row.municipality,
        team_id=row.team_id,
        status=row.status,
        opened_at=row.opened_at,
        **state,
    )


def _to_consent(row: Any) -> Consent:
    return Consent(
        consent_id=UUID(row.consent_id),
        case_id=UUID(row.case_id),
        purpose=row.purpose,
        recipient=row.recipient,
        given_by=row.given_by,
        recorded_by=row.recorded_by,
        given_at=row.given_at,
        valid_until=row.valid_until,
        withdrawn_at=row.withdrawn_at,
        withdrawn_by=row.withdrawn_by,
    )


class ReferralUnitOfWork(UnitOfWork):
    producer = "referral"
    referrals: ReferralRepository
    audit: AuditLog

    def __init__(
        self, db: Database, clock: Any = None, config: ReferralConfig | None = None, router: Router | None = None
    ) -> None:
        super().__init__(db, clock)
        self.config = config or ReferralConfig()
        self.router = router or self.config.router()

    def _attach(self, session: Any) -> None:
        self.referrals = ReferralRepository(self)
        self.audit = AuditLog(self, "referral")
        self.screenings: dict[str, Any] = {}  # submissions screened in this transaction, by inbox key
        self.addresses: dict[str, str | None] = {}  # e-mail addresses checked in it (normalised_email)
