"""A 3-node NATS cluster on loopback, streams with 3 replicas: kill one node during a stream of
referrals. Nothing lost, nothing doubled, the system carries on with the two nodes left.

Run:  .venv/bin/python -m pytest tests/faults/test_cluster.py -s
"""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import nats.errors
import pytest

from infra.natscluster import ensure_replicated_streams, start_cluster
from infra.run import wait_ready
from shared.settings import Settings
from tests.conftest import wait_for
from tests.faults.test_faults import FLOW, all_done, assert_nothing_lost_or_doubled, check_outcome, steady_referrals
from tests.support.processes import Processes, report
from tests.support.system import EventLog

pytestmark = [pytest.mark.faults, pytest.mark.e2e]


async def fresh_event_log(nc: nats.NATS, attempts: int = 40) -> EventLog:
    """Attach a reader; creating its consumers may time out while the cluster elects leaders."""
    for _ in range(attempts - 1):
        try:
            return await EventLog().attach(nc, keys=True)
        except (TimeoutError, nats.errors.TimeoutError):
            await asyncio.sleep(0.5)
    return await EventLog().attach(nc, keys=True)


async def stream_info(nc: nats.NATS, name: str, timeout: float = 30.0) -> Any:
    """A JetStream API request can time out while the two remaining nodes settle after the kill
    (seen once in 20 runs, after every event had been counted): asked again until ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await nc.jetstream(timeout=5).stream_info(name)
        except nats.errors.TimeoutError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def test_kill_one_cluster_node_under_load(tmp_path):  # type: ignore[no-untyped-def]
    nodes = start_cluster(tmp_path / "cluster")
    urls = ",".join(n.url for n in nodes)
    nc = await nats.connect(servers=[n.url for n in nodes], max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    system = Processes(Settings(nats_url=urls, data_dir=tmp_path), KOOLLE_STREAM_REPLICAS="3")
    try:
        await ensure_replicated_streams(nc)
        log = await EventLog().attach(nc, keys=True)
        system.start(*FLOW)
        t0 = asyncio.get_running_loop().time()
        await wait_ready(nc, FLOW, timeout=60)
        print(f"ready in {asyncio.get_running_loop().time() - t0:.1f}s")
        feeder = asyncio.create_task(steady_referrals(nc, 40, rate=40))
        await asyncio.sleep(0.5)
        # Kill the node the test client is connected to, or else the first one: either way a node
        # that holds a replica of every stream and possibly leads some of them.
        victim = (
            next((n for n in nodes if n.url.endswith(f":{nc.connected_url.port}")), nodes[0]) if nc.connected_url else nodes[0]
        )
        loop = asyncio.get_running_loop()
        t_kill = loop.time()
        victim.kill()
        bodies = await feeder
        await wait_ready(nc, FLOW, timeout=60)
        # Count from a fresh reader of the streams: the first reader's ephemeral (R1) consumers may
        # have lived on the killed node, and such a reader can miss events published meanwhile
        # although the streams hold them (seen once the relays published faster, in atomic batches).
        log = await fresh_event_log(nc)
        try:
            await wait_for(lambda: all_done(check_outcome(log, bodies, tmp_path)), timeout=90)
        except AssertionError:
            # Say what is missing: a lost referral, a missing notification, a missing convening.
            raise AssertionError(f"not all done 90 s after the kill: {check_outcome(log, bodies, tmp_path)}") from None
        drained = loop.time() - t_kill
        await asyncio.sleep(1.0)
        out = check_outcome(log, bodies, tmp_path)
        from shared.contracts import STREAMS

        replicas = {name: (await stream_info(nc, name)).config.num_replicas for name in STREAMS}
        report(
            "cluster-node-killed",
            nodes=3,
            killed=1,
            stream_replicas=min(replicas.values()),
            **out,
            dead_letters=len(log.of("deadletter.")),
            seconds_kill_to_all_notified=round(drained, 1),
        )
        assert set(replicas.values()) == {3}
        assert out["lost"] == 0 and out["duplicated_events"] == 0 and out["duplicated_notifications"] == 0
        assert_nothing_lost_or_doubled(out, len(bodies))
        # The key bucket's leader elected again is an outage, not a failing handler (shared/outage.py).
        assert log.of("deadletter.") == []
        assert all(system.alive(n) for n in FLOW), "every service carried on"
    finally:
        system.stop()
        await nc.close()
        for n in nodes:
            n.stop()


async def test_the_audited_purge_keeps_a_replicated_stream_s_replicas_retention_and_protections(tmp_path):  # type: ignore[no-untyped-def]
    from uuid import uuid4

    from infra.stream_purge import purge_stream
    from shared.messaging.streams import ensure_streams

    nodes = start_cluster(tmp_path / "cluster")
    nc = await nats.connect(servers=[n.url for n in nodes])
    try:
        await ensure_replicated_streams(nc)
        month = 30 * 24 * 3600.0
        # A deployment's own retention and duplicate window, which the operator's shell does not know.
        await ensure_streams(nc.jetstream(timeout=5), duplicate_window=300.0, replicas=3, max_ages={"MEETINGS": month})
        js = nc.jetstream(timeout=5)
        for _ in range(3):
            await js.publish("meeting.convened.v2.testila.testila-family-centre", b"{}", headers={"Nats-Msg-Id": str(uuid4())})
        record = await purge_stream(
            nc, "MEETINGS", reason="test environment reset, ticket OPS-2", requested_by="ops-1", audit_file=tmp_path / "ops.jsonl"
        )
        assert record["messages"] == 3
        info = await stream_info(nc, "MEETINGS")
        assert info.state.messages == 0 and info.state.first_seq == 4, "sequences continue"
        assert info.config.num_replicas == 3, "a purge must not leave a county's stream on one node"
        assert info.config.max_age == month and info.config.duplicate_window == 300.0
        assert info.config.deny_purge and info.config.deny_delete and info.config.allow_atomic
    finally:
        await nc.close()
        for n in nodes:
            n.stop()
