"""The referral service opens a new case with an id whose key it made ahead (shared/key_reserve.py):
the intake's transaction waits for no key-bucket write. On a real nats-server and SQLite."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from nats.js.errors import NotFoundError

from services.referral.bootstrap import bootstrap
from shared.contracts import INTAKE_SUBJECT
from shared.key_reserve import KeyReserve
from shared.sealing import KEYS_BUCKET, CaseKeys, ensure_key_bucket
from tests.conftest import wait_for
from tests.support.data import submission
from tests.support.system import opened

pytestmark = [pytest.mark.integration]


async def _received(nc):  # type: ignore[no-untyped-def]
    got: list[dict] = []

    async def cb(msg):  # type: ignore[no-untyped-def]
        got.append(json.loads(msg.data))

    await nc.subscribe("referral.received.v2", cb=cb)
    await nc.flush()
    return got


@asynccontextmanager
async def _referral_service(settings: Any) -> AsyncIterator[tuple[Any, KeyReserve]]:
    """The referral service, once its reserve is full."""
    svc = bootstrap(settings)
    await svc.start()
    try:
        reserve = svc.key_reserve
        assert reserve is not None
        await wait_for(lambda: reserve.ready() == svc.case_key_reserve)
        yield svc, reserve
    finally:
        await svc.stop()


async def _submit(js: Any, body: dict[str, Any], msg_id: str | None = None) -> None:
    await js.publish(INTAKE_SUBJECT, json.dumps(body).encode(), headers={"Nats-Msg-Id": msg_id or body["submission_id"]})


async def test_a_new_referral_opens_its_case_with_a_key_made_before_its_transaction(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    received = await _received(nc)
    async with _referral_service(settings) as (_, reserve):
        made_ahead = {case_id for case_id, _, _ in reserve._ready}
        js = nc.jetstream()
        body = submission()
        await _submit(js, body)
        await wait_for(lambda: received)
        assert received[0]["case_id"] in made_ahead
        assert (reserve.taken, reserve.fresh) == (1, 0)
        # Its fields are sealed with that key, which every service reads from the bucket.
        ev = await opened(js, "referral.received.v2", received[0])
        assert ev["submission_id"] == body["submission_id"]


async def test_a_reused_submission_id_opens_no_case_and_the_next_case_takes_the_id_it_was_given(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    received = await _received(nc)
    async with _referral_service(settings) as (svc, reserve):
        js = nc.jetstream()
        first = submission()
        await _submit(js, first)
        await wait_for(lambda: received)
        given = reserve._ready[0][0]  # the id the next new case is given
        # Its submission id again, about another child (after JetStream's duplicate window: another
        # message id): rejected, no case opened, and the id it was given goes back to the reserve.
        await _submit(js, submission(submission_id=first["submission_id"]), "reused-later")
        intake = next(c for c in svc.consumers if "intake" in c.durable)
        await wait_for(lambda: intake.handled == 2)
        await _submit(js, submission())  # another child
        await wait_for(lambda: len(received) == 2)
        assert received[1]["case_id"] == given
        assert reserve.taken == 3  # the first case's, the reused id's (given back) and the second case's


async def test_a_clean_stop_deletes_the_keys_no_case_took(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    js = nc.jetstream()
    await ensure_key_bucket(js)
    keys = CaseKeys(js)
    reserve = KeyReserve(keys, 4)
    first = reserve.new_case_id()  # nothing made yet: a fresh id, its key made at the commit
    assert (reserve.taken, reserve.fresh) == (0, 1)
    await wait_for(lambda: reserve.ready() == 4)
    taken = [reserve.new_case_id() for _ in range(3)]
    assert (reserve.taken, reserve.fresh) == (3, 1)
    assert all(keys.cached(str(c)) not in (False, None) for c in taken)  # cached: sealed at emit, no round trip
    await wait_for(lambda: reserve.ready() == 4)  # topped up again once half was taken
    unused = [case_id for case_id, _, _ in reserve._ready]
    await reserve.close()
    kv = await js.key_value(KEYS_BUCKET)
    for case_id in taken:
        assert (await kv.get(str(case_id))).value is not None
    for case_id in unused:
        with pytest.raises(NotFoundError):
            await kv.get(case_id)
    with pytest.raises(NotFoundError):
        await kv.get(str(first))
