"""No service can erase a stream's history (issue 18, finding 5).

Every event stream refuses rollup headers, message deletes and purges; durable timers live in their
own streams (``TIMERS_<SERVICE>``, which JetStream message schedules need to allow rollup and
purge) and fired timers are sourced into the owner's event stream. Real nats-server with the
per-service users: each service tries on its own stream what one probe publish did to MEETINGS."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import nats
import pytest

from shared.contracts import STREAMS
from shared.messaging.streams import ensure_streams
from tests.conftest import wait_for
from tests.support.identities import connect_as, secured_server

pytestmark = [pytest.mark.integration]

EVENT_STREAMS = {"REFERRAL": "referral", "MEETINGS": "meetings", "PLANS": "plans", "NOTIFICATIONS": "notifications"}
OWN_EVENT = {
    "referral": "referral.received.v2",
    "meetings": "meeting.convened.v2.testila.testila-family-centre",
    "plans": "plan.agreed.v2.testila.testila-family-centre",
    "notifications": "notification.sent.v2.testila.testila-family-centre",
}


@pytest.fixture
async def secured(tmp_path):  # type: ignore[no-untyped-def]
    server = secured_server(tmp_path / "nats")
    ops = await connect_as(server, "ops")
    await ensure_streams(ops.jetstream())
    yield server, ops
    await ops.close()
    server.stop()


@pytest.mark.parametrize("stream", sorted(EVENT_STREAMS))
async def test_a_service_cannot_roll_up_its_own_stream(secured, stream):  # type: ignore[no-untyped-def]
    server, ops = secured
    service = EVENT_STREAMS[stream]
    nc = await connect_as(server, service)
    js = nc.jetstream()
    for _ in range(3):
        await js.publish(OWN_EVENT[service], b"{}", headers={"Nats-Msg-Id": str(uuid4())})
    with pytest.raises(nats.js.errors.APIError):
        await js.publish(OWN_EVENT[service], b"{}", headers={"Nats-Rollup": "all", "Nats-Msg-Id": str(uuid4())})
    with pytest.raises(nats.js.errors.APIError):
        await js.publish(OWN_EVENT[service], b"{}", headers={"Nats-Rollup": "sub", "Nats-Msg-Id": str(uuid4())})
    await nc.close()
    assert (await ops.jetstream().stream_info(stream)).state.messages == 3


@pytest.mark.parametrize("stream", sorted(set(STREAMS) - {"DEADLETTER"} - {s for s in STREAMS if s.startswith("TIMERS_")}))
async def test_every_event_stream_refuses_message_delete_and_purge(nc, clean_streams, stream):  # type: ignore[no-untyped-def]
    """Refused by the stream itself, even to an identity with every API right (here: no user)."""
    js = nc.jetstream()
    subject = STREAMS[stream].subjects[0].replace(">", "x.v1")
    await js.publish(subject, b"{}", headers={"Nats-Msg-Id": str(uuid4())})
    seq = (await js.stream_info(stream)).state.last_seq
    with pytest.raises(nats.js.errors.APIError, match="not permitted"):
        await js.delete_msg(stream, seq)
    with pytest.raises(nats.js.errors.APIError, match="not permitted"):
        await js.purge_stream(stream)
    info = await js.stream_info(stream)
    assert info.state.messages == 1
    assert info.config.deny_delete and info.config.deny_purge and not info.config.allow_rollup_hdrs


async def test_timers_fire_and_cancel_in_their_own_stream(secured):  # type: ignore[no-untyped-def]
    """Timers work as before from the service's side: schedule on ``timers.<service>.…``, cancel
    by a rollup tombstone on that subject (allowed on the timers stream only); a due one fires
    onto ``timers.<service>.fired``, from where the service emits its event."""
    from shared.messaging.timers import fired_subject

    server, ops = secured
    nc = await connect_as(server, "meetings")
    js = nc.jetstream()
    at = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for name in ("kept", "cancelled"):
        await js.publish(
            f"timers.meetings.reminder.{name}",
            b"{}",
            headers={
                "Nats-Schedule": f"@at {at}",
                "Nats-Schedule-Target": fired_subject("meetings"),
                "Nats-Msg-Id": str(uuid4()),
            },
        )
    await js.publish("timers.meetings.reminder.cancelled", b"", headers={"Nats-Rollup": "sub", "Nats-Msg-Id": str(uuid4())})
    await nc.close()
    ojs = ops.jetstream()

    async def fired() -> int:
        info = await ojs.stream_info("TIMERS_MEETINGS", subjects_filter=fired_subject("meetings"))
        return int((info.state.subjects or {}).get(fired_subject("meetings"), 0))

    await wait_for(fired, timeout=15)
    await asyncio.sleep(1.5)
    assert await fired() == 1, "the cancelled timer did not fire"
    assert (await ojs.stream_info("MEETINGS")).state.messages == 0


async def test_the_audited_purge_procedure_empties_a_stream_and_keeps_its_protection(secured, tmp_path):  # type: ignore[no-untyped-def]
    import json

    from infra.stream_purge import PurgeRefused, purge_stream

    server, ops = secured
    referral = await connect_as(server, "referral")
    for _ in range(3):
        await referral.jetstream().publish("referral.received.v2", b"{}", headers={"Nats-Msg-Id": str(uuid4())})
    await referral.close()
    audit = tmp_path / "audit" / "ops.jsonl"
    with pytest.raises(PurgeRefused, match="reason_required"):
        await purge_stream(ops, "REFERRAL", reason="because", requested_by="ops-1", audit_file=audit)
    assert not audit.exists()
    record = await purge_stream(
        ops, "REFERRAL", reason="test environment reset, ticket OPS-1", requested_by="ops-1", audit_file=audit
    )
    assert record["messages"] == 3 and record["last_seq"] == 3
    [line] = audit.read_text().splitlines()
    assert json.loads(line)["reason"] == "test environment reset, ticket OPS-1"
    assert oct(audit.stat().st_mode & 0o777) == "0o600"
    info = await ops.jetstream().stream_info("REFERRAL")
    assert info.state.messages == 0 and info.state.first_seq == 4, "sequences continue"
    assert info.config.deny_purge and info.config.deny_delete and not info.config.allow_rollup_hdrs
