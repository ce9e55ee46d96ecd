"""Notifications by channel and state, in the notifications service's Prometheus metrics."""

from __future__ import annotations

import pytest

from shared.client import submit_referral
from tests.conftest import wait_for
from tests.support.data import submission
from tests.support.system import EventLog, running

pytestmark = [pytest.mark.integration]


async def test_notifications_by_channel_and_state(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("notification.>",))
    async with running(settings, "referral", "notifications") as svcs:
        await submit_referral(nc, submission())
        await wait_for(lambda: log.of("notification.sent"), timeout=10)
        text = (await svcs["notifications"].metrics.render()).decode()
    lines = [line for line in text.splitlines() if line.startswith("koolle_notifications{")]
    sent = [line for line in lines if 'status="sent"' in line]
    assert sent and float(sent[0].rsplit(" ", 1)[1]) >= 1, lines
    assert 'channel="log"' in sent[0]
    assert "@" not in text
