"""Durable timers that are never early.

A timer is a JetStream message schedule (``Nats-Schedule: @at …``) holding the event to emit. The
schedule does not fire into the event's public subject: it fires into the owning service's private
``timers.<service>.fired``, and the service emits the event from there through its outbox, stamped
with the moment it really fired. So:

- ``@at`` has whole seconds; the due time is rounded *up* to the next second, never down (rounding
  down had timers fire up to 0.9 s before ``due_at``);
- the event is stored after the schedule fired, so never before its due time;
- ``occurred_at`` is when the timer fired (never earlier than the due time, even if this host's clock
  is behind the server's), not the time planned when it was scheduled.

The fired message carries the schedule's headers (nats-server copies them), which name the event's
subject and the exact due time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from nats.aio.msg import Msg
from pydantic import ValidationError

from shared.contracts import EVENTS, RETIRED_EVENTS, Event, parse_event
from shared.messaging.subscription import Subscription

TARGET_HEADER = "Koolle-Timer-Target"
DUE_HEADER = "Koolle-Timer-Due"


def fired_subject(service: str) -> str:
    return f"timers.{service}.fired"


def service_of(timer_subject: str) -> str:
    """``timers.<service>.…`` → ``<service>``: a timer subject names its owner."""
    parts = timer_subject.split(".")
    if len(parts) < 3 or parts[0] != "timers":
        raise ValueError("a timer subject is timers.<service>.<name>")
    return parts[1]


def at_header(due: datetime) -> str:
    """The schedule's ``@at`` time: whole seconds, rounded up so that the timer is never early."""
    ts = math.ceil(due.astimezone(UTC).timestamp())
    return "@at " + datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def schedule_headers(event: Event, timer_subject: str, due: datetime) -> dict[str, str]:
    return {
        "Nats-Schedule": at_header(due),
        "Nats-Schedule-Target": fired_subject(service_of(timer_subject)),
        TARGET_HEADER: event.subject(),
        DUE_HEADER: due.astimezone(UTC).isoformat(),
        "Koolle-Event-Id": str(event.event_id),
    }


@dataclass(frozen=True)
class FiredTimer:
    """A schedule that fired: the event it holds and when it was due."""

    event: Event
    due: datetime


# A timer scheduled with a retired version's subject fires as that version; the outbox publishes its successor.
_MODELS: dict[str, type[Event]] = {**{m.subject(): m for m in RETIRED_EVENTS}, **{e.subject: e.model for e in EVENTS}}


def _due(value: str) -> datetime | None:
    try:
        due = datetime.fromisoformat(value)
    except ValueError:
        return None
    return due if due.tzinfo is not None else None


def _parse(msg: Msg) -> FiredTimer:
    headers = msg.headers or {}
    model = _MODELS.get(headers.get(TARGET_HEADER, ""))
    due = _due(headers.get(DUE_HEADER, ""))
    if model is None or due is None:
        # Not a timer this runtime scheduled: a contract violation, dead-lettered where people see it.
        missing = TARGET_HEADER if model is None else DUE_HEADER
        raise ValidationError.from_exception_data("FiredTimer", [{"type": "missing", "loc": (missing,), "input": None}])
    return FiredTimer(parse_event(model, msg.data), due)


async def _fire(timer: FiredTimer, uow: Any) -> None:
    fired_at = max(uow.now(), timer.due)
    uow.emit(timer.event.model_copy(update={"occurred_at": fired_at}))


def fired_subscription(service: str, stream: str) -> Subscription:
    """The service's consumer of its own fired timers (inbox key: the event's id, so a redelivered
    fired message emits nothing twice)."""
    return Subscription(
        service,
        fired_subject(service),
        stream,
        _fire,
        parse=_parse,
        key=lambda timer, m: f"timer:{timer.event.event_id}",
        linger=0.0,  # a due timer is someone's deadline
    )
