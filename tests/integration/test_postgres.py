"""The same services on PostgreSQL, by configuration only (skipped where no server is reachable)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import pytest

from shared.client import call, submit_referral
from shared.contracts import INTAKE_SUBJECT
from tests.conftest import POSTGRES_URL, postgres_reachable, wait_for
from tests.support.data import submission
from tests.support.staff import TEAM, relation_known
from tests.support.system import EventLog, fed, running

pytestmark = [
    pytest.mark.integration,
    pytest.mark.postgres,
    pytest.mark.skipif(not postgres_reachable(), reason="no PostgreSQL at 127.0.0.1:5432"),
]


@pytest.fixture
async def pg_databases():  # type: ignore[no-untyped-def]
    """A fresh database per service for this test, dropped afterwards."""
    raw = POSTGRES_URL.replace("+asyncpg", "")
    admin = await asyncpg.connect(raw)
    names = {s: f"koolle_t_{uuid4().hex[:10]}_{s}" for s in ("referral", "meetings")}
    for n in names.values():
        await admin.execute(f'CREATE DATABASE "{n}"')
    base = POSTGRES_URL.rsplit("/", 1)[0]
    yield {s: f"{base}/{n}" for s, n in names.items()}
    for n in names.values():
        await admin.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')
    await admin.close()


async def test_referral_and_convening_on_postgres(staff_settings, nc, clean_streams, pg_databases, identity):  # type: ignore[no-untyped-def]
    sw = identity.social_worker("staff-1", TEAM)  # a social worker of the team the referral is routed to
    pg_settings = staff_settings.model_copy(
        update={"referral_database_url": pg_databases["referral"], "meetings_database_url": pg_databases["meetings"]}
    )
    log = await EventLog().attach(nc)
    async with running(pg_settings, "referral", "meetings") as svcs:
        assert svcs["referral"].db.engine.dialect.name == "postgresql"
        body = submission()
        await submit_referral(nc, body)
        # the same submission again, after the dedup window would have passed (new Nats-Msg-Id)
        await submit_referral(nc, body, msg_id=body["submission_id"] + ":again")
        received = await wait_for(lambda: log.of("referral.received"))
        case_id = received[0]["case_id"]
        starts = datetime.now(UTC) + timedelta(days=2)
        cmd = {
            "command_id": str(uuid4()),
            "case_id": case_id,
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=1)).isoformat(),
            "room": "Room 2",
            "participants": [
                {"participant_id": "guardian-1", "kind": "family", "role": "guardian"},
                {"participant_id": "staff-1", "kind": "professional", "role": "social_worker"},
            ],
        }

        async def convene():  # type: ignore[no-untyped-def]
            r = await call(nc, "cmd.meetings.convene.v2", cmd, token=sw)
            return None if (not r.ok and r.errors[0].code == "unknown_case") else r

        await relation_known([svcs["meetings"]], case_id)  # the case's team, from referral.assigned

        reply = await wait_for(convene)
        assert reply.ok, reply.errors
        clash = dict(cmd, command_id=str(uuid4()))
        refused = await call(nc, "cmd.meetings.convene.v2", clash, token=sw)
        assert [e.code for e in refused.errors] == ["double_booked"]

        case = await call(nc, "query.referral.case.v2", {"case_id": case_id, "purpose": "case_work"}, token=sw)
        assert case.ok and len(case.data["referrals"]) == 1
        assert datetime.fromisoformat(case.data["referrals"][0]["received_at"]).tzinfo is not None
        intake = fed(svcs["referral"], subject=INTAKE_SUBJECT)
        await wait_for(lambda: intake.handled == 2)
        assert len(log.of("referral.received")) == 1
        read = await call(nc, "query.meetings.case.v2", {"case_id": case_id, "purpose": "meeting_preparation"}, token=sw)
        assert read.ok
    # The shared audit table is append-only on PostgreSQL too (meetings' own database).
    conn = await asyncpg.connect(pg_databases["meetings"].replace("+asyncpg", ""))
    try:
        rows = await conn.fetch("select actor, case_id, action, result from audit_log")
        assert [tuple(r) for r in rows] == [("staff-1", case_id, "read_meetings", "found")]
        for stmt in ("update audit_log set actor = 'someone-else'", "delete from audit_log"):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(stmt)
    finally:
        await conn.close()


async def test_a_pooled_connection_that_died_while_idle_is_replaced_unseen(monkeypatch):  # type: ignore[no-untyped-def]
    """A connection that sat in the pool is checked before use (a restart or failover leaves dead
    ones there) and replaced without the caller seeing an error; one in steady use is not pinged."""
    from sqlalchemy import text

    import shared.storage.engine as engines

    engine = engines.make_engine(POSTGRES_URL)
    admin = await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""))
    try:
        async with engine.connect() as conn:
            first_pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar()
        from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

        pings: list[int] = []  # counted at the driver

        real_ping = AsyncAdapt_asyncpg_connection.ping
        monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", lambda self: (pings.append(1), real_ping(self))[1])

        async with engine.connect() as conn:  # just checked in: in steady use, no ping
            assert (await conn.execute(text("SELECT pg_backend_pid()"))).scalar() == first_pid
        assert pings == []

        await admin.execute("SELECT pg_terminate_backend($1)", first_pid)
        monkeypatch.setattr(engines, "PING_AFTER_IDLE_SECONDS", 0.0)  # as if it had been idle a while
        async with engine.connect() as conn:
            pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar()
        assert pings and pid != first_pid  # pinged, found dead, replaced: no error reached us
    finally:
        await admin.close()
        await engine.dispose()
