"""The permission matrix of issue 19 on a real nats-server: each identity x each subject family x
publish, subscribe and consumer create. Every cell is checked against its expected answer, so each
identity is shown both allowed where it should be and refused everywhere else. The expectations
for the outside clients are written out here (not read from infra/auth.py); the services' consumer
rights are the durables their own bootstraps declare."""

from __future__ import annotations

import asyncio
import json
from functools import cache

import nats
import pytest

from infra.auth import SERVICES, catch_up_durable, readable_subjects
from shared.contracts import stream_for_subject
from shared.messaging.streams import ensure_streams
from tests.support.identities import PASSWORDS, connect_as, secured_server

pytestmark = [pytest.mark.integration]

T, P, S = "testila.testila-family-centre", "porvoo.porvoo-family-centre", "testila.testila-school-team"
FAMILIES = (
    "intake.referral.v1",
    "referral.rejected.v1",
    "referral.received.v1",  # retired: carried contact details
    "referral.received.v2",
    "directory.referral.received.v1",
    "referral.assigned.v1",  # retired: one subject for every team
    f"referral.assigned.v2.{T}",
    f"referral.assigned.v2.{P}",
    f"meeting.convened.v2.{T}",
    f"meeting.convened.v2.{P}",
    "directory.meeting.convened.v1",
    f"plan.agreed.v2.{T}",
    f"plan.agreed.v2.{P}",
    "directory.plan.agreed.v1",
    f"followup.recorded.v2.{S}",
    f"notification.failed.v2.{P}",
)
STAFF = {s for s in FAMILIES if s.count(".") == 4}  # the routed ones
PUBLISH = {
    "frontdoor": {"intake.referral.v1"},
    "staffapp": set(),
    "staffapp-testila": set(),
    "staffapp-porvoo": set(),
    "referral": {
        "referral.rejected.v1",
        "referral.received.v2",
        "directory.referral.received.v1",
        f"referral.assigned.v2.{T}",
        f"referral.assigned.v2.{P}",
    },
    "meetings": {f"meeting.convened.v2.{T}", f"meeting.convened.v2.{P}", "directory.meeting.convened.v1"},
    "plans": {f"plan.agreed.v2.{T}", f"plan.agreed.v2.{P}", "directory.plan.agreed.v1", f"followup.recorded.v2.{S}"},
    "notifications": {f"notification.failed.v2.{P}"},
    "ops": set(),  # ops publishes no event
}
READ = {  # subscribe and create its own durable consumer
    "frontdoor": {"referral.rejected.v1"},
    "staffapp": STAFF,  # infra/staff_apps.json: every route
    "staffapp-testila": {s for s in STAFF if s.endswith((T, S))},
    "staffapp-porvoo": {s for s in STAFF if ".porvoo." in s},
}
CLIENTS = tuple(READ)


def consumer_for(identity: str, subject: str) -> tuple[str, str]:
    """(name, filter) the identity would use for ``subject``: its own durable on the permitted
    pattern that covers it, else a name of its pattern on the subject itself."""
    if identity == "ops":
        return f"ops-{subject.replace('.', '-')}", subject
    if identity in SERVICES:
        for filter_subject, durable in service_durables(identity).items():
            if nats_match(filter_subject, subject):
                return durable, filter_subject
        return f"{identity}-{subject.replace('.', '-')}", subject
    for pattern in readable_subjects(identity):
        if nats_match(pattern, subject):
            return catch_up_durable(identity, pattern), pattern
    return catch_up_durable(identity, subject), subject


def may_read(identity: str, subject: str) -> bool:
    return subject in READ[identity] if identity in READ else False


def may_consume(identity: str, subject: str) -> bool:
    if identity == "ops":  # the administrator reads every stream (rebuilds, the event printer), also DIRECTORY
        return True
    if identity in SERVICES:
        return any(nats_match(f, subject) for f in service_durables(identity))
    return may_read(identity, subject)


def nats_match(pattern: str, subject: str) -> bool:
    p, s = pattern.split("."), subject.split(".")
    if p[-1] == ">":
        return len(s) >= len(p) and all(a in ("*", b) for a, b in zip(p[:-1], s, strict=False))
    return len(p) == len(s) and all(a in ("*", b) for a, b in zip(p, s, strict=True))


