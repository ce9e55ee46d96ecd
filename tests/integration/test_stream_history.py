"""No service can erase a stream's history (issue 18, finding 5).

Every event stream refuses rollup headers, message deletes and purges; durable timers live in their
own streams (``TIMERS_<SERVICE>``, which JetStream message schedules need to allow rollup and
purge) and fired timers are sourced into the owner's event stream. Real nats-server with the
per-service users: each service tries on its own stream what one probe publish did to MEETINGS."""

from __future__ import annotations

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
    "referral": "referral.received.v1",
    "meetings": "meeting.convened.v1",
    "plans": "plan.agreed.v1",
    "notifications": "notification.sent.v1",
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


async def test_a_fired_timer_reaches_its_event_stream_and_a_cancelled_one_does_not(secured):  # type: ignore[no-untyped-def]
    """Timers work as before from the service's side: schedule on ``timers.<service>.…``, cancel
    by a rollup tombstone on that subject (allowed on the timers stream only)."""
    from shared.db import fired_subject

    server, ops = secured
    nc = await connect_as(server, "meetings")
    js = nc.jetstream()
    at = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    for name in ("kept", "cancelled"):
        await js.publish(
            f"timers.meetings.reminder.{name}",
            b'{"name": "%s"}' % name.encode(),
            headers={
                "Nats-Schedule": f"@at {at}",
                "Nats-Schedule-Target": fired_subject("timers.meetings.reminder.x", "meeting.reminder_due.v1"),
                "Nats-Msg-Id": str(uuid4()),
            },
        )
    await js.publish("timers.meetings.reminder.cancelled", b"", headers={"Nats-Rollup": "sub", "Nats-Msg-Id": str(uuid4())})
    await nc.close()
    ojs = ops.jetstream()
    await wait_for(lambda: _count(ojs, "MEETINGS"), timeout=15)
    info = await ojs.stream_info("MEETINGS", subjects_filter=">")
    assert info.state.subjects == {"meeting.reminder_due.v1": 1}


async def _count(js, stream: str) -> int:  # type: ignore[no-untyped-def]
    return int((await js.stream_info(stream)).state.messages)


async def test_the_audited_purge_procedure_empties_a_stream_and_keeps_its_protection(secured, tmp_path):  # type: ignore[no-untyped-def]
    import json

    from infra.stream_purge import PurgeRefused, purge_stream

    server, ops = secured
    referral = await connect_as(server, "referral")
    for _ in range(3):
        await referral.jetstream().publish("referral.received.v1", b"{}", headers={"Nats-Msg-Id": str(uuid4())})
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
