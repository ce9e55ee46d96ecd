"""A service's consumer of several subjects on one stream (shared/messaging/durables.py), on a real
nats-server: created where the one-subject consumers it replaces had got to, so that nothing they
had not finished is missed; from the start on a new install; its filters updated in place."""

from __future__ import annotations

import uuid
from typing import Any

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from shared.messaging.durables import ensure_consumer


async def stream_of_ten(js: Any) -> str:
    name = f"HAND{uuid.uuid4().hex[:6].upper()}"
    await js.add_stream(StreamConfig(name=name, subjects=[f"{name.lower()}.>"], storage=StorageType.FILE))
    for i in range(1, 11):  # seq 1..10: odd on .a, even on .b
        await js.publish(f"{name.lower()}.{'a' if i % 2 else 'b'}", str(i).encode())
    return name


def merged(name: str, subjects: list[str]) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name="svc-from-hand",
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        filter_subjects=[f"{name.lower()}.{s}" for s in subjects],
    )


async def old_consumer(js: Any, name: str, subject: str, ack: int) -> None:
    """A one-subject durable (the layout before) that has handled and acked its first ``ack`` messages."""
    psub = await js.pull_subscribe(f"{name.lower()}.{subject}", durable=f"svc-hand-{subject}", stream=name)
    msgs = await psub.fetch(5, timeout=2)
    for m in msgs[:ack]:
        await m.ack_sync()
    for m in msgs[ack:]:
        await m.nak()  # delivered, not handled
    await psub.unsubscribe()


async def delivered(js: Any, name: str, n: int) -> list[int]:
    psub = await js.pull_subscribe_bind(durable="svc-from-hand", stream=name)
    msgs = await psub.fetch(n, timeout=2)
    await psub.unsubscribe()
    return [m.metadata.sequence.stream for m in msgs]


async def test_the_shared_consumer_starts_where_the_least_advanced_old_consumer_had_got_to(nc) -> None:  # type: ignore[no-untyped-def]
    js = nc.jetstream()
    name = await stream_of_ten(js)
    await old_consumer(js, name, "a", ack=5)  # all of .a handled: caught up
    await old_consumer(js, name, "b", ack=2)  # .b handled up to seq 4; 6, 8, 10 not
    await ensure_consumer(js, name, merged(name, ["a", "b"]), previous=["svc-hand-a", "svc-hand-b"])
    info = await js.consumer_info(name, "svc-from-hand")
    start = info.config.opt_start_seq
    # The server may put .b's ack floor at 5, past the .a event it does not filter.
    assert info.config.deliver_policy == DeliverPolicy.BY_START_SEQUENCE.value and start in (5, 6)
    # .a's events from there come again (the inbox gives them no second effect); none of .b's is missed.
    assert await delivered(js, name, 10) == list(range(start, 11))
    await js.delete_stream(name)


async def test_the_shared_consumer_of_a_new_install_starts_at_the_stream_s_beginning(nc) -> None:  # type: ignore[no-untyped-def]
    js = nc.jetstream()
    name = await stream_of_ten(js)
    await ensure_consumer(js, name, merged(name, ["a", "b"]), previous=["svc-hand-a", "svc-hand-b"])
    assert (await js.consumer_info(name, "svc-from-hand")).config.deliver_policy == DeliverPolicy.ALL.value
    assert await delivered(js, name, 10) == list(range(1, 11))
    await js.delete_stream(name)


async def test_a_subject_added_later_joins_the_filters_and_the_consumer_keeps_its_place(nc) -> None:  # type: ignore[no-untyped-def]
    js = nc.jetstream()
    name = await stream_of_ten(js)
    await ensure_consumer(js, name, merged(name, ["a", "c"]), previous=[])
    psub = await js.pull_subscribe_bind(durable="svc-from-hand", stream=name)
    for m in await psub.fetch(5, timeout=2):
        await m.ack_sync()
    await psub.unsubscribe()
    await ensure_consumer(js, name, merged(name, ["a", "b", "c"]), previous=[])  # the next version
    info = await js.consumer_info(name, "svc-from-hand")
    assert sorted(info.config.filter_subjects or []) == [f"{name.lower()}.{s}" for s in "abc"]
    assert info.delivered.stream_seq == 9  # its place is kept: .b's events before it are not handled
    await js.publish(f"{name.lower()}.b", b"11")
    assert await delivered(js, name, 5) == [10, 11]  # after its place, they are
    await js.delete_stream(name)
