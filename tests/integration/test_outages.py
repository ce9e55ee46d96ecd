"""A dependency every message needs does not answer for a while (the case key bucket while a
cluster elects its leader again): the consumer holds the batch and tries it again, on a real
nats-server and SQLite. Nothing goes to the dead letters, nothing is redelivered meanwhile."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import nats.errors
import pytest
from prometheus_client import generate_latest
from sqlalchemy import select

from shared.contracts import ReferralReceived
from shared.messaging.subscription import Subscription
from shared.sealing import CaseKeyUnavailable
from tests.conftest import wait_for
from tests.support.data import referral_received
from tests.support.staff import publish_js
from tests.support.system import EventLog, fed

pytestmark = [pytest.mark.integration]

PUBLIC = ReferralReceived.public_form


def unavailable_then_real(times: int, calls: list[str]):  # type: ignore[no-untyped-def]
    """The meetings handler, after ``times`` calls on which the key bucket does not answer."""
    from services.meetings.handlers import open_convening

    async def handler(ev, uow):  # type: ignore[no-untyped-def]
        calls.append(ev.submission_id)
        if len(calls) <= times:
            raise CaseKeyUnavailable("case key bucket unavailable (TimeoutError)")
        await open_convening(ev, uow)

    return handler


async def test_an_outage_longer_than_every_retry_sends_nothing_to_the_dead_letters(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    from services.meetings.adapters import convenings
    from services.meetings.bootstrap import bootstrap

    log = await EventLog().attach(nc, ("deadletter.>",))
    calls: list[str] = []
    # More failed attempts than the deliveries a message may have, held for longer than the ack wait.
    times = settings.max_deliver + 4
    svc = bootstrap(settings)
    svc.subscriptions = [Subscription.for_event("meetings", PUBLIC, unavailable_then_real(times, calls))]
    await svc.start()
    try:
        await publish_js(nc.jetstream(), referral_received(submission_id="held"))
        consumer = fed(svc, subject=PUBLIC.subject())
        await wait_for(lambda: consumer.handled == 1, timeout=20)
        assert consumer.consumer.outage_waits == times
        assert consumer.consumer.failures == 0
        # What an operator alerts on: the durable and the dependency, no data.
        scraped = generate_latest(svc.metrics.registry).decode()
        held = f'koolle_consumer_outage_waits_total{{consumer="{consumer.consumer.durable}",dependency="CaseKeyUnavailable"}}'
        assert f"{held} {float(times)}" in scraped
        assert 'koolle_events_failed_total{consumer="meetings-referral-received-v2"}' not in scraped
        # Held in progress, not redelivered: a redelivery would now be an inbox duplicate.
        await asyncio.sleep(settings.ack_wait_seconds + 0.5)
        assert consumer.duplicates == 0
        assert calls == ["held"] * (times + 1)
        assert log.of("deadletter.") == []
        async with svc.uow() as uow:
            assert len((await uow.session.execute(select(convenings.c.case_id))).all()) == 1
    finally:
        await svc.stop()


async def test_a_service_stopped_during_an_outage_hands_its_messages_to_the_next_run(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    from services.meetings.adapters import convenings
    from services.meetings.bootstrap import bootstrap

    log = await EventLog().attach(nc, ("deadletter.>",))
    calls: list[str] = []
    first = bootstrap(settings)
    first.subscriptions = [Subscription.for_event("meetings", PUBLIC, unavailable_then_real(10**6, calls))]
    await first.start()
    try:
        await publish_js(nc.jetstream(), referral_received(submission_id="handed-back"))
        await wait_for(lambda: len(calls) >= 3)
    finally:
        await first.stop()
    assert fed(first, subject=PUBLIC.subject()).consumer.failures == 0

    second = bootstrap(settings)
    second.subscriptions = [Subscription.for_event("meetings", PUBLIC, unavailable_then_real(0, []))]
    await second.start()
    try:
        await wait_for(lambda: fed(second, subject=PUBLIC.subject()).handled == 1)
        assert log.of("deadletter.") == []
        async with second.uow() as uow:
            assert len((await uow.session.execute(select(convenings.c.case_id))).all()) == 1
    finally:
        await second.stop()


class _SilentBucket:
    """A key bucket that does not answer, as while a cluster elects its leader."""

    async def get(self, key: str):  # type: ignore[no-untyped-def]
        raise nats.errors.TimeoutError

    async def create(self, key: str, value: bytes):  # type: ignore[no-untyped-def]
        raise nats.errors.TimeoutError


async def test_a_command_during_an_outage_is_refused_as_temporarily_unavailable_and_its_retry_works(  # type: ignore[no-untyped-def]
    staff_settings, nc, clean_streams, worker_token
):
    from services.meetings.adapters import convenings
    from shared.client import call, submit_referral
    from tests.integration.test_flow import convene_cmd
    from tests.support.data import submission
    from tests.support.staff import relation_known
    from tests.support.system import running

    log = await EventLog().attach(nc, ("referral.received.>",))
    async with running(staff_settings, "referral", "meetings") as svcs:
        meetings = svcs["meetings"]
        await submit_referral(nc, submission())
        case_id = (await wait_for(lambda: log.of("referral.received")))[0]["case_id"]
        await relation_known([meetings], case_id)

        async def opened() -> bool:
            async with meetings.uow() as uow:
                return bool((await uow.session.execute(select(convenings.c.case_id))).all())

        await wait_for(opened)
        keys = meetings.db.sealer.keys
        keys._cache.clear()  # the next seal must ask the bucket
        keys._kv = _SilentBucket()
        cmd = convene_cmd(case_id, datetime.now(UTC) + timedelta(days=1))
        refused = await call(nc, "cmd.meetings.convene.v2", cmd, token=worker_token)
        assert not refused.ok and [e.code for e in refused.errors] == ["temporarily_unavailable"]
        assert "did not answer" in refused.errors[0].message["en"]

        keys._kv = None  # the bucket answers again
        again = await call(nc, "cmd.meetings.convene.v2", cmd, token=worker_token)
        assert again.ok, again.errors
        assert await call(nc, "cmd.meetings.convene.v2", cmd, token=worker_token) == again  # one meeting
