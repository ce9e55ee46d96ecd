"""Database unavailable for a while: another connection holds SQLite's write lock (BEGIN EXCLUSIVE)
on a service's database for a few seconds while referrals keep coming.

A short busy timeout (KOOLLE_SQLITE_BUSY_TIMEOUT_MS) makes the service's commits fail during the
outage: the consumer naks (never acks without its commit) and the relay retries; when the lock goes
the system recovers on its own. Nothing lost, nothing doubled, nothing dead-lettered.

Run:  .venv/bin/python -m pytest tests/faults/test_database_outage.py -s
"""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest

from infra.run import wait_ready
from shared.settings import Settings
from tests.conftest import wait_for
from tests.faults.test_faults import FLOW, all_done, assert_nothing_lost_or_doubled, check_outcome, steady_referrals
from tests.support.processes import Processes, report
from tests.support.system import EventLog

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

LOCK_SECONDS = 3.0


def hold_exclusive_lock(path, seconds: float) -> None:  # type: ignore[no-untyped-def]
    """Take the write lock as another program would, hold it, release it."""
    con = sqlite3.connect(path, timeout=10, isolation_level=None)
    try:
        con.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
        con.execute("ROLLBACK")
    finally:
        con.close()


LOCKED = ("referral", "notifications")  # intake and the effects at the end of the flow


async def test_sqlite_locked_for_a_while(nats_server, clean_streams, nc, frontdoor, tmp_path):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc)
    system = Processes(
        Settings(nats_url=nats_server.url, data_dir=tmp_path),
        identities=True,
        KOOLLE_SQLITE_BUSY_TIMEOUT_MS="200",
        KOOLLE_MAX_DELIVER="30",  # the retry budget outlasts the outage
        KOOLLE_FETCH_BATCH="16",
        # A dispatch step that fails (here: the database) backs the notification off like a channel
        # failure (30 s base in production); short in the test so recovery is measured in seconds.
        KOOLLE_NOTIFICATIONS_BACKOFF_BASE_SECONDS="1",
    )
    try:
        system.start(*FLOW)
        await wait_ready(nc, FLOW)
        feeder = asyncio.create_task(steady_referrals(frontdoor, 40, rate=25))
        await asyncio.sleep(0.5)
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(asyncio.to_thread(hold_exclusive_lock, tmp_path / f"{db}.db", LOCK_SECONDS) for db in LOCKED))
        t_released = loop.time()
        bodies = await feeder
        await wait_for(lambda: all_done(check_outcome(log, bodies, tmp_path)), timeout=60)
        recovered = loop.time() - t_released
        await asyncio.sleep(1.0)
        out = check_outcome(log, bodies, tmp_path)
        dead = len(log.of("deadletter."))
        logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "logs").glob("*.log"))
        refused_commits = logs.count("OperationalError")  # failed while locked: nak / retry, never ack
        report(
            "sqlite-locked",
            locked="+".join(LOCKED),
            lock_seconds=LOCK_SECONDS,
            **out,
            dead_letters=dead,
            failed_attempts_while_locked=refused_commits,
            seconds_release_to_all_notified=round(recovered, 1),
        )
        assert_nothing_lost_or_doubled(out, len(bodies))
        assert dead == 0
        assert refused_commits > 0, "the outage was felt: writes failed and were retried"
        assert all(system.alive(n) for n in FLOW)
    finally:
        system.stop()
