"""End to end: the four services as separate processes, driven through NATS the way a front door
and a staff app would; and SIGKILL mid-flow with no event lost and no effect doubled."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.natsserver import EmbeddedNats
from infra.run import wait_ready
from shared.client import submit_referral
from shared.settings import Settings
from tests.conftest import wait_for
from tests.support.data import submission
from tests.support.identity import TestIdentity
from tests.support.processes import Processes
from tests.support.system import EventLog

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def processes(nats_server: EmbeddedNats, tmp_path: Path, clean_streams, identity: TestIdentity) -> Iterator[Processes]:  # type: ignore[no-untyped-def]
    p = Processes(Settings(nats_url=nats_server.url, data_dir=tmp_path), identity)
    p.start()
    yield p
    p.stop()


async def test_demo_flow_across_processes(processes, nc):  # type: ignore[no-untyped-def]
    from infra.demo import print_events, run_demo

    await wait_ready(nc)
    await print_events(nc)
    assert processes.identity is not None
    ids = await asyncio.wait_for(run_demo(nc, processes.identity.issuer, followup_after=2.0), timeout=60)
    assert set(ids) == {"case_id", "meeting_id", "plan_id", "statutory_case_id", "statutory_plan_id"}
    assert sys.executable


async def test_sigkill_mid_flow_loses_nothing_and_doubles_nothing(processes, nc, tmp_path):  # type: ignore[no-untyped-def]
    await wait_ready(nc)
    log = await EventLog().attach(nc, ("referral.>", "notification.>"))
    n = 80
    bodies = [submission() for _ in range(n)]

    async def front_door() -> None:
        for b in bodies:
            await submit_referral(nc, b)
            await asyncio.sleep(0.01)

    feeder = asyncio.create_task(front_door())
    await wait_for(lambda: len(log.of("referral.received")) >= 20, timeout=30)
    processes.kill("referral")
    processes.kill("notifications")
    await asyncio.sleep(0.3)
    processes.start("referral", "notifications")
    await wait_for(lambda: len(log.of("referral.received")) >= 80, timeout=60)
    processes.kill("notifications")  # again, with work in flight
    processes.start("notifications")
    await feeder
    await wait_ready(nc)

    from tests.faults.test_faults import all_done, assert_nothing_lost_or_doubled, check_outcome

    # Every recipient of every referral notified (the referrer and the team: 5 each), once.
    await wait_for(lambda: all_done(check_outcome(log, bodies, tmp_path)), timeout=90)
    await asyncio.sleep(1.0)  # let any would-be duplicate show up
    assert_nothing_lost_or_doubled(check_outcome(log, bodies, tmp_path), n)
