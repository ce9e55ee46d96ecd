"""Retention per kind of data (issue 18, finding 8): INTAKE kept raw submissions (henkilötunnus,
concern text) forever and no stream had a maximum age. Handled submissions now leave INTAKE after a
short retention, dead letters after theirs, and the referral service forgets stored raw rejections
at the end of theirs."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from services.referral import handlers
from services.referral.adapters import referrals, rejected_submissions
from services.referral.bootstrap import bootstrap
from services.referral.config import ReferralConfig
from shared.clock import FixedClock
from shared.contracts import INTAKE_SUBJECT, ReferralReceived
from shared.messaging.streams import ensure_streams
from shared.settings import Settings
from tests.conftest import wait_for
from tests.integration.test_referral_intake import collect
from tests.support.data import submission

pytestmark = [pytest.mark.integration]


async def test_intake_and_dead_letters_have_a_maximum_age_and_events_are_kept_by_default(nc, clean_streams):  # type: ignore[no-untyped-def]
    js = nc.jetstream()
    await ensure_streams(js, max_ages=Settings(retention_intake_hours=48, retention_deadletter_days=10).stream_max_ages())
    assert (await js.stream_info("INTAKE")).config.max_age == 48 * 3600
    assert (await js.stream_info("DEADLETTER")).config.max_age == 10 * 86400
    for name in ("REFERRAL", "MEETINGS", "PLANS", "NOTIFICATIONS"):
        assert not (await js.stream_info(name)).config.max_age  # the source of rebuilds: erased otherwise
    defaults = Settings().stream_max_ages()
    assert defaults["INTAKE"] == 7 * 86400 and defaults["DEADLETTER"] == 30 * 86400


async def test_a_handled_submission_leaves_intake_after_its_retention_and_stays_in_the_database(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    received = await collect(nc, ReferralReceived.public_form.subject())  # type: ignore[union-attr]
    settings = settings.model_copy(update={"retention_intake_hours": 1.5 / 3600})
    svc = bootstrap(settings)
    await svc.start()  # declares the streams with this retention
    try:
        js = nc.jetstream()
        body = submission()
        await js.publish(INTAKE_SUBJECT, json.dumps(body).encode(), headers={"Nats-Msg-Id": body["submission_id"]})
        await wait_for(lambda: received)
        assert (await js.stream_info("INTAKE")).state.messages == 1
        await asyncio.sleep(2.0)  # the retention (1.5 s) passes; the server drops the message
        assert (await js.stream_info("INTAKE")).state.messages == 0
        async with svc.db.read_sessionmaker() as s:
            assert (await s.execute(select(func.count()).select_from(referrals))).scalar_one() == 1
    finally:
        await svc.stop()


async def test_raw_rejections_are_forgotten_at_the_end_of_their_retention(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    clock = FixedClock(datetime.now(UTC))
    svc = bootstrap(settings, clock=clock, config=ReferralConfig(rejection_retention_days=90))
    await svc.start()
    try:
        js = nc.jetstream()
        await js.publish(INTAKE_SUBJECT, b"not json", headers={"Nats-Msg-Id": "fd-old"})

        async def stored() -> int:
            async with svc.db.read_sessionmaker() as s:
                return int((await s.execute(select(func.count()).select_from(rejected_submissions))).scalar_one())

        async def stored_is(n: int) -> bool:
            return await stored() == n

        await wait_for(stored)
        clock.advance(days=89)
        async with svc.uow() as uow:
            assert await handlers.forget_old_rejections(uow) == 0
        await js.publish(INTAKE_SUBJECT, b"also not json", headers={"Nats-Msg-Id": "fd-new"})
        await wait_for(lambda: stored_is(2))
        clock.advance(days=2)
        async with svc.uow() as uow:
            assert await handlers.forget_old_rejections(uow) == 1  # the first, 91 days old
        async with svc.db.read_sessionmaker() as s:
            left = [r.submission_id for r in await s.execute(select(rejected_submissions.c.submission_id))]
        assert left == ["fd-new"]
    finally:
        await svc.stop()
