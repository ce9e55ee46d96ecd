"""Database unavailable for a while: the PostgreSQL server itself stops during a steady stream of
referrals and starts again a few seconds later.

The server is a private one that this test creates (tests/support/private_postgres.py), never the
shared one on 5432. Referral, meetings and notifications each have their own database in it. It is
stopped with ``pg_ctl -m immediate`` (every server process quits at once, as in a crash; the start
replays the WAL, fsync is on), so in-flight transactions and connections are cut, and for the
outage every connection attempt is refused.

While it is down consumers nak (retry with delay) and never ack without their commit, the outbox
relay retries, readiness reports the database as down. After the start the services recover on
their own (dead pooled connections are replaced, ``_ping_when_idle`` in shared/storage/engine.py): nothing lost, nothing
doubled, nothing dead-lettered, no process restarted.

Run:  .venv/bin/python -m pytest tests/faults/test_postgres_outage.py -s
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import nats
import pytest

from infra.run import wait_ready
from shared.settings import Settings
from tests.conftest import wait_for
from tests.faults.test_faults import (
    CONVENINGS_SQL,
    FLOW,
    NOTIFICATIONS_SENT_SQL,
    all_done,
    assert_nothing_lost_or_doubled,
    check_outcome,
    steady_referrals,
)
from tests.support.private_postgres import private_postgres  # noqa: F401 - the fixture
from tests.support.processes import Processes, report
from tests.support.system import EventLog

pytestmark = [pytest.mark.faults, pytest.mark.e2e, pytest.mark.postgres]

DOWN_SECONDS = 3.0
REFERRALS = 40


async def _query(url: str, sql: str) -> Any:
    con = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        return await con.fetchrow(sql)
    finally:
        await con.close()


async def pg_effects(urls: dict[str, str]) -> tuple[tuple[int, int], int]:
    """The same counts as tests.faults.test_faults.sqlite_effects, from the private server."""
    sent = await _query(urls["notifications"], NOTIFICATIONS_SENT_SQL)
    conv = await _query(urls["meetings"], CONVENINGS_SQL)
    return (sent[0], sent[1]), conv[0]


async def watch_readiness(nc: nats.NATS, seen: dict[str, set[bool]], stop: asyncio.Event) -> None:
    """Record every readiness answer of each service (the database flag included)."""
    while not stop.is_set():
        for name in FLOW:
            try:
                reply = json.loads((await nc.request(f"ops.health.{name}", b"{}", timeout=1.0)).data)
                seen[name].add(bool(reply["ready"] and reply["db"]))
            except Exception:  # noqa: BLE001 - no answer is not an answer about the database
                pass
        await asyncio.sleep(0.2)


async def test_postgres_stopped_for_a_while(private_postgres, nats_server, clean_streams, nc, frontdoor, tmp_path):  # type: ignore[no-untyped-def]  # noqa: F811
    pg = private_postgres
    urls = pg.fresh_databases(*FLOW)
    log = await EventLog().attach(nc)
    system = Processes(
        Settings(nats_url=nats_server.url, data_dir=tmp_path),
        identities=True,
        **{f"KOOLLE_{s.upper()}_DATABASE_URL": url for s, url in urls.items()},
        KOOLLE_MAX_DELIVER="30",  # the retry budget outlasts the outage
        KOOLLE_FETCH_BATCH="16",
        # A dispatch step that fails on the database backs the notification off like a channel
        # failure (30 s base in production); short here so recovery is measured in seconds.
        KOOLLE_NOTIFICATIONS_BACKOFF_BASE_SECONDS="1",
    )
    loop = asyncio.get_running_loop()
    try:
        system.start(*FLOW)
        await wait_ready(nc, FLOW)
        # Referrals before, during and after the outage.
        feeder = asyncio.create_task(steady_referrals(frontdoor, REFERRALS, rate=10))
        await asyncio.sleep(1.0)
        readiness: dict[str, set[bool]] = {n: set() for n in FLOW}
        stop_watch = asyncio.Event()
        await asyncio.to_thread(pg.stop, "immediate")
        watcher = asyncio.create_task(watch_readiness(nc, readiness, stop_watch))
        await asyncio.sleep(DOWN_SECONDS)
        stop_watch.set()
        await watcher
        await asyncio.to_thread(pg.start)
        t_restart = loop.time()

        async def outcome() -> dict:
            return check_outcome(log, bodies, tmp_path, await pg_effects(urls))

        bodies = await feeder
        # Usually seconds. The bound is generous because two waits are legitimate: the relay's retry
        # backoff (capped at 10 s) and, if a notification's dispatch step failed just before the
        # server came back and its "try later" was saved just after, that notification's 60 s.
        await wait_for(lambda: _all_notified(outcome, len(bodies)), timeout=90, interval=0.2)
        recovered = loop.time() - t_restart
        await wait_ready(nc, FLOW, timeout=10)  # readiness is back without a restart
        await asyncio.sleep(1.0)  # let any late duplicate show itself
        out = await outcome()
        referral_rows = await _query(urls["referral"], "select count(*), count(distinct submission_id) from referrals")
        dead = len(log.of("deadletter."))
        naks, relay_retries, other = failures_in_logs(tmp_path)
        report(
            "postgres-stopped",
            stopped="referral+meetings+notifications",  # their databases, on the one server
            stop_mode="immediate",
            down_seconds=DOWN_SECONDS,
            **out,
            referral_rows=referral_rows[0],
            dead_letters=dead,
            failed_attempts_while_down=naks + relay_retries + other,
            consumer_naks=naks,
            relay_retries=relay_retries,
            seconds_restart_to_all_notified=round(recovered, 1),
        )
        assert_nothing_lost_or_doubled(out, len(bodies))
        assert referral_rows[0] == referral_rows[1] == len(bodies), "each referral stored once in its database"
        assert dead == 0
        assert naks > 0, "the outage was felt: handlers failed and their messages were nakked for a retry"
        assert all(False in seen for seen in readiness.values()), f"readiness reported the database down: {readiness}"
        assert all(system.alive(n) for n in FLOW), "no service died; none was restarted"
    finally:
        system.stop()


async def _all_notified(outcome, n: int) -> bool:  # type: ignore[no-untyped-def]
    return all_done(await outcome())


def failures_in_logs(data_dir) -> tuple[int, int, int]:  # type: ignore[no-untyped-def]
    """Failed attempts the services logged: consumer naks, relay retries, anything else."""
    naks = relay = other = 0
    for path in (data_dir / "logs").glob("*.log"):
        for line in path.read_text(errors="replace").splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("level") not in ("WARNING", "ERROR"):
                continue
            msg = str(rec.get("msg", ""))
            if "handler failed" in msg:
                naks += 1
            elif msg.startswith("outbox"):
                relay += 1
            else:
                other += 1
    return naks, relay, other
