"""The services' queries use indexes on PostgreSQL. The referral service's hot queries with tens of
thousands of cases and audit rows loaded (bench/growth.py's loader): every statement that intake
and the staff queries run is captured and EXPLAINed, and none reads a growing table by sequential
scan. Every statement of all four services in a whole flow: an index serves each."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool

from bench.growth import OPEN_CASES, TEAMS, Referral, bulk_load, case_id_sql
from shared.client import call, submit_referral
from shared.clock import FixedClock, local
from tests.conftest import POSTGRES_URL, postgres_reachable, wait_for
from tests.integration.test_flow import _convene_until_open, convene_cmd, held_cmd, plan_cmd
from tests.support.data import submission
from tests.support.staff import TEAM, relation_known
from tests.support.system import EventLog, running

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.skipif(not postgres_reachable(), reason="no PostgreSQL at 127.0.0.1:5432"),
]

SERVICES = ("referral", "meetings", "plans", "notifications")

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


# Tables a statement may read whole, and why: configuration, or counters bounded by municipalities
# and months.
READ_WHOLE = {
    "professionals": "the meetings roster: configuration, read whole at start",
    "referral_channel_counts": "counters per municipality, month and channel",
    "statutory_counts": "counters per municipality and month",
}
# Statements that read a table whole by design, once: the re-key of the child index at a start with
# a new key (services/referral/adapters.py) and a rebuild's replacement of a read model.
ONCE = ("DELETE FROM referral_children", "DELETE FROM statistics_facts", "DELETE FROM statutory_counts")


async def test_every_statement_of_the_four_services_in_a_whole_flow_can_use_an_index(  # type: ignore[no-untyped-def]
    staff_settings, nc, clean_streams, worker_token, identity
):
    """The whole flow on PostgreSQL (intake, convening, the meeting held, the plan, its follow-up,
    notifications) and 21 staff, statistics and operator queries, each statement captured in all
    four services and EXPLAINed with sequential scans priced out (``enable_seqscan = off``): a
    sequential scan left in a plan means no index serves it, however large the table grows."""
    raw = POSTGRES_URL.replace("+asyncpg", "")
    admin = await asyncpg.connect(raw)
    names = {s: f"koolle_t_{uuid4().hex[:10]}_{s}" for s in SERVICES}
    for n in names.values():
        await admin.execute(f'CREATE DATABASE "{n}"')
    base = POSTGRES_URL.rsplit("/", 1)[0]
    settings = staff_settings.model_copy(update={f"{s}_database_url": f"{base}/{n}" for s, n in names.items()})
    seen: dict[tuple[str, str], tuple[Any, ...]] = {}

    def _sqlalchemy(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if not executemany:
            seen.setdefault((conn.engine.url.database, statement), tuple(parameters or ()))

    def _driver(dbapi_conn: Any, record: Any) -> None:  # the driver fast path's statements
        driver = getattr(dbapi_conn, "driver_connection", None)
        if isinstance(driver, asyncpg.Connection):
            db = driver._params.database
            driver.add_query_logger(lambda q: seen.setdefault((db, q.query), tuple(q.args or ())))

    event.listen(Engine, "before_cursor_execute", _sqlalchemy)
    event.listen(Pool, "connect", _driver)
    try:
        await _whole_flow(settings, nc, worker_token, identity)
        checked, bad = 0, []
        conns: dict[str, asyncpg.Connection] = {}
        for (db, sql), args in seen.items():
            if sql.lstrip().split(None, 1)[0].upper() not in ("SELECT", "UPDATE", "DELETE", "WITH"):
                continue
            if sql.startswith(ONCE) or "pg_catalog." in sql:  # (the schema's reflection at start)
                continue
            if db not in conns:
                conns[db] = await asyncpg.connect(f"{base.replace('+asyncpg', '')}/{db}")
                await conns[db].execute("SET enable_seqscan = off")
            try:
                found = await conns[db].fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
            except asyncpg.exceptions.InterfaceError:  # a multi-row statement's arguments as logged
                continue
            checked += 1
            scans = [t for t in all_seq_scans(json.loads(found)[0]["Plan"]) if t not in READ_WHOLE]
            if scans:
                bad.append(f"{db.rsplit('_', 1)[1]}: {', '.join(scans)}: {' '.join(sql.split())[:200]}")
        for c in conns.values():
            await c.close()
        assert checked >= 100, f"only {checked} statements captured"
        assert {db.rsplit("_", 1)[1] for db, _ in seen} == set(SERVICES)
        # The relays' purge of published rows (its read and its delete) was checked too.
        assert {db.rsplit("_", 1)[1] for db, sql in seen if sql.startswith("DELETE FROM outbox")} == set(SERVICES)
        assert not bad, "no index serves:\n" + "\n".join(bad)
    finally:
        event.remove(Engine, "before_cursor_execute", _sqlalchemy)
        event.remove(Pool, "connect", _driver)
        for n in names.values():
            await admin.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')
        await admin.close()


def all_seq_scans(plan: dict[str, Any]) -> list[str]:
    found = [plan["Relation Name"]] if plan.get("Node Type") == "Seq Scan" else []
    for child in plan.get("Plans", []):
        found += all_seq_scans(child)
    return found


async def _whole_flow(settings: Any, nc: Any, worker: str, identity: Any) -> None:
    log = await EventLog().attach(nc)
    clock = FixedClock(datetime.now(UTC))
    async with running(settings, clock=clock) as svcs:
        await submit_referral(nc, submission())
        received = await wait_for(lambda: log.of("referral.received"))
        case_id = received[0]["case_id"]
        await relation_known([svcs["meetings"], svcs["plans"]], case_id)
        reply = await wait_for(_convene_until_open(nc, convene_cmd(case_id, clock.now() + timedelta(hours=1)), worker))
        assert reply.ok, reply.errors
        meeting_id = reply.id
        clock.advance(hours=1, minutes=5)
        assert (await call(nc, "cmd.meetings.record_held.v2", held_cmd(case_id, meeting_id), token=worker)).ok
        clock.at = datetime.now(UTC)
        reply = await call(
            nc, "cmd.plans.agree.v2", plan_cmd(case_id, meeting_id, datetime.now(UTC) + timedelta(seconds=2)), token=worker
        )
        assert reply.ok, reply.errors
        plan_id = reply.id
        await wait_for(lambda: sum(e["template"] == "followup_due" for e in log.of("notification.sent")) >= 2, timeout=15)
        stats, ops, lead = identity.statistician(), identity.ops(), identity.team_lead("lead-1", TEAM)
        month = local(datetime.now(UTC)).strftime("%Y-%m")
        this_month = {"from_month": month, "to_month": month}  # the meetings statistics of some months
        for subject, body, token in [
            ("query.referral.case.v2", {"case_id": case_id, "purpose": "case_work"}, worker),
            ("query.referral.team_cases.v2", {"team_id": TEAM, "purpose": "case_work"}, worker),
            ("query.referral.deadlines_due.v2", {"working_days": 10, "team_id": TEAM, "purpose": "deadline_follow_up"}, worker),
            ("query.referral.access_log.v2", {"case_id": case_id, "purpose": "access_request"}, lead),
            ("query.referral.statistics.v1", {}, stats),
            ("query.referral.channel_statistics.v1", {}, stats),
            ("query.meetings.case.v2", {"case_id": case_id, "purpose": "case_work"}, worker),
            ("query.meetings.access_log.v2", {"case_ids": [case_id], "purpose": "access_request"}, lead),
            ("query.meetings.statistics.v2", {}, stats),
            ("query.meetings.statistics.v2", this_month, stats),
            ("query.meetings.joint_work_statistics.v1", {}, stats),
            ("query.meetings.joint_work_statistics.v1", this_month, stats),
            ("query.meetings.roster.v2", {"municipality": "Porvoo"}, worker),
            ("query.plans.case.v2", {"case_id": case_id, "purpose": "plan_follow_up"}, worker),
            ("query.plans.plan.v2", {"case_id": case_id, "plan_id": plan_id, "purpose": "plan_follow_up"}, worker),
            ("query.plans.overdue.v2", {"purpose": "plan_follow_up"}, worker),
            ("query.plans.access_log.v2", {"case_ids": [case_id], "purpose": "access_request"}, lead),
            ("query.notifications.case.v2", {"case_id": case_id, "purpose": "case_work"}, worker),
            ("query.notifications.failed.v2", {"case_id": case_id, "purpose": "delivery_follow_up"}, worker),
            ("query.notifications.access_log.v2", {"case_ids": [case_id], "purpose": "access_request"}, lead),
            ("ops.referral.rejected.v1", {"purpose": "operations_review"}, ops),
        ]:
            answer = await call(nc, subject, body, token=token)
            assert answer.ok, (subject, answer.errors)
        # Each relay's purge of published rows past their retention (hourly; here with every row
        # published so far past it, so that its delete runs too).
        for svc in svcs.values():
            assert svc.relay is not None
            await svc.relay._mark_pending()
            await svc.relay.purge_published(clock.now() + timedelta(days=30))
