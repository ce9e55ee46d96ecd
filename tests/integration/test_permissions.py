"""Least-privilege NATS identities: each identity refused outside its subjects and refused JetStream
admin; the four services still run the whole flow under their own identities."""

from __future__ import annotations

import asyncio
import json

import nats
import pytest

from infra.auth import IDENTITIES, SERVICES, authorization_block, inbox_prefix
from infra.natsserver import EmbeddedNats, free_port
from infra.ops import gather_access_log
from shared.client import submit_referral
from shared.messaging.streams import ensure_streams
from shared.sealing import KEYS_BUCKET, KEYS_STREAM
from tests.conftest import wait_for
from tests.support.data import submission
from tests.support.staff import TEAM, relation_known
from tests.support.system import EventLog

pytestmark = [pytest.mark.integration]

PASSWORDS = {i: f"pw-{i}-test" for i in IDENTITIES}


@pytest.fixture
async def secured(tmp_path):  # type: ignore[no-untyped-def]
    server = EmbeddedNats(tmp_path / "nats", free_port(), extra_config=authorization_block(PASSWORDS)).start()
    yield server
    server.stop()


async def connect(server: EmbeddedNats, identity: str, errors: list[str] | None = None) -> nats.NATS:
    async def on_error(e: Exception) -> None:
        if errors is not None:
            errors.append(str(e))

    return await nats.connect(
        server.url,
        user=identity,
        password=PASSWORDS[identity],
        inbox_prefix=inbox_prefix(identity),
        error_cb=on_error,
        max_reconnect_attempts=0,
    )


# A refusal shows as no answer, so refused checks wait `timeout`; checks expected to pass get a
# long one (a busy machine may take a while to answer), so they never fail for lack of time.
ALLOWED = 10.0


async def js_publish_allowed(nc: nats.NATS, subject: str, timeout: float = 0.5) -> bool:
    try:
        await nc.jetstream().publish(subject, b"{}", timeout=timeout)
        return True
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.js.errors.APIError):
        return False


