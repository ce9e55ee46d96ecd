"""What a service consumes: one durable JetStream consumer of one subject, and the handler it feeds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.aio.msg import Msg

from shared.contracts import Event, parse_event
from shared.storage.uow import UnitOfWork

Handler = Callable[[Any, UnitOfWork], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    """One durable consumer of one subject.

    ``parse`` turns the raw message into what the handler takes (a ValidationError sends the message
    to the dead letters); ``key`` names it for the inbox (an event's id, or the stream sequence).
    """

    service: str
    subject: str
    stream: str
    handler: Handler
    parse: Callable[[Msg], Any]
    key: Callable[[Any, Msg], str]
    # Seconds to wait after the first message for more to arrive, so that several are handled in
    # one transaction (None: the service's setting). 0 for a consumer on someone's critical path.
    linger: float | None = None
    # Whether its batches wait their turn behind earlier-stored batches of the process's other
    # consumers (batches.py). The intake depends on no other stream's events: a front door's
    # submission must not wait out a lingering consumer's gathering (p50 +100 ms at a trickle).
    takes_turns: bool = True
    # Called with a batch's parsed events before its transaction (best effort: the runtime fetches
    # the cases' keys of sealed fields side by side, shared/sealing.py).
    prepare: Callable[[list[Any]], Awaitable[None]] | None = None
    # Called in the batch's transaction with its events not handled before (inbox), before their
    # handlers: a read model reads the rows the batch will fold its events into in one statement
    # instead of one per event (a round trip each on PostgreSQL). Set from a handler's ``preload``.
    preload: Callable[[list[Any], UnitOfWork], Awaitable[None]] | None = None

    @property
    def durable(self) -> str:
        return f"{self.service}-{self.subject.removesuffix('.>').replace('.', '-')}"  # a routed event: all routes

    @classmethod
    def for_event(cls, service: str, event: type[Event], handler: Handler) -> Subscription:
        return cls(
            service,
            event.filter_subject(),
            event.stream,
            handler,
            parse=lambda m: parse_event(event, m.data),
            key=lambda ev, m: str(ev.event_id),
        )
