"""Access audit (Client Data Act 703/2023 s. 11): every read or disclosure of a family's data leaves
one append-only record in the service's own database: who, whose data (the case id), what, why,
when (UTC) and the result. Personal data never goes in: ``actor`` is a staff or recipient id,
``case_id`` a case reference, ``scope`` what was asked for in ids (``case:<id>``, ``team:<id>``).

Every service keeps its own ``audit_log`` table (:func:`audit_table`); :class:`AuditLog` writes to
it in the caller's unit of work, so a read and its record commit together. Refused reads are
recorded too: record, commit, then raise.

Results: ``found`` / ``empty`` (read granted; empty = nothing of a family matched), ``not_found``
/ ``refused`` (read refused; nothing disclosed), ``disclosed`` / ``withheld`` (content given to a
recipient, or not given for lack of consent or role). :data:`GRANTED` tells them apart.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import DDL, Column, Integer, MetaData, String, Table, event, select

from shared.contracts.base import Reply
from shared.db import UnitOfWork, UTCDateTime

TABLE = "audit_log"

FOUND, EMPTY, NOT_FOUND, REFUSED, DISCLOSED, WITHHELD = "found", "empty", "not_found", "refused", "disclosed", "withheld"
GRANTED = frozenset({FOUND, EMPTY, DISCLOSED})
"""Results under which access was granted; every other result is a refusal."""

# Column sizes (PostgreSQL enforces them): text written is clipped to fit rather than failing the
# read or disclosure it records.
ACTOR, ACTION, PURPOSE, RESULT, SCOPE = 100, 60, 200, 20, 120


def audit_table(metadata: MetaData) -> Table:
    """Add the append-only ``audit_log`` table to a service's metadata."""
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
    )
    _append_only(table)
    return table


def _append_only(table: Table) -> None:
    """No code path updates or deletes the audit log, and the database refuses it from anywhere
    else too (triggers on SQLite and PostgreSQL)."""
    name = table.name
    for op in ("UPDATE", "DELETE"):
        event.listen(
            table,
            "after_create",
            DDL(
                f"CREATE TRIGGER {name}_no_{op.lower()} BEFORE {op} ON {name} "
                f"BEGIN SELECT RAISE(ABORT, '{name} is append-only'); END"
            ).execute_if(dialect="sqlite"),  # type: ignore[no-untyped-call]
        )
    for ddl in (
        f"CREATE OR REPLACE FUNCTION {name}_append_only() RETURNS trigger AS $$ "
        f"BEGIN RAISE EXCEPTION '{name} is append-only'; END $$ LANGUAGE plpgsql",
        f"CREATE TRIGGER {name}_append_only BEFORE UPDATE OR DELETE ON {name} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {name}_append_only()",
    ):
        event.listen(table, "after_create", DDL(ddl).execute_if(dialect="postgresql"))  # type: ignore[no-untyped-call]


def _clip(value: str | None, size: int) -> str | None:
    return None if value is None else value[:size]


class AuditLog:
    """Writes and reads one service's audit records inside a unit of work (its transaction)."""

    def __init__(self, uow: UnitOfWork, service: str) -> None:
        self.uow = uow
        self.service = service
        self.table: Table = uow.db.metadata.tables[TABLE]
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
            await self.uow.insert(self.table, row)

    @asynccontextmanager
    async def together(self) -> AsyncIterator[None]:
        """Records made within this block are appended in one statement at its end, in the same
        transaction and order (a batch that records many: one write instead of one each)."""
        self._collected = []
        try:
            yield
            if self._collected:
                await self.uow.insert(self.table, self._collected)
        finally:
            self._collected = None

    async def read(self, q: Any, action: str, case_id: Any, result: str, scope: str | None = None) -> None:
        """A staff query's record: the reader and the purpose come from the query."""
        await self.record(actor=q.requested_by, case_id=case_id, action=action, purpose=q.purpose, result=result, scope=scope)

    async def read_cases(self, q: Any, action: str, case_ids: Iterable[Any], scope: str, empty_case: Any = None) -> None:
        """A list query: one ``found`` record per case it showed, or one ``empty`` record."""
        seen = list(dict.fromkeys(str(c) for c in case_ids))
        for case_id in seen:
            await self.read(q, action, case_id, FOUND, scope)
        if not seen:
            await self.read(q, action, empty_case, EMPTY, scope)

    async def entries(self, case_ids: list[str]) -> list[dict[str, Any]]:
        """Every record about these cases, oldest first (the "who has seen my data" answer)."""
        if not case_ids:
            return []
        t = self.table
        rows = await self.uow.session.execute(select(t).where(t.c.case_id.in_(case_ids)).order_by(t.c.id))
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
    await log.uow.commit()
    return Reply(ok=True, data={"cases": case_ids, "entries": entries})
