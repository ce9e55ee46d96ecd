"""Access audit (Client Data Act 703/2023 s. 11): every read or disclosure of a family's data leaves
one append-only record in the service's own database: who, whose data (the case id), what, why,
when (UTC) and the result. Personal data never goes in: ``actor`` is a staff or recipient id,
``case_id`` a case reference, ``scope`` what was asked for in ids (``case:<id>``, ``team:<id>``).

Every service keeps its own ``audit_log`` table (:func:`audit_table`); :class:`AuditLog` writes to
it in the caller's unit of work, so a read and its record commit together. Refused reads are
recorded too: record, commit, then raise.

Tamper evidence: the triggers stop the services and anyone else from changing or deleting a record,
but someone with the database's own rights can drop a trigger, delete, and put it back. So each
record also carries ``hash``: a keyed hash (HMAC-SHA256, key derived from the deployment's key
outside the database, shared/pseudonyms.py) over its canonical content and the previous record's
hash; the single-row ``audit_chain`` table holds the hash of the last record and the count. A record
deleted or changed, or records missing at the end, break the chain, and :func:`verify_chain`
(``python -m infra.ops verify-audit``) reports the first break. The chain head is read with a row
lock and updated in the writing transaction, so concurrent writers append one after the other.
PostgreSQL also refuses TRUNCATE of both tables.

Results: ``found`` / ``empty`` (read granted; empty = nothing of a family matched), ``not_found``
/ ``refused`` (read refused; nothing disclosed), ``disclosed`` / ``withheld`` (content given to a
recipient, or not given for lack of consent or role). :data:`GRANTED` tells them apart.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, inspect, select, text

from shared import pseudonyms
from shared.contracts.base import Reply
from shared.storage.columns import UTCDateTime
from shared.storage.database import Database
from shared.storage.fastpath.declare import hot_once
from shared.storage.uow import UnitOfWork

TABLE = "audit_log"
CHAIN = "audit_chain"
GENESIS = "0" * 64
"""The previous hash of the first record."""

FOUND, EMPTY, NOT_FOUND, REFUSED, DISCLOSED, WITHHELD = "found", "empty", "not_found", "refused", "disclosed", "withheld"
GRANTED = frozenset({FOUND, EMPTY, DISCLOSED})
"""Results under which access was granted; every other result is a refusal."""

# Column sizes (PostgreSQL enforces them): text written is clipped to fit rather than failing the
# read or disclosure it records.
ACTOR, ACTION, PURPOSE, RESULT, SCOPE = 100, 60, 200, 20, 120


def audit_table(metadata: MetaData) -> Table:
    """Add the append-only, hash-chained ``audit_log`` table (and its chain head) to a service's metadata."""
    table = Table(
        TABLE,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("at", UTCDateTime, nullable=False),  # when
        Column("actor", String(ACTOR), nullable=False),  # who: staff id, or the recipient of a disclosure
        Column("case_id", String(36), nullable=True, index=True),  # whose data (the family's case)
        Column("action", String(ACTION), nullable=False),  # what
        Column("purpose", String(PURPOSE), nullable=False),  # why
        Column("result", String(RESULT), nullable=False),  # result
        Column("scope", String(SCOPE), nullable=True),  # what was asked for, e.g. 'team:<id>' (no personal data)
        Column("prev_hash", String(64), nullable=True),  # the hash of the record before (GENESIS for the first)
        Column("hash", String(64), nullable=True),  # chain_hash(prev_hash, this record's content)
        info={"erasure": "keep"},  # ids only, append-only: kept through a family's erasure (shared/erasure.py)
    )
    Table(
        CHAIN,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=False),  # always 1: one row
        Column("last_hash", String(64), nullable=False),
        Column("records", Integer, nullable=False),
    )
    metadata.info.setdefault("upgrades", []).append(_upgrade)
    return table


_CONTENT = ("at", "actor", "case_id", "action", "purpose", "result", "scope")


def _content(row: Any) -> bytes:
    """A record's canonical content: its fields in a fixed order, the time as UTC microseconds."""
    values = [row[k] for k in _CONTENT] if isinstance(row, dict) else [getattr(row, k) for k in _CONTENT]
    at: datetime = values[0]
    values[0] = at.astimezone(UTC).isoformat(timespec="microseconds")
    return to_json(values)


def _chain_key() -> bytes:
    return pseudonyms.digest(b"audit-chain").encode()


def chain_hash(prev_hash: str, row: Any, key: bytes | None = None) -> str:
    """HMAC-SHA256 over the previous record's hash and this record's canonical content."""
    return hmac.new(key or _chain_key(), prev_hash.encode() + b"\n" + _content(row), hashlib.sha256).hexdigest()