async def api_allowed(nc: nats.NATS, subject: str, timeout: float = 0.3) -> bool:
    """Whether a request is answered. Given a long ``timeout`` (an allowed call), "no responders"
    is asked again until then: under load the answer once came as no responders (CI, 1 run in 4)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            await nc.request(subject, b"", timeout=max(0.3, min(timeout, deadline - loop.time())))
            return True
        except nats.errors.NoRespondersError:
            if timeout <= 1.0 or loop.time() >= deadline:
                return False
            await asyncio.sleep(0.2)
        except nats.errors.TimeoutError:
            return False


async def test_each_identity_is_refused_outside_its_subjects(secured):  # type: ignore[no-untyped-def]
    ops = await connect(secured, "ops")
    await ensure_streams(ops.jetstream())

    referral = await connect(secured, "referral")
    assert await js_publish_allowed(referral, "referral.received.v2", ALLOWED)
    assert not await js_publish_allowed(referral, "referral.received.v1")  # retired: it carried contact details
    assert not await js_publish_allowed(referral, "meeting.convened.v2")
    assert not await js_publish_allowed(referral, "intake.referral.v1")

    frontdoor = await connect(secured, "frontdoor")
    assert await js_publish_allowed(frontdoor, "intake.referral.v1", ALLOWED)
    assert not await js_publish_allowed(frontdoor, "referral.received.v2")

    staff = await connect(secured, "staffapp")
    assert not await js_publish_allowed(staff, "plan.agreed.v2")

    # No identity but ops may administer JetStream.
    for ident in (*SERVICES, "frontdoor", "staffapp"):
        nc = await connect(secured, ident)
        for admin in (
            "$JS.API.STREAM.DELETE.REFERRAL",
            "$JS.API.STREAM.CREATE.EVIL",
            "$JS.API.STREAM.PURGE.INTAKE",
            "$JS.API.STREAM.MSG.GET.DEADLETTER",
        ):
            assert not await api_allowed(nc, admin), f"{ident} must not call {admin}"
        await nc.close()
    assert await api_allowed(ops, "$JS.API.STREAM.INFO.REFERRAL", ALLOWED)

    # Operator queries (rejected submissions' raw bytes): the referral service answers, only ops may ask.
    async def answer(msg: nats.aio.msg.Msg) -> None:
        await msg.respond(b"{}")

    answers = await referral.subscribe("ops.referral.rejected.v1", cb=answer)
    await referral.flush()
    assert await api_allowed(ops, "ops.referral.rejected.v1", ALLOWED)
    for ident in ("frontdoor", "staffapp", "meetings"):
        nc = await connect(secured, ident)
        assert not await api_allowed(nc, "ops.referral.rejected.v1"), f"{ident} must not read rejected submissions"
        await nc.close()
    await answers.unsubscribe()

    # The per-case data keys: every service reads them and may create one; only referral (which
    # carries out an erasure) may delete one; no client reads or writes them.
    meetings = await connect(secured, "meetings")
    key_of = f"$JS.API.DIRECT.GET.{KEYS_STREAM}.$KV.{KEYS_BUCKET}.some-case"
    many_keys = f"$JS.API.DIRECT.GET.{KEYS_STREAM}"  # a batched direct get: the subjects in the body
    assert await api_allowed(meetings, key_of, ALLOWED)
    assert await api_allowed(meetings, many_keys, ALLOWED)
    assert await js_publish_allowed(meetings, f"$KV.{KEYS_BUCKET}.some-case", ALLOWED)
    assert not await api_allowed(meetings, f"$JS.API.STREAM.MSG.DELETE.{KEYS_STREAM}")
    assert await api_allowed(referral, f"$JS.API.STREAM.MSG.DELETE.{KEYS_STREAM}", ALLOWED)
    for nc in (frontdoor, staff):
        assert not await api_allowed(nc, key_of)
        assert not await api_allowed(nc, many_keys)
        assert not await js_publish_allowed(nc, f"$KV.{KEYS_BUCKET}.some-case")
    await meetings.close()

    # Subscribing to someone else's events or inbox is refused.
    errors: list[str] = []
    nosy = await connect(secured, "frontdoor", errors)
    await nosy.subscribe("referral.received.v2")
    await nosy.subscribe("_INBOX_referral.>")
    await nosy.flush()
    # The server's refusals arrive asynchronously: wait for both rather than for a fixed time.
    await wait_for(lambda: sum("permissions violation" in e.lower() for e in errors) >= 2, timeout=10)
    assert sum("permissions violation" in e.lower() for e in errors) == 2
    for nc in (ops, referral, frontdoor, staff, nosy):
        await nc.close()


async def test_services_run_the_flow_under_their_own_identities(secured, tmp_path, staff_settings, identity):  # type: ignore[no-untyped-def]
    settings = staff_settings
    ops = await connect(secured, "ops")
    await ensure_streams(ops.jetstream())
    log = await EventLog().attach(ops)
    per_service = {}
    for s in SERVICES:
        per_service[s] = settings.model_copy(
            update={
                "nats_url": secured.url,
                "nats_user": s,
                "nats_password": PASSWORDS[s],
                "nats_inbox_prefix": inbox_prefix(s),
                "manage_streams": False,
            }
        )
    from tests.support.system import BUILDERS

    services = [BUILDERS[s](per_service[s]) for s in SERVICES]
    for svc in services:
        await svc.start()
    try:
        frontdoor = await connect(secured, "frontdoor")
        await submit_referral(frontdoor, submission())
        await wait_for(lambda: log.of("notification.sent"), timeout=15)
        staff = await connect(secured, "staffapp")
        case_id = log.of("referral.received")[0]["case_id"]
        await relation_known(services, case_id)
        sw = identity.header(identity.social_worker("staff-1", TEAM))
        reply = await staff.request(
            "query.meetings.case.v2", f'{{"case_id": "{case_id}", "purpose": "case_work"}}'.encode(), timeout=3, headers=sw
        )
        assert b'"ok":true' in reply.data
        # "Who has seen my data": the staff app may ask every service (a worker of the case's team) ...
        registry = identity.worker("staff-registry-1", TEAM)
        for s in SERVICES:
            body = {"case_id": case_id} if s == "referral" else {"case_ids": [case_id]}
            reply = await staff.request(
                f"query.{s}.access_log.v2",
                json.dumps({**body, "purpose": "access_request"}).encode(),
                timeout=3,
                headers=identity.header(registry),
            )
            assert b'"ok":true' in reply.data, s
        answer = await gather_access_log(staff, token=registry, case_id=case_id)
        assert answer["complete"], answer["services"]
        assert ("staff-1", "read_meetings") in {(e["actor"], e["action"]) for e in answer["entries"]}
        # ... while ops gets no family's data: its NATS identity may not even send a staff query (and
        # with a staff app's connection its token would be refused, tests/integration/test_access_matrix.py).
        refused = await gather_access_log(ops, token=identity.ops("ops-1"), case_id=case_id, timeout=0.5)
        assert not refused["ok"] and refused["errors"] == ["no_answer"] and not refused["entries"]
        await frontdoor.close()
        await staff.close()
    finally:
        for svc in services:
            await svc.stop()
        await ops.close()


async def test_a_least_privileged_service_started_before_the_streams_are_declared_says_what_to_run(  # type: ignore[no-untyped-def]
    secured, staff_settings
):
    from shared.messaging.streams import StreamsNotDeclared
    from tests.support.system import BUILDERS

    settings = staff_settings.model_copy(
        update={
            "nats_url": secured.url,
            "nats_user": "meetings",
            "nats_password": PASSWORDS["meetings"],
            "nats_inbox_prefix": inbox_prefix("meetings"),
            "manage_streams": False,
        }
    )
    svc = BUILDERS["meetings"](settings)
    with pytest.raises(StreamsNotDeclared, match="python -m infra.ops declare-streams"):
        await svc.start()
    await svc.stop()
