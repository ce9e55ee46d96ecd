"""Fault injection on real processes and a real nats-server: no referral lost or doubled.

Each test reports its figures (also kept under var/reliability/ for docs/reliability.md).
Run just these:  .venv/bin/python -m pytest -m faults -s

The nats-server has the per-service users (tests/faults/conftest.py); notifications are counted
per recipient (every (event, recipient) the flow owes), and the plans service is in the flow
(its case-access read model takes each referral's referral.received).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from pathlib import Path

import nats
import pytest

from infra.run import wait_ready
from services.notifications.config import NotificationsConfig, StaffDirectory
from shared.client import submit_referral
from shared.messaging.streams import ensure_streams
from shared.settings import Settings
from tests.conftest import wait_for
from tests.support.data import submission
from tests.support.identities import connect_as, secured_server
from tests.support.processes import Processes, report
from tests.support.system import EventLog

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

FLOW = ("referral", "meetings", "plans", "notifications")
STAFF = StaffDirectory.load(NotificationsConfig().staff_file)


async def steady_referrals(frontdoor: nats.NATS, n: int, rate: float) -> list[dict]:
    bodies = [submission() for _ in range(n)]
    for b in bodies:
        for attempt in range(100):  # a front door retries with the same Nats-Msg-Id
            try:
                await submit_referral(frontdoor, b)
                break
            except Exception:  # noqa: BLE001 - server restarting
                await asyncio.sleep(0.1 * (attempt + 1))
        await asyncio.sleep(1 / rate)
    return bodies


NOTIFICATIONS_SENT_SQL = (
    "select count(*), count(distinct source_event_id || '/' || recipient_id) from notifications where status='sent'"
)
CONVENINGS_SQL = "select count(*) from convenings"
PLANS_HANDLED_SQL = "select count(*) from inbox where consumer = 'plans-referral-received-v2'"


def sqlite_effects(data_dir: Path) -> tuple[tuple[int, int], int]:
    """(sent notification rows, distinct event/recipient pairs among them), convening rows."""
    rows = sqlite3.connect(data_dir / "notifications.db").execute(NOTIFICATIONS_SENT_SQL).fetchone()
    conv = sqlite3.connect(data_dir / "meetings.db").execute(CONVENINGS_SQL).fetchone()[0]
    return (rows[0], rows[1]), conv


def expected_recipients(log: EventLog, received_ids: set[str]) -> set[tuple[str, str]]:
    """(source event, recipient) of every notification the flow owes, worked out from the events
    and the staff configuration, not from what the notifications service did: the referrer's
    acknowledgement of each referral.received, and each member of the team it names (the team of the
    referral.assigned published with it)."""
    received = [e for e in log.of("referral.received") if e["event_id"] in received_ids]
    owed = {(e["event_id"], c["contact_id"]) for e in received for c in e["contacts"] if c["role"] == "referrer"}
    owed |= {(e["event_id"], staff_id) for e in received for staff_id in STAFF.team_members(e["team_id"])}
    return owed


def check_outcome(log: EventLog, bodies: list[dict], data_dir: Path, effects: tuple[tuple[int, int], int] | None = None) -> dict:
    """Loss and doubling, counted on the events (JetStream) and on the effects (each service's DB,
    the delivery spool). Notifications are counted per recipient: every (event, recipient) the
    flow owes must have its notification.sent. ``effects`` are the database counts of
    :func:`sqlite_effects` when the databases are elsewhere (then plans is not counted)."""
    received = log.of("referral.received")
    ids = [e["submission_id"] for e in received]
    expected = {b["submission_id"] for b in bodies}
    received_ids = {e["event_id"] for e in received if e["submission_id"] in expected}
    owed = expected_recipients(log, received_ids)
    pairs = [(e["source_event_id"], e["recipient_id"]) for e in log.of("notification.sent")]
    cases = {e["case_id"] for e in received if e["event_id"] in received_ids}
    assigned = [a for a in log.of("referral.assigned") if a["case_id"] in cases]
    rows, conv = effects if effects is not None else sqlite_effects(data_dir)
    spool = data_dir / "notifications" / "delivered.jsonl"
    lines = [json.loads(x)["notification_id"] for x in spool.read_text().splitlines()] if spool.exists() else []
    out = {
        "published": len(bodies),
        "stored": len(set(ids) & expected),
        "lost": len(expected - set(ids)),
        "duplicated_events": len(ids) - len(set(ids)) + len(assigned) - len({a["case_id"] for a in assigned}),
        "assigned": len({a["case_id"] for a in assigned}),
        "notifications_owed": len(owed),
        "notifications_sent": len(owed & set(pairs)),
        "lost_notifications": len(owed - set(pairs)),
        "duplicated_notifications": (len(pairs) - len(set(pairs))) + (len(lines) - len(set(lines))) + (rows[0] - rows[1]),
        "convenings": conv,
    }
    if effects is None and (data_dir / "plans.db").exists():
        out["plans_handled"] = sqlite3.connect(data_dir / "plans.db").execute(PLANS_HANDLED_SQL).fetchone()[0]
    return out


def all_done(out: dict) -> bool:
    """Every referral stored and assigned, every owed notification sent (plans: every referral.received handled)."""
    n = out["published"]
    return (
        out["stored"] == out["assigned"] == n
        and out["notifications_owed"] == n * RECIPIENTS_PER_REFERRAL
        and out["lost_notifications"] == 0
        and out.get("plans_handled", n) >= n
        and out["convenings"] >= n  # meetings too (it fetches each new case's key first)
    )


RECIPIENTS_PER_REFERRAL = 1 + len(STAFF.team_members("testila-family-centre"))  # the referrer + the team


def assert_nothing_lost_or_doubled(out: dict, n: int) -> None:
    assert out["lost"] == 0 and out["duplicated_events"] == 0 and out["duplicated_notifications"] == 0
    assert (
        out["lost_notifications"] == 0 and out["notifications_sent"] == out["notifications_owed"] == n * RECIPIENTS_PER_REFERRAL
    )
    assert out["stored"] == out["assigned"] == out["convenings"] == n
    assert out.get("plans_handled", n) == n


@pytest.fixture
async def system(nats_server, tmp_path, clean_streams):  # type: ignore[no-untyped-def]
    p = Processes(Settings(nats_url=nats_server.url, data_dir=tmp_path), identities=True)
    yield p
    p.stop()


@pytest.mark.parametrize(
    "point", ["uow.after_commit_before_publish", "relay.after_publish_before_mark", "consumer.after_commit_before_ack"]
)
async def test_named_crash_points(point, system, nc, frontdoor, tmp_path):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc)
    system.start("meetings", "plans", "notifications")
    system.start("referral", KOOLLE_CRASH_POINTS=f"{point}:5")
    await wait_ready(nc, FLOW)
    feeder = asyncio.create_task(steady_referrals(frontdoor, 40, rate=50))
    code = await asyncio.to_thread(system.wait_exit, "referral", 60)
    assert code == 137, "the service died at the crash point"
    system.start("referral")
    bodies = await feeder
    await wait_for(lambda: all_done(check_outcome(log, bodies, tmp_path)), timeout=60)
    await asyncio.sleep(1.0)
    out = check_outcome(log, bodies, tmp_path)
    report(f"crash-point-{point}", **out)
    assert_nothing_lost_or_doubled(out, len(bodies))


async def test_sigkill_each_service_repeatedly(system, nc, frontdoor, tmp_path):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc)
    system.start(*FLOW)
    await wait_ready(nc, FLOW)
    feeder = asyncio.create_task(steady_referrals(frontdoor, 60, rate=40))
    for _round in range(2):
        for name in FLOW:
            await asyncio.sleep(0.3)
            system.kill(name)
            system.start(name)
    bodies = await feeder
    await wait_ready(nc, FLOW)
    await wait_for(lambda: all_done(check_outcome(log, bodies, tmp_path)), timeout=90)
    await asyncio.sleep(1.0)
    out = check_outcome(log, bodies, tmp_path)
    report("sigkill-each-service", kills=sum(system.kills.values()), **out)
    assert_nothing_lost_or_doubled(out, len(bodies))


async def test_sigterm_during_handling_finishes_or_redelivers(system, nc, frontdoor, tmp_path):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc)
    system.start(*FLOW)
    await wait_ready(nc, FLOW)
    bodies = await steady_referrals(frontdoor, 40, rate=400)
    system.kill("notifications", signal.SIGTERM)  # graceful: in-flight batch finishes and acks
    exit_code = system.procs["notifications"].returncode
    system.start("notifications")
    await wait_for(lambda: all_done(check_outcome(log, bodies, tmp_path)), timeout=60)
    await asyncio.sleep(1.0)
    out = check_outcome(log, bodies, tmp_path)
    report("sigterm-during-handling", exit_code=exit_code, **out)
    assert exit_code == 0
    assert_nothing_lost_or_doubled(out, len(bodies))


async def test_service_paused_longer_than_the_ack_wait(system, nc, frontdoor, tmp_path):  # type: ignore[no-untyped-def]
    """SIGSTOP notifications (and meetings) for 2.5 x the ack wait (2 s here) mid-stream: JetStream
    redelivers what they held; on SIGCONT they finish their batch and ack late. The inbox turns the
    redeliveries into duplicates: nothing lost, nothing sent twice."""
    log = await EventLog().attach(nc)
    system.start(*FLOW)
    await wait_ready(nc, FLOW)
    feeder = asyncio.create_task(steady_referrals(frontdoor, 40, rate=40))
    await asyncio.sleep(0.4)
    paused = ("notifications", "meetings")
    for name in paused:
        system.pause(name)
    await asyncio.sleep(5.0)
    # Messages the paused consumers took and have not acked, after 2.5 ack waits: JetStream owes
    # them to someone again (redelivery), while the paused process still holds them.
    held = 0
    for stream in ("REFERRAL", "MEETINGS"):
        for c in await nc.jetstream().consumers_info(stream):
            if c.name.split("-")[0] in paused:
                held += (c.num_ack_pending or 0) + (c.num_redelivered or 0)
    for name in paused:
        system.resume(name)
    bodies = await feeder
    await wait_for(lambda: all_done(check_outcome(log, bodies, tmp_path)), timeout=60)
    await asyncio.sleep(1.0)
    out = check_outcome(log, bodies, tmp_path)
    report(
        "sigstop-longer-than-ack-wait",
        paused="+".join(paused),
        pause_seconds=5.0,
        ack_wait_seconds=2,
        held_past_ack_wait=held,
        **out,
    )
    assert held > 0, "the paused services held unacked messages past the ack wait"
    assert_nothing_lost_or_doubled(out, len(bodies))
    assert all(system.alive(n) for n in FLOW)


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
async def test_nats_restart_under_load(stop, tmp_path):  # type: ignore[no-untyped-def]
    server = secured_server(tmp_path / "nats")
    nc = await connect_as(server, "ops", max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    frontdoor = await connect_as(server, "frontdoor", max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    keys = await connect_as(server, "referral", max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    nc.koolle_keys = keys  # type: ignore[attr-defined]  # the event log opens sealed fields with it (conftest.nc)
    await ensure_streams(nc.jetstream())
    log = await EventLog().attach(nc)
    system = Processes(Settings(nats_url=server.url, data_dir=tmp_path), identities=True)
    try:
        system.start(*FLOW)
        await wait_ready(nc, FLOW)
        feeder = asyncio.create_task(steady_referrals(frontdoor, 60, rate=40))
        await asyncio.sleep(1.0)
        server.kill() if stop == "sigkill" else server.stop()  # SIGKILL: no flush, no goodbye to clients
        await asyncio.sleep(1.0)
        server.start()
        bodies = await feeder
        await wait_ready(nc, FLOW, timeout=60)
        await wait_for(lambda: all_done(check_outcome(log, bodies, tmp_path)), timeout=90)
        await asyncio.sleep(1.0)
        out = check_outcome(log, bodies, tmp_path)
        report(f"nats-{'killed' if stop == 'sigkill' else 'restart'}-under-load", **out)
        assert_nothing_lost_or_doubled(out, len(bodies))
        assert all(system.alive(n) for n in FLOW), "no service died; consumers resumed"
    finally:
        system.stop()
        await frontdoor.close()
        await keys.close()
        await nc.close()
        server.stop()