def _upgrade(conn: Connection) -> None:
    """Idempotent, at every start: hash columns on a log created before the chain (its records are
    chained in id order), the chain head, and the triggers (a dropped one is put back)."""
    dialect = conn.dialect.name
    columns = {c["name"] for c in inspect(conn).get_columns(TABLE)}
    for name in ("prev_hash", "hash"):
        if name not in columns:
            conn.execute(text(f"ALTER TABLE {TABLE} ADD COLUMN {name} VARCHAR(64)"))
    if conn.execute(text(f"SELECT count(*) FROM {CHAIN}")).scalar_one() == 0:
        _drop_triggers(conn, dialect)  # chaining the records written before the chain updates them
        prev, n, key = GENESIS, 0, _chain_key()
        for row in conn.execute(text(f"SELECT * FROM {TABLE} ORDER BY id")).mappings().all():
            values = dict(row)
            at = values["at"]
            if isinstance(at, str):
                at = datetime.fromisoformat(at)
            values["at"] = at if at.tzinfo else at.replace(tzinfo=UTC)
            h = chain_hash(prev, values, key)
            conn.execute(
                text(f"UPDATE {TABLE} SET prev_hash = :p, hash = :h WHERE id = :id"), {"p": prev, "h": h, "id": row["id"]}
            )
            prev, n = h, n + 1
        conn.execute(text(f"INSERT INTO {CHAIN} (id, last_hash, records) VALUES (1, :h, :n)"), {"h": prev, "n": n})
    _create_triggers(conn, dialect)


