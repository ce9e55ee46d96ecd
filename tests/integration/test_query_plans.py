"""The referral service's hot queries use indexes on PostgreSQL: with tens of thousands of cases
and audit rows loaded (bench/growth.py's loader), every statement that intake and the staff
queries run is captured and EXPLAINed, and none reads a growing table by sequential scan."""

from __future__ import annotations

import json
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from sqlalchemy import event

from bench.growth import OPEN_CASES, TEAMS, Referral, bulk_load, case_id_sql
from tests.conftest import POSTGRES_URL, postgres_reachable

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.skipif(not postgres_reachable(), reason="no PostgreSQL at 127.0.0.1:5432"),
]

GROWING = {
    "cases",
    "referrals",
    "referral_children",
    "consents",
    "audit_log",
    "outbox",
    "inbox",
    "command_log",
    "rejected_submissions",
}


def seq_scans(plan: dict[str, Any]) -> list[str]:
    found = [plan["Relation Name"]] if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") in GROWING else []
    for child in plan.get("Plans", []):
        found += seq_scans(child)
    return found


async def test_intake_and_staff_queries_use_no_sequential_scan_on_a_growing_table() -> None:
    admin_url = POSTGRES_URL.replace("+asyncpg", "")
    admin = await asyncpg.connect(admin_url)
    name = f"koolle_t_{uuid4().hex[:10]}_plans"
    await admin.execute(f'CREATE DATABASE "{name}"')
    raw_url = admin_url.rsplit("/", 1)[0] + "/" + name
    ref = Referral(raw_url.replace("postgresql://", "postgresql+asyncpg://", 1))
    seen: list[tuple[str, tuple[Any, ...]]] = []

    @event.listens_for(ref.db.engine.sync_engine, "before_cursor_execute")
    def _sqlalchemy(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if not executemany:
            seen.append((statement, tuple(parameters or ())))

    @event.listens_for(ref.db.engine.sync_engine, "connect")
    def _driver(dbapi_conn: Any, record: Any) -> None:  # the driver fast path's statements
        dbapi_conn.driver_connection.add_query_logger(lambda q: seen.append((q.query, tuple(q.args or ()))))

    try:
        await ref.db.create_all()
        await ref.intake()
        await bulk_load(raw_url, 20_000 + OPEN_CASES, 50_000, progress=lambda _: None)
        seen.clear()
        conn = await asyncpg.connect(raw_url)
        case_id = str(await conn.fetchval(f"SELECT {case_id_sql('$1::int')}", 12_345))
        await ref.intake()
        await ref.case(case_id)
        await ref.team_cases(f"bench-team-{3 % TEAMS}")
        await ref.deadlines_due(f"bench-team-{3 % TEAMS}")
        await ref.access_log(case_id)
        checked, bad = 0, []
        for sql, args in seen:
            head = sql.lstrip().split(None, 1)[0].upper()
            if head not in ("SELECT", "UPDATE", "DELETE", "WITH"):
                continue
            plan = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args))[0]["Plan"]
            checked += 1
            if scans := seq_scans(plan):
                bad.append(f"{', '.join(scans)}: {sql[:160]}")
        await conn.close()
        assert checked >= 8, f"only {checked} statements captured"
        assert not bad, "sequential scans:\n" + "\n".join(bad)
    finally:
        await ref.db.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
