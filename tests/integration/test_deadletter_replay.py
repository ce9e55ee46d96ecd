"""Dead-letter replay cannot be used to act with ops's rights (issue 18, finding 1).

A service may write to its own ``deadletter.<service>.>``. A dead letter planted there must not make
ops publish a forged event or call the JetStream API: a replay sends the original message back to
the consumer that gave up on it, re-read by that service from its own stream by sequence.
Real nats-server with the per-service users of infra/auth.py."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest
from nats.js.errors import NotFoundError
from sqlalchemy import text

from infra.ops import list_dead_letters, replay_dead_letter
from shared.contracts import ReferralReceived
from shared.messaging.streams import ensure_streams
from tests.conftest import wait_for
from tests.support.data import referral_received
from tests.support.identities import connect_as, secured_server, service_settings
from tests.support.staff import publish_js
from tests.support.system import BUILDERS, EventLog, fed

pytestmark = [pytest.mark.integration]


def forged_referral() -> ReferralReceived:
    return referral_received(producer="referral", submission_id="forged")


@pytest.fixture
async def secured(tmp_path):  # type: ignore[no-untyped-def]
    server = secured_server(tmp_path / "nats")
    ops = await connect_as(server, "ops")
    await ensure_streams(ops.jetstream())
    yield server, ops
    await ops.close()
    server.stop()


@pytest.fixture
async def meetings_and_notifications(secured, settings):  # type: ignore[no-untyped-def]
    server, _ = secured
    services = {s: BUILDERS[s](service_settings(settings, server, s)) for s in ("meetings", "notifications")}
    for svc in services.values():
        await svc.start()
    yield services
    for svc in services.values():
        await svc.stop()


async def plant(server, service: str, durable: str, subject: str, payload: bytes, **extra: str) -> None:  # type: ignore[no-untyped-def]
    """What a compromised service can do: publish a dead letter of its own, with any headers."""
    nc = await connect_as(server, service)
    headers = {
        "Nats-Msg-Id": f"planted-{uuid4()}",
        "Koolle-Dlq-Reason": "handler_failed",
        "Koolle-Dlq-Subject": subject,
        "Koolle-Dlq-Consumer": durable,
        **extra,
    }
    await nc.jetstream().publish(f"deadletter.{service}.{durable}", payload, headers=headers)
    await nc.close()


async def test_a_planted_dead_letter_cannot_replay_a_forged_event(secured, meetings_and_notifications):  # type: ignore[no-untyped-def]
    server, ops = secured
    ev = forged_referral()
    await plant(
        server,
        "notifications",
        "notifications-directory-referral-received-v1",
        "directory.referral.received.v1",
        ev.to_json(),
        **{"Koolle-Dlq-Stream": "DIRECTORY", "Koolle-Dlq-Stream-Seq": "1"},
    )
    [row] = await list_dead_letters(ops, "notifications")
    with pytest.raises(Exception):  # noqa: B017 - refused, whatever the reason given
        await replay_dead_letter(ops, row["seq"])
    # Nothing was stored in REFERRAL: no forged referral.received.
    assert (await ops.jetstream().stream_info("REFERRAL")).state.messages == 0
    meetings = meetings_and_notifications["meetings"]
    async with meetings.db.engine.connect() as conn:
        assert (await conn.execute(text("select count(*) from convenings"))).scalar() == 0


async def test_a_planted_dead_letter_cannot_call_the_jetstream_api(secured, meetings_and_notifications):  # type: ignore[no-untyped-def]
    server, ops = secured
    config = {"name": "EVIL", "subjects": ["evil.>"], "storage": "memory", "retention": "limits", "discard": "old"}
    await plant(
        server,
        "meetings",
        "meetings-referral-received-v2",
        "$JS.API.STREAM.CREATE.EVIL",
        json.dumps(config).encode(),
        **{"Koolle-Dlq-Stream": "EVIL", "Koolle-Dlq-Stream-Seq": "1"},
    )
    [row] = await list_dead_letters(ops, "meetings")
    with pytest.raises(Exception):  # noqa: B017
        await replay_dead_letter(ops, row["seq"])
    with pytest.raises(NotFoundError):
        await ops.jetstream().stream_info("EVIL")


async def test_a_real_dead_letter_goes_back_to_its_consumer_under_per_service_users(secured, meetings_and_notifications):  # type: ignore[no-untyped-def]
    """A genuine dead letter is replayed through the consumer that gave up on it, once: a second
    replay of the same event (e.g. a planted copy naming the same stream sequence) has no effect."""
    server, ops = secured
    log = await EventLog().attach(ops, ("deadletter.>", "meeting.>"))
    meetings = meetings_and_notifications["meetings"]
    consumer = fed(meetings, named="meetings-referral-received-v2")
    real = consumer.sub.handler

    async def broken(e, uow):  # type: ignore[no-untyped-def]
        raise RuntimeError("bug")

    consumer.set_handler(broken)
    referral = await connect_as(server, "referral")
    ev = forged_referral()  # here published by its real producer
    await publish_js(referral.jetstream(), ev)
    await referral.close()
    await wait_for(lambda: log.of("deadletter.meetings"), timeout=20)
    consumer.set_handler(real)  # the fix is deployed

    [row] = await list_dead_letters(ops, "meetings")
    assert await replay_dead_letter(ops, row["seq"]) == "handled"
    assert await list_dead_letters(ops, "meetings") == []
    async with meetings.db.engine.connect() as conn:
        assert (await conn.execute(text("select count(*) from convenings"))).scalar() == 1

    # The same stream sequence planted again: the consumer's inbox has it, no second convening.
    await plant(
        server,
        "meetings",
        "meetings-referral-received-v2",
        "referral.received.v2",
        b"{}",
        **{"Koolle-Dlq-Stream": "REFERRAL", "Koolle-Dlq-Stream-Seq": row["original_seq"]},
    )
    [again] = await list_dead_letters(ops, "meetings")
    assert await replay_dead_letter(ops, again["seq"]) == "duplicate"
    async with meetings.db.engine.connect() as conn:
        assert (await conn.execute(text("select count(*) from convenings"))).scalar() == 1


async def test_ops_cannot_publish_events_or_erase_streams(secured):  # type: ignore[no-untyped-def]
    """Ops administers; it does not publish anyone's events, nor purge or roll up a stream."""
    import nats

    _, ops = secured
    for subject in ("referral.received.v2", "meeting.convened.v2", "intake.referral.v1", "deadletter.meetings.x"):
        with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.js.errors.APIError)):
            await ops.jetstream().publish(subject, b"{}", timeout=0.5)
    for api in ("$JS.API.STREAM.PURGE.REFERRAL", "$JS.API.STREAM.MSG.DELETE.REFERRAL", "$JS.API.STREAM.MSG.GET.REFERRAL"):
        with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
            await ops.request(api, b'{"seq": 1}', timeout=0.3)
    assert (await ops.jetstream().stream_info("REFERRAL")).config.name == "REFERRAL"
