"""Many new cases' data keys are made as one JetStream atomic batch (shared/sealing.py,
shared/messaging/atomic.py): the intake's batch under load and the referral service's reserve of keys
made ahead. On a real nats-server, against the key bucket as the services configure it."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from shared.key_reserve import KeyReserve
from shared.messaging.atomic import WRONG_LAST_SEQUENCE, BatchRefused
from shared.sealing import KEYS_BUCKET, KEYS_STREAM, CaseKeys, ensure_key_bucket, stream_config
from tests.conftest import wait_for

pytestmark = [pytest.mark.integration]


def _ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


async def test_keys_made_as_one_batch_are_each_stored_under_their_case_at_the_revision_given(nc):  # type: ignore[no-untyped-def]
    js = nc.jetstream()
    await ensure_key_bucket(js)
    keys = CaseKeys(js)
    cases = _ids(40)
    before = (await js.stream_info(KEYS_STREAM)).state.last_seq
    made = await keys.make_many(cases)
    kv = await js.key_value(KEYS_BUCKET)
    for case_id, (revision, key) in zip(cases, made, strict=True):
        entry = await kv.get(case_id)
        assert (entry.revision, entry.value) == (revision, key)
    assert len({key for _, key in made}) == 40  # a random key per case
    # One batch: stored one after another, and only the commit was answered.
    assert [revision for revision, _ in made] == list(range(before + 1, before + 41))
    stored = await js.get_msg(KEYS_STREAM, made[0][0])
    assert stored.headers is not None and "Nats-Batch-Id" in stored.headers


async def test_a_batch_holding_a_case_that_has_a_key_stores_none_and_each_case_then_gets_its_own(nc):  # type: ignore[no-untyped-def]
    js = nc.jetstream()
    await ensure_key_bucket(js)
    keys = CaseKeys(js)
    kv = await js.key_value(KEYS_BUCKET)
    cases = _ids(20)
    existing = cases[7]
    await kv.create(existing, b"k" * 32)
    with pytest.raises(BatchRefused) as refused:
        await keys.make_many(cases)
    assert refused.value.code == WRONG_LAST_SEQUENCE
    for case_id in cases:
        if case_id != existing:
            with pytest.raises(NotFoundError):
                await kv.get(case_id)
    # The sealer's path: refused as a batch, then case by case; the existing key is kept and used.
    ciphers = await keys.ciphers_created(cases)
    assert all(c is not None for c in ciphers)
    assert (await kv.get(existing)).value == b"k" * 32
    for case_id in cases:
        assert keys.cached(case_id) not in (False, None)
        assert (await kv.get(case_id)).value is not None


async def test_a_few_keys_or_a_server_without_atomic_batches_get_one_write_each(nc):  # type: ignore[no-untyped-def]
    js = nc.jetstream()
    await ensure_key_bucket(js)
    assert CaseKeys(js).batched(16) and not CaseKeys(js).batched(15)
    keys = CaseKeys(js, atomic=False)  # KOOLLE_OUTBOX_ATOMIC_BATCHES=false
    assert not keys.batched(500)
    cases = _ids(20)
    ciphers = await keys.ciphers_created(cases)
    assert all(c is not None for c in ciphers)
    kv = await js.key_value(KEYS_BUCKET)
    entries = [await kv.get(case_id) for case_id in cases]
    stored = await js.get_msg(KEYS_STREAM, entries[0].revision)
    assert "Nats-Batch-Id" not in (stored.headers or {})


async def test_a_key_bucket_made_before_batches_is_given_them_at_start_up(nc):  # type: ignore[no-untyped-def]
    js = nc.jetstream()
    try:
        await js.delete_stream(KEYS_STREAM)
    except NotFoundError:
        pass
    old = stream_config()
    old.allow_atomic = None  # as the bucket was made before
    await js.add_stream(StreamConfig.from_response(old.as_dict()))
    assert not (await js.stream_info(KEYS_STREAM)).config.allow_atomic
    await ensure_key_bucket(js)
    assert (await js.stream_info(KEYS_STREAM)).config.allow_atomic
    made = await CaseKeys(js).make_many(_ids(16))
    assert len(made) == 16


async def test_a_reserve_of_many_keys_is_made_in_one_batch_and_a_clean_stop_deletes_only_its_own(nc):  # type: ignore[no-untyped-def]
    js = nc.jetstream()
    await ensure_key_bucket(js)
    keys = CaseKeys(js)
    reserve = KeyReserve(keys, 32)
    reserve.top_up()
    await wait_for(lambda: reserve.ready() == 32)
    revisions = [revision for _, revision, _ in reserve._ready]
    assert revisions == list(range(revisions[0], revisions[0] + 32))  # one batch
    taken = [str(reserve.new_case_id()) for _ in range(10)]
    await wait_for(lambda: reserve._topping is not None and reserve._topping.done())
    unused = [case_id for case_id, _, _ in reserve._ready]
    # An unused id whose revision no longer holds its key (as a miscount would look): kept.
    case_id, revision, key = reserve._ready[0]
    reserve._ready[0] = (case_id, revision, b"x" * 32)
    await reserve.close()
    kv = await js.key_value(KEYS_BUCKET)
    assert (await kv.get(case_id)).value == key
    for other in unused[1:]:
        with pytest.raises(NotFoundError):
            await kv.get(other)
    for case_id in taken:
        assert (await kv.get(case_id)).value is not None
    await asyncio.sleep(0)


async def test_a_batch_of_keys_is_read_with_one_request_an_erased_case_as_none_and_a_case_without_a_key_left_out(nc):  # type: ignore[no-untyped-def]
    js = nc.jetstream()
    await ensure_key_bucket(js)
    maker = CaseKeys(js)
    cases = _ids(30)
    made = dict(zip(cases, await maker.make_many(cases), strict=True))
    erased, never = cases[3], str(uuid.uuid4())
    await maker.destroy(erased)
    reader = CaseKeys(js)
    sent: list[str] = []
    real_publish = nc.publish

    async def counting(subject, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(subject)
        return await real_publish(subject, *args, **kwargs)

    nc.publish = counting
    try:
        await reader.fetch_many([*cases, never])
    finally:
        nc.publish = real_publish
    assert sent == [f"$JS.API.DIRECT.GET.{KEYS_STREAM}"]  # one request for all 31
    assert reader.cached(erased) is None  # erased: no cipher, and known as such
    assert reader.cached(never) is False and not reader.known(never)  # as cipher() leaves it
    for case_id in cases:
        if case_id != erased:
            assert reader._cache[case_id] == made[case_id][1]


async def test_without_batches_the_keys_are_read_one_request_each(nc):  # type: ignore[no-untyped-def]
    js = nc.jetstream()
    await ensure_key_bucket(js)
    cases = _ids(3)
    for case_id in cases:
        await CaseKeys(js).make(case_id)
    reader = CaseKeys(js, atomic=False)
    await reader.fetch_many(cases)
    assert all(reader.cached(c) not in (False, None) for c in cases)
