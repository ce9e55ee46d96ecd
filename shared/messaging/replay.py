"""Replay a stream from the beginning, e.g. to rebuild a read model.

An ephemeral pull consumer with no acks (a read model rebuild acknowledges nothing: it reads),
fetched in large batches, up to the last sequence that existed when the replay started.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy


async def replay(
    js: JetStreamContext,
    stream: str,
    subject: str,
    handle: Callable[[list[Msg]], Awaitable[None] | None],
    *,
    batch: int = 2000,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Feed every stored message on ``subject`` to ``handle`` in batches; returns how many."""
    info = await js.stream_info(stream, subjects_filter=subject)
    last = info.state.last_seq
    # Per subject matching the filter (several for a routed event's ``….>``).
    total = sum(info.state.subjects.values()) if info.state.subjects else info.state.messages
    if total == 0:
        return 0
    psub = await js.pull_subscribe(
        subject,
        stream=stream,
        config=ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.ALL,
            inactive_threshold=60.0,
            max_waiting=1,
        ),
    )
    seen = 0
    try:
        while True:
            try:
                msgs = await psub.fetch(batch, timeout=2.0)
            except (TimeoutError, NatsTimeoutError):  # nats-py raises either when nothing came
                break
            result = handle(msgs)
            if result is not None:
                await result
            seen += len(msgs)
            if progress:
                progress(seen, total)
            if msgs[-1].metadata.sequence.stream >= last:
                break
    finally:
        await psub.unsubscribe()
    return seen
