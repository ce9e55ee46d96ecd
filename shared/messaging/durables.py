"""A service's durable consumer of several subjects: created, its filters kept up to date, and taking
over where the one-subject consumers it replaces had got to.

Until 2026-12-03 each subscription had a durable consumer of its own (``Subscription.durable``).
The first start of this version creates the stream's shared consumer (``Consumed.durable``) from the
earliest point any of the old ones had not finished: what one of them had handled already comes
again, and the inbox (keyed by the subscription's name, as before) gives it no second effect. The
old consumers are left in place for older replicas still running; ``infra.ops unused-consumers``
lists them, and ``--delete`` removes them once every replica runs this version
(docs/operations.md).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import BadRequestError, NotFoundError

log = logging.getLogger("koolle.consumer")


async def handover_start(js: JetStreamContext, stream: str, previous: Sequence[str]) -> int | None:
    """The stream sequence to start from so that nothing the ``previous`` consumers had not finished
    is missed; None when none of them exists (a new install: from the stream's start)."""
    # Read first: anything stored later is delivered in any case.
    last = (await js.stream_info(stream)).state.last_seq
    floors = []
    for name in previous:
        try:
            info = await js.consumer_info(stream, name)
        except NotFoundError:
            continue
        caught_up = not info.num_pending and not info.num_ack_pending
        floors.append(last if caught_up else info.ack_floor.stream_seq if info.ack_floor else 0)
    return min(floors) + 1 if floors else None


def _filters(config: ConsumerConfig) -> list[str]:
    return sorted(config.filter_subjects or ([config.filter_subject] if config.filter_subject else []))


async def ensure_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig, previous: Sequence[str]) -> None:
    """Create the durable consumer ``config`` names, or bring an existing one's filters up to date.

    A subscription added by a later version is consumed from the consumer's place on: its events
    stored before that place are not handled (a read model is rebuilt with ``infra.ops rebuild``).
    """
    name = config.durable_name
    if name is None:
        raise ValueError("a durable consumer needs a name")
    try:
        info = await js.consumer_info(stream, name)
    except NotFoundError:
        start = await handover_start(js, stream, previous)
        if start is not None:
            config = dataclasses.replace(config, deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)
            log.info("consumer %s on %s takes over from sequence %d", name, stream, start)
        try:
            await js.add_consumer(stream, config)
        except BadRequestError:
            await js.consumer_info(stream, name)  # another replica created it first: bind to that one
        return
    if _filters(info.config) != _filters(config):
        kept = dataclasses.replace(
            config,
            deliver_policy=info.config.deliver_policy,
            opt_start_seq=info.config.opt_start_seq,
            opt_start_time=info.config.opt_start_time,
        )
        await js.add_consumer(stream, kept)
