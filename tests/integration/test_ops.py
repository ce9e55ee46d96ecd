"""The operator CLI's building blocks against a real server: status, dead letters, replay, rebuild."""

from __future__ import annotations

import json

import pytest

from infra.ops import list_dead_letters, replay_dead_letter, status_data
from services.referral.projections import ReferralStatistics
from shared.client import submit_referral
from tests.conftest import wait_for
from tests.support.data import referral_received, submission
from tests.support.staff import publish_js
from tests.support.system import EventLog, running

pytestmark = [pytest.mark.integration]


async def test_dead_letter_is_listed_and_replayed_after_the_fix(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("deadletter.>",))
    js = nc.jetstream()
    ev = referral_received()
    async with running(settings, "meetings") as svcs:
        # meetings' consumer of referral.received (the case-access projection's consumers come first)
        (consumer,) = [c for c in svcs["meetings"].consumers if c.sub.subject == ev.published()[0][1].subject()]
        real = consumer.sub.handler

        async def broken(e, uow):  # type: ignore[no-untyped-def]
            raise RuntimeError("bug")

        object.__setattr__(consumer.sub, "handler", broken)
        await publish_js(js, ev)
        await wait_for(lambda: log.of("deadletter.meetings"), timeout=15)
        rows = await list_dead_letters(nc, "meetings")
        assert [(r["reason"], r["subject"]) for r in rows] == [("handler_failed", "referral.received.v2")]
        assert "Testilä" not in json.dumps(rows)

        object.__setattr__(consumer.sub, "handler", real)  # the fix is deployed
        handled = consumer.handled
        await replay_dead_letter(nc, rows[0]["seq"])
        await wait_for(lambda: consumer.handled == handled + 1)
        assert await list_dead_letters(nc, "meetings") == []
        data = await status_data(nc)
        assert data["health"]["meetings"]["ready"] is True
        assert any(c.name == "meetings-referral-received-v2" for c in data["consumers"])


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
