"""Fault injection on real processes and a real nats-server: no referral lost or doubled.

Each test reports its figures (also kept under var/reliability/ for docs/reliability.md).
Run just these:  .venv/bin/python -m pytest -m faults -s
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from pathlib import Path

import nats
import pytest

from infra.natsserver import EmbeddedNats, free_port
from infra.run import wait_ready
from shared.client import submit_referral
from shared.messaging.streams import ensure_streams
from shared.settings import Settings
from tests.conftest import wait_for
from tests.support.data import submission
from tests.support.processes import Processes, report
from tests.support.system import EventLog

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

FLOW = ("referral", "meetings", "notifications")


async def steady_referrals(nc: nats.NATS, n: int, rate: float) -> list[dict]:
    bodies = [submission() for _ in range(n)]
    for b in bodies:
        for attempt in range(100):  # a front door retries with the same Nats-Msg-Id
            try:
                await submit_referral(nc, b)
                break
            except Exception:  # noqa: BLE001 - server restarting
                await asyncio.sleep(0.1 * (attempt + 1))
        await asyncio.sleep(1 / rate)
    return bodies


NOTIFICATIONS_SENT_SQL = (
    "select count(*), count(distinct source_event_id || '/' || recipient_id) from notifications where status='sent'"
)
CONVENINGS_SQL = "select count(*) from convenings"


def sqlite_effects(data_dir: Path) -> tuple[tuple[int, int], int]:
    """(sent notification rows, distinct event/recipient pairs among them), convening rows."""
    rows = sqlite3.connect(data_dir / "notifications.db").execute(NOTIFICATIONS_SENT_SQL).fetchone()
    conv = sqlite3.connect(data_dir / "meetings.db").execute(CONVENINGS_SQL).fetchone()[0]
    return (rows[0], rows[1]), conv


def check_outcome(log: EventLog, bodies: list[dict], data_dir: Path, effects: tuple[tuple[int, int], int] | None = None) -> dict:
    """Loss and doubling, counted on the events (JetStream) and on the effects (each service's DB,
    the delivery spool). A referral's own notification is the referrer's acknowledgement.
    ``effects`` are the database counts of :func:`sqlite_effects` when the databases are elsewhere."""
    received = log.of("referral.received")
    ids = [e["submission_id"] for e in received]
    expected = {b["submission_id"] for b in bodies}
    received_ids = {e["event_id"] for e in received}
    sent = [e for e in log.of("notification.sent") if e["source_event_id"] in received_ids]
    pairs = [(e["source_event_id"], e["recipient_id"]) for e in log.of("notification.sent")]
    rows, conv = effects if effects is not None else sqlite_effects(data_dir)
    spool = data_dir / "notifications" / "delivered.jsonl"
    lines = [json.loads(x)["notification_id"] for x in spool.read_text().splitlines()] if spool.exists() else []
    return {
        "published": len(bodies),
        "stored": len(set(ids) & expected),
        "lost": len(expected - set(ids)),
        "duplicated_events": len(ids) - len(set(ids)),
        "notifications_sent": len({e["source_event_id"] for e in sent}),
        "duplicated_notifications": (len(pairs) - len(set(pairs))) + (len(lines) - len(set(lines))) + (rows[0] - rows[1]),
        "convenings": conv,
    }


@pytest.fixture
async def system(nats_server, tmp_path, clean_streams):  # type: ignore[no-untyped-def]
    p = Processes(Settings(nats_url=nats_server.url, data_dir=tmp_path))
    yield p
    p.stop()


@pytest.mark.parametrize(
    "point", ["uow.after_commit_before_publish", "relay.after_publish_before_mark", "consumer.after_commit_before_ack"]
)
async def test_named_crash_points(point, system, nc, tmp_path):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc)
    system.start("meetings", "notifications")
    system.start("referral", KOOLLE_CRASH_POINTS=f"{point}:5")
    await wait_ready(nc, FLOW)
    feeder = asyncio.create_task(steady_referrals(nc, 40, rate=50))
    code = await asyncio.to_thread(system.wait_exit, "referral", 60)
    assert code == 137, "the service died at the crash point"
    system.start("referral")
    bodies = await feeder
    await wait_for(lambda: check_outcome(log, bodies, tmp_path)["notifications_sent"] >= len(bodies), timeout=60)
    await asyncio.sleep(1.0)
    out = check_outcome(log, bodies, tmp_path)
    report(f"crash-point-{point}", **out)
    assert out["lost"] == 0 and out["duplicated_events"] == 0 and out["duplicated_notifications"] == 0
    assert out["stored"] == out["notifications_sent"] == out["convenings"] == len(bodies)


async def test_sigkill_each_service_repeatedly(system, nc, tmp_path):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc)
    system.start(*FLOW)
    await wait_ready(nc, FLOW)
    feeder = asyncio.create_task(steady_referrals(nc, 60, rate=40))
    for _round in range(2):
        for name in FLOW:
            await asyncio.sleep(0.4)
            system.kill(name)
            system.start(name)
    bodies = await feeder
    await wait_ready(nc, FLOW)
    await wait_for(lambda: check_outcome(log, bodies, tmp_path)["notifications_sent"] >= len(bodies), timeout=90)
    await asyncio.sleep(1.0)
    out = check_outcome(log, bodies, tmp_path)
    report("sigkill-each-service", kills=sum(system.kills.values()), **out)
    assert out["lost"] == 0 and out["duplicated_events"] == 0 and out["duplicated_notifications"] == 0
    assert out["stored"] == out["notifications_sent"] == out["convenings"] == len(bodies)


async def test_sigterm_during_handling_finishes_or_redelivers(system, nc, tmp_path):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc)
    system.start(*FLOW)
    await wait_ready(nc, FLOW)
    bodies = await steady_referrals(nc, 40, rate=400)
    system.kill("notifications", signal.SIGTERM)  # graceful: in-flight batch finishes and acks
    exit_code = system.procs["notifications"].returncode
    system.start("notifications")
    await wait_for(lambda: check_outcome(log, bodies, tmp_path)["notifications_sent"] >= len(bodies), timeout=60)
    await asyncio.sleep(1.0)
    out = check_outcome(log, bodies, tmp_path)
    report("sigterm-during-handling", exit_code=exit_code, **out)
    assert exit_code == 0
    assert out["lost"] == 0 and out["duplicated_notifications"] == 0 and out["notifications_sent"] == len(bodies)


async def test_nats_restart_under_load(tmp_path):  # type: ignore[no-untyped-def]
    server = EmbeddedNats(tmp_path / "nats", free_port()).start()
    nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    await ensure_streams(nc.jetstream())
    log = await EventLog().attach(nc)
    system = Processes(Settings(nats_url=server.url, data_dir=tmp_path))
    try:
        system.start(*FLOW)
        await wait_ready(nc, FLOW)
        feeder = asyncio.create_task(steady_referrals(nc, 60, rate=40))
        await asyncio.sleep(1.0)
        server.stop()
        await asyncio.sleep(1.0)
        server.start()
        bodies = await feeder
        await wait_ready(nc, FLOW, timeout=60)
        await wait_for(lambda: check_outcome(log, bodies, tmp_path)["notifications_sent"] >= len(bodies), timeout=90)
        await asyncio.sleep(1.0)
        out = check_outcome(log, bodies, tmp_path)
        report("nats-restart-under-load", **out)
        assert out["lost"] == 0 and out["duplicated_events"] == 0 and out["duplicated_notifications"] == 0
        assert all(system.alive(n) for n in FLOW), "no service died; consumers resumed"
    finally:
        system.stop()
        await nc.close()
        server.stop()
