"""JetStream atomic batch publish (nats-server 2.12+): many messages to one stream, stored as one
write or not at all.

With ``sync_interval: always`` every publish stored alone is an fsync'd write and a request/reply;
a batch is one of each. The outbox relay sends a round's events this way (relay.py) and the referral
service the data keys of a batch's new cases (shared/sealing.py). The server stages a batch in a
store of its own, ≈ 3 ms of its CPU however small the batch (bench/README.md), so fewer than
``ATOMIC_BATCH_MIN`` messages go out one by one, which is cheaper then.

nats-py has no API for it yet: the messages go on the core connection with the batch headers and
the last one asks for the server's acknowledgement of the whole batch.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from nats.aio.client import Client

ATOMIC_BATCH_MAX = 500  # the server accepts up to 1000 messages in one atomic batch
# Measured on this 2-core machine: 3 events as a batch cost 2.9 ms of server CPU and 4.2 ms until
# acked, one by one (pipelined) 0.9 ms and 1.7 ms; the two break even near 20 events.
ATOMIC_BATCH_MIN = 16
ATOMIC_DISABLED = 10174  # JSAtomicPublishDisabledErr: the stream was not created with allow_atomic
WRONG_LAST_SEQUENCE = 10071  # JSStreamWrongLastSequenceErr: an expectation of one message failed


class BatchRefused(Exception):
    """The server stored none of the batch; ``code`` is its JetStream error code (0: not its answer)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"atomic batch refused (err_code {code})")
        self.code = code


async def publish_atomic(nc: Client, messages: Sequence[tuple[str, bytes, dict[str, str]]], timeout: float = 10.0) -> int:
    """Publish ``messages`` (subject, payload, headers) to one stream as one atomic batch. Returns
    the stream sequence of the last; the batch's messages are stored one after another, so the
    i-th of n (from 1) has ``last - n + i``. Raises :class:`BatchRefused` when the server stored none."""
    batch_id = uuid.uuid4().hex
    last = len(messages)
    reply: Any = None
    for i, (subject, payload, headers) in enumerate(messages, 1):
        headers = {**headers, "Nats-Batch-Id": batch_id, "Nats-Batch-Sequence": str(i)}
        if i < last:
            await nc.publish(subject, payload, headers=headers)
        else:
            headers["Nats-Batch-Commit"] = "1"
            reply = await nc.request(subject, payload, headers=headers, timeout=timeout)
    ack = json.loads(reply.data)
    if "error" in ack:
        raise BatchRefused(int(ack["error"].get("err_code", 0)))
    if ack.get("count") != last:
        raise BatchRefused(0)
    return int(ack["seq"])