@cache
def service_durables(service: str) -> dict[str, str]:
    from infra.auth import _built

    return {s.subject: c.durable for c in _built(service).durable_consumers() for s in c.subs}


@pytest.fixture
async def server(tmp_path):  # type: ignore[no-untyped-def]
    server = secured_server(tmp_path / "nats")
    ops = await connect_as(server, "ops")
    await ensure_streams(ops.jetstream())
    await ops.close()
    yield server
    server.stop()


async def can_publish(nc: nats.NATS, subject: str) -> bool:
    try:
        await nc.jetstream().publish(subject, b"{}", timeout=1.5)
        return True
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
        return False


async def can_create_consumer(nc: nats.NATS, subject: str, name: str) -> bool:
    """Whether the request to create consumer ``name`` filtered on ``subject`` is answered."""
    stream = stream_for_subject(subject)
    body = {
        "stream_name": stream,
        "config": {"durable_name": name, "filter_subject": subject, "ack_policy": "explicit", "deliver_policy": "all"},
    }
    try:
        reply = await nc.request(f"$JS.API.CONSUMER.CREATE.{stream}.{name}.{subject}", json.dumps(body).encode(), timeout=1.5)
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
        return False
    answer = json.loads(reply.data)
    assert "error" not in answer, answer
    return True


@pytest.mark.parametrize("identity", [*CLIENTS, *SERVICES, "ops"])
async def test_each_identity_may_publish_subscribe_and_create_consumers_exactly_where_its_role_needs(server, identity):  # type: ignore[no-untyped-def]
    errors: list[str] = []

    async def on_error(e: Exception) -> None:
        errors.append(str(e).lower())

    nc = await connect_as(server, identity, error_cb=on_error)
    try:
        published = dict(zip(FAMILIES, await asyncio.gather(*(can_publish(nc, s) for s in FAMILIES)), strict=True))
        for subject in FAMILIES:
            await nc.subscribe(subject)
        await nc.flush()
        await asyncio.sleep(0.5)  # a refused subscription is reported asynchronously
        subscribed = {s: not any(f'subscription to "{s}"' in e for e in errors) for s in FAMILIES}
        consumers = dict(
            zip(
                FAMILIES,
                await asyncio.gather(*(can_create_consumer(nc, *reversed(consumer_for(identity, s))) for s in FAMILIES)),
                strict=True,
            )
        )
    finally:
        await nc.close()
    assert published == {s: s in PUBLISH[identity] for s in FAMILIES}
    assert subscribed == {s: may_read(identity, s) for s in FAMILIES}
    assert consumers == {s: may_consume(identity, s) for s in FAMILIES}
    if identity not in ("notifications", "ops"):
        assert not any(consumers[s] or subscribed[s] for s in FAMILIES if s.startswith("directory."))
    for retired in ("referral.received.v1", "referral.assigned.v1"):
        assert not (published[retired] or subscribed[retired] or (consumers[retired] and identity != "ops"))


@pytest.mark.parametrize("identity", ["frontdoor", "staffapp"])
async def test_an_outside_client_cannot_administer_streams_or_take_over_another_consumer(server, identity):  # type: ignore[no-untyped-def]
    nc = await connect_as(server, identity)
    subject = "referral.rejected.v1" if identity == "frontdoor" else "plan.agreed.v2.*.*"
    stream = stream_for_subject(subject)
    try:
        assert await can_create_consumer(nc, subject, catch_up_durable(identity, subject))
        # Another name (a service's durable), another filter on its own name, or a wildcard filter.
        assert not await can_create_consumer(nc, subject, "notifications-plan-agreed-v2")
        assert not await can_create_consumer(nc, "referral.assigned.v2.*.*", catch_up_durable(identity, subject))
        assert not await can_create_consumer(nc, "plan.>", catch_up_durable(identity, subject))
        for api in (
            f"$JS.API.STREAM.CREATE.{stream}",
            f"$JS.API.STREAM.DELETE.{stream}",
            f"$JS.API.STREAM.PURGE.{stream}",
            f"$JS.API.CONSUMER.DELETE.{stream}.{catch_up_durable(identity, subject)}",
            f"$JS.API.STREAM.MSG.GET.{stream}",
        ):
            with pytest.raises((nats.errors.TimeoutError, nats.errors.NoRespondersError)):
                await nc.request(api, b"{}", timeout=1.0)
    finally:
        await nc.close()
    assert PASSWORDS[identity]
