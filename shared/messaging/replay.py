"""Replay a stream from the beginning, e.g. to rebuild a read model.

An ephemeral pull consumer with no acks (a read model rebuild acknowledges nothing: it reads),
fetched in large batches, up to the last sequence that existed when the replay started. Sealed
personal fields (shared/sealing.py) are opened before ``handle`` sees a message, as a consuming
service sees them, so a rebuild folds the same values as the live read model (an erased case's
fields come back as their erased values).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic_core import from_json

from shared.contracts import EVENTS
from shared.contracts.base import parse_event
from shared.contracts.personal import SEALED_PREFIX
from shared.contracts.routes import event_type_of, without_route
from shared.sealing import CaseKeys, Sealer

_SEALED = b'"' + SEALED_PREFIX.encode()


class _Opener:
    """Opens the sealed fields of replayed events with the case keys (created on first need)."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js
        self.sealer: Sealer | None = None
        self.models = {spec.subject: spec.model for spec in EVENTS}

    async def open(self, msgs: list[Msg]) -> None:
        for m in msgs:
            if _SEALED not in m.data:
                continue
            model = self.models.get(without_route(m.subject))
            if model is None:
                continue
            if self.sealer is None:
                self.sealer = Sealer(CaseKeys(self.js))
            m.data = (await self.sealer.open(parse_event(model, m.data))).to_json()


SUBJECTS_PER_INFO = 100_000  # nats-server's JSMaxSubjectDetails: more come in pages


async def replay(
    js: JetStreamContext,
    stream: str,
    subject: str,
    handle: Callable[[list[Msg]], Awaitable[None] | None],
    *,
    batch: int = 2000,
    progress: Callable[[int, int], None] | None = None,
    keys: JetStreamContext | None = None,
) -> int:
    """Feed every stored message on ``subject`` to ``handle`` in batches; returns how many."""
    info = await js.stream_info(stream, subjects_filter=subject)
    last = info.state.last_seq
    # Per subject matching the filter (several for a routed event's ``….>``); none listed: none
    # match. The server lists at most 100,000 subjects in one answer: past that, the count is not
    # trusted and the replay reads on until the stream's last sequence.
    subjects = info.state.subjects or {}
    counted = len(subjects) < SUBJECTS_PER_INFO
    total = sum(subjects.values()) if counted else info.state.messages
    if total == 0 and counted:
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
    opener = _Opener(keys or js)  # keys: a connection allowed to read the case keys, when js is not
    try:
        while True:
            try:
                msgs = await psub.fetch(batch, timeout=2.0)
            except (TimeoutError, NatsTimeoutError):  # nats-py raises either when nothing came
                break
            await opener.open(msgs)
            result = handle(msgs)
            if result is not None:
                await result
            seen += len(msgs)
            if progress:
                progress(seen, total)
            # Done at the last matching message counted at the start (the stream's own last
            # sequence is often another subject's: waiting for it cost a fetch timeout per subject).
            if (counted and seen >= total) or msgs[-1].metadata.sequence.stream >= last:
                break
    finally:
        await psub.unsubscribe()
    return seen


class ModelFold:
    """A read model's ``apply(event_type, data)`` over replayed batches: counts the events it took,
    and the payloads that break their contract (counted, not fatal: one bad event must not stop a
    rebuild)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.events = 0
        self.unreadable = 0

    def apply_batch(self, msgs: list[Msg]) -> None:
        for m in msgs:
            event_type = event_type_of(m.subject)
            try:
                if self.model.apply(event_type, from_json(m.data)) is not None:
                    self.events += 1
            except (ValueError, KeyError, TypeError):
                self.unreadable += 1
