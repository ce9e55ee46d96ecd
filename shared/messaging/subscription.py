"""What a service consumes: a subscription is one subject and the handler it feeds; a service's
subscriptions on one stream share one durable JetStream consumer (``Consumed``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.aio.msg import Msg

from shared.contracts import Event, parse_event
from shared.messaging.streams import subject_matches
from shared.storage.uow import UnitOfWork

Handler = Callable[[Any, UnitOfWork], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    """One subject and its handler (with the other subscriptions on its stream, one durable consumer).

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


@dataclass(frozen=True)
class Consumed:
    """What one durable JetStream consumer feeds: a service's subscriptions on one stream.

    Events a service reads are often stored together (a linked referral's ``referral.linked`` and
    its ``consent.given``, one transaction's events); with one consumer per subject each took its
    own pull, transaction and fsync. One consumer with the
    stream's filters takes them as one batch and handles them in one transaction, in stream order
    (bench/README.md). Each subscription keeps its own name (``Subscription.durable``) for the
    inbox, dead letters, replay and metrics.
    """

    service: str
    stream: str
    subs: tuple[Subscription, ...]

    @property
    def durable(self) -> str:
        """The JetStream consumer's name: a lone subscription's own, else ``<service>-from-<stream>``
        (no subject starts with ``from``, so it names no subscription)."""
        if len(self.subs) == 1:
            return self.subs[0].durable
        return f"{self.service}-from-{self.stream.lower().replace('_', '-')}"

    @property
    def subjects(self) -> list[str]:
        return [s.subject for s in self.subs]

    def route(self, subject: str) -> Subscription | None:
        """The subscription whose filter ``subject`` matches (the filters do not overlap); a lone one's
        messages are the server's filter's."""
        if len(self.subs) == 1:
            return self.subs[0]
        return next((s for s in self.subs if subject_matches(s.subject, subject)), None)

    def linger(self, default: float) -> float:
        """The shortest of its subscriptions' lingers: one on someone's critical path is not held up."""
        return min(s.linger if s.linger is not None else default for s in self.subs)

    @property
    def takes_turns(self) -> bool:
        return all(s.takes_turns for s in self.subs)


def _overlap(a: str, b: str) -> bool:
    """Whether some subject matches both filters (JetStream refuses overlapping filters on one consumer)."""
    p, q = a.split("."), b.split(".")
    for i in range(max(len(p), len(q))):
        x = p[i] if i < len(p) else None
        y = q[i] if i < len(q) else None
        if x == ">" or y == ">":
            return x is not None and y is not None
        if x is None or y is None:
            return False
        if x != y and "*" not in (x, y):
            return False
    return True


def consumed_by_stream(service: str, subs: list[Subscription]) -> list[Consumed]:
    """The service's subscriptions as durable consumers: one per stream, in order of first
    subscription; a subscription whose filter overlaps another's on that stream gets its own."""
    groups: list[list[Subscription]] = []
    for sub in subs:
        home = next(
            (g for g in groups if g[0].stream == sub.stream and not any(_overlap(s.subject, sub.subject) for s in g)), None
        )
        if home is None:
            groups.append([sub])
        else:
            home.append(sub)
    return [Consumed(service, g[0].stream, tuple(g)) for g in groups]
