"""The operator CLI's building blocks against a real server: status, dead letters, replay, rebuild."""

from __future__ import annotations

import json

import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from infra.ops import list_dead_letters, replay_dead_letter, status_data, unused_consumers
from services.referral.projections import ReferralStatistics
from shared.client import submit_referral
from tests.conftest import wait_for
from tests.support.data import referral_received, submission
from tests.support.staff import publish_js
from tests.support.system import EventLog, fed, running

pytestmark = [pytest.mark.integration]


async def test_dead_letter_is_listed_and_replayed_after_the_fix(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("deadletter.>",))
    js = nc.jetstream()
    ev = referral_received()
    async with running(settings, "meetings") as svcs:
        # meetings' consumer of referral.received (the case-access projection's consumers come first)
        consumer = fed(svcs["meetings"], subject=ev.published()[0][1].subject())
        real = consumer.sub.handler

        async def broken(e, uow):  # type: ignore[no-untyped-def]
            raise RuntimeError("bug")

        consumer.set_handler(broken)
        await publish_js(js, ev)
        await wait_for(lambda: log.of("deadletter.meetings"), timeout=15)
        rows = await list_dead_letters(nc, "meetings")
        assert [(r["reason"], r["subject"]) for r in rows] == [("handler_failed", "referral.received.v2")]
        assert "Testilä" not in json.dumps(rows)

        consumer.set_handler(real)  # the fix is deployed
        handled = consumer.handled
        await replay_dead_letter(nc, rows[0]["seq"])
        await wait_for(lambda: consumer.handled == handled + 1)
        assert await list_dead_letters(nc, "meetings") == []
        data = await status_data(nc)
        assert data["health"]["meetings"]["ready"] is True
        assert any(c.name == "meetings-from-referral" for c in data["consumers"])


async def test_rebuild_statistics_from_the_stream(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc)
    async with running(settings, "referral"):
        for m in ("Porvoo", "Porvoo", "Loviisa"):
            await submit_referral(nc, submission(municipality=m))
        await wait_for(lambda: len(log.of("referral.received")) == 3)
    seen: list[int] = []
    stats = await ReferralStatistics.rebuild(nc.jetstream(), progress=lambda s, t: seen.append(s))
    assert stats.events == 3 and seen[-1] == 3
    assert sorted((r["municipality"], r["referrals"]) for r in stats.rows()) == [("Loviisa", 1), ("Porvoo", 2)]


async def test_a_consumer_no_service_runs_any_more_is_listed_and_deleted_and_a_wired_one_is_kept(nc, clean_streams):  # type: ignore[no-untyped-def]
    js = nc.jetstream()
    # the referral service's consumer of its own referral.received, as versions before
    # in-transaction projections had it; the meetings service's one-subject consumer, which its
    # consumer of the whole stream replaced; and that one, which runs
    for durable in ("referral-referral-received-v2", "meetings-referral-received-v2"):
        await js.add_consumer(
            "REFERRAL",
            ConsumerConfig(durable_name=durable, filter_subject="referral.received.v2", ack_policy=AckPolicy.EXPLICIT),
        )
    await js.add_consumer(
        "REFERRAL",
        ConsumerConfig(
            durable_name="meetings-from-referral",
            filter_subjects=["referral.received.v2", "consent.given.v1"],
            ack_policy=AckPolicy.EXPLICIT,
        ),
    )
    old = [("REFERRAL", "meetings-referral-received-v2"), ("REFERRAL", "referral-referral-received-v2")]
    assert sorted((r["stream"], r["durable"]) for r in await unused_consumers(nc)) == old
    assert sorted(r["durable"] for r in await unused_consumers(nc, delete=True)) == [d for _, d in old]
    left = {c.config.durable_name for c in await js.consumers_info("REFERRAL")}
    assert left == {"meetings-from-referral"}
    assert await unused_consumers(nc) == []