def _drop_triggers(conn: Connection, dialect: str) -> None:
    if dialect == "sqlite":
        for t in (TABLE, CHAIN):
            for op in ("update", "delete"):
                conn.execute(text(f"DROP TRIGGER IF EXISTS {t}_no_{op}"))
    else:
        conn.execute(text(f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}"))


def _create_triggers(conn: Connection, dialect: str) -> None:
    """No code path updates or deletes an audit record, and the database refuses it from anywhere
    else too. The chain head may only be updated (by the writers); PostgreSQL refuses TRUNCATE."""
    if dialect == "sqlite":
        for t, ops in ((TABLE, ("UPDATE", "DELETE")), (CHAIN, ("DELETE",))):
            for op in ops:
                conn.execute(
                    text(
                        f"CREATE TRIGGER IF NOT EXISTS {t}_no_{op.lower()} BEFORE {op} ON {t} "
                        f"BEGIN SELECT RAISE(ABORT, '{TABLE} is append-only'); END"
                    )
                )
        return
    conn.execute(
        text(
            f"CREATE OR REPLACE FUNCTION {TABLE}_append_only() RETURNS trigger AS $$ "
            f"BEGIN RAISE EXCEPTION '{TABLE} is append-only'; END $$ LANGUAGE plpgsql"
        )
    )
    for t, events in ((TABLE, "UPDATE OR DELETE OR TRUNCATE"), (CHAIN, "DELETE OR TRUNCATE")):
        conn.execute(
            text(
                f"CREATE OR REPLACE TRIGGER {t}_append_only BEFORE {events} ON {t} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_append_only()"
            )
        )


@dataclass(frozen=True)
class ChainReport:
    """The result of :func:`verify_chain`: ``broken_at`` is the id of the first record that does not
    follow (None when the break is after the last record, or there is none)."""

    ok: bool
    records: int
    head: str
    broken_at: int | None = None
    reason: str | None = None


async def verify_chain(db: Database, batch: int = 5000) -> ChainReport:
    """Walk the audit log in id order and check every record against the one before and the chain
    head. Reasons: ``previous_record_missing_or_changed`` (a record before ``broken_at`` was
    deleted, or the chain re-linked), ``record_changed`` (this record's content or hash changed),
    ``records_missing_at_end``, ``chain_head_missing``."""
    log, chain = db.metadata.tables[TABLE], db.metadata.tables[CHAIN]
    key = _chain_key()
    prev, n, last_id = GENESIS, 0, 0
    async with db.read_sessionmaker() as s:
        head = (await s.execute(select(chain).where(chain.c.id == 1))).first()
        while True:
            rows = (await s.execute(select(log).where(log.c.id > last_id).order_by(log.c.id).limit(batch))).all()
            for r in rows:
                if r.prev_hash != prev:
                    return ChainReport(False, n, prev, r.id, "previous_record_missing_or_changed")
                if r.hash != chain_hash(prev, r, key):
                    return ChainReport(False, n, prev, r.id, "record_changed")
                prev, n, last_id = r.hash, n + 1, r.id
            if len(rows) < batch:
                break
    if head is None:
        return ChainReport(False, n, prev, None, "chain_head_missing")
    if head.last_hash != prev or head.records != n:
        return ChainReport(False, n, prev, None, "records_missing_at_end")
    return ChainReport(True, n, prev)


def _clip(value: str | None, size: int) -> str | None:
    return None if value is None else value[:size]


def _head_statement(chain: Table) -> Any:
    # Built once per table and declared, so it takes the driver fast path (shared/storage/fastpath/).
    return hot_once(
        ("audit.head", chain), lambda: select(chain.c.last_hash, chain.c.records).where(chain.c.id == 1).with_for_update()
    )


class AuditLog:
    """Writes and reads one service's audit records inside a unit of work (its transaction)."""

    def __init__(self, uow: UnitOfWork, service: str) -> None:
        self.uow = uow
        self.service = service
        self.table: Table = uow.db.metadata.tables[TABLE]
        self.chain: Table = uow.db.metadata.tables[CHAIN]
        self._collected: list[dict[str, Any]] | None = None

    async def record(self, *, actor: str, case_id: Any, action: str, purpose: str, result: str, scope: str | None = None) -> None:
        """Append one record (when = the unit of work's clock)."""
        row = {
            "at": self.uow.now(),
            "actor": _clip(actor, ACTOR),
            "case_id": None if case_id is None else str(case_id),
            "action": _clip(action, ACTION),
            "purpose": _clip(purpose, PURPOSE),
            "result": _clip(result, RESULT),
            "scope": _clip(scope, SCOPE),
        }
        if self._collected is not None:
            self._collected.append(row)
        else:
            await self._append([row])

    async def _append(self, rows: list[dict[str, Any]]) -> None:
        """Chain and insert records: the head is read with a row lock (PostgreSQL; SQLite's write
        transaction holds the database lock) and moved on in this transaction."""
        head = (await self.uow.execute(_head_statement(self.chain))).first()
        prev, n, key = head.last_hash, head.records, _chain_key()
        for row in rows:
            row["prev_hash"] = prev
            row["hash"] = prev = chain_hash(prev, row, key)
        # Held writes (shared/storage/deferred.py): sent with the transaction's other writes and its
        # outbox rows (one statement on PostgreSQL); the next head read sends the chain's first.
        self.uow.insert_later(self.table, rows)
        self.uow.update_later(self.chain, {"id": 1}, {"last_hash": prev, "records": n + len(rows)})

    @asynccontextmanager
    async def together(self) -> AsyncIterator[None]:
        """Records made within this block are appended in one statement at its end, in the same
        transaction and order (a batch that records many: one write instead of one each)."""
        if self._collected is not None:  # already within a block: its end appends these too
            yield
            return
        self._collected = []
        try:
            yield
            if self._collected:
                await self._append(self._collected)
        finally:
            self._collected = None

    async def read(self, q: Any, action: str, case_id: Any, result: str, scope: str | None = None) -> None:
        """A query's record: the reader is the verified caller (never a name in the payload), the
        purpose comes from the query."""
        await self.record(actor=self.uow.actor, case_id=case_id, action=action, purpose=q.purpose, result=result, scope=scope)

    async def read_cases(self, q: Any, action: str, case_ids: Iterable[Any], scope: str, empty_case: Any = None) -> None:
        """A list query: one ``found`` record per case it showed, or one ``empty`` record."""
        seen = list(dict.fromkeys(str(c) for c in case_ids))
        async with self.together():  # one chained write for the whole list
            for case_id in seen:
                await self.read(q, action, case_id, FOUND, scope)
            if not seen:
                await self.read(q, action, empty_case, EMPTY, scope)

    async def entries(self, case_ids: list[str]) -> list[dict[str, Any]]:
        """Every record about these cases, oldest first (the "who has seen my data" answer)."""
        if not case_ids:
            return []
        t = self.table
        rows = await self.uow.execute(select(t).where(t.c.case_id.in_(case_ids)).order_by(t.c.id))
        return [
            {
                "at": r.at.isoformat(),
                "service": self.service,
                "actor": r.actor,
                "case_id": r.case_id,
                "action": r.action,
                "purpose": r.purpose,
                "result": r.result,
                "granted": r.result in GRANTED,
                "scope": r.scope,
            }
            for r in rows
        ]


async def answer_access_log(q: Any, log: AuditLog) -> Reply:
    """``query.<service>.access_log.v1`` (:class:`shared.contracts.audit.CaseAccessLogQuery`): this
    service's records of the cases asked for. Reading the log is itself a disclosure, so it is
    recorded after the read (it shows in the next answer). A case this service never saw answers empty."""
    case_ids = list(dict.fromkeys(str(c) for c in q.case_ids))
    entries = await log.entries(case_ids)
    seen = {e["case_id"] for e in entries}
    for case_id in case_ids:
        await log.read(q, "read_access_log", case_id, FOUND if case_id in seen else EMPTY, f"case:{case_id}")
    return Reply(ok=True, data={"cases": case_ids, "entries": entries})
