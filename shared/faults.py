"""Named crash points for the fault-injection suite. Inert unless a test sets
``KOOLLE_CRASH_POINTS``, e.g. ``consumer.after_commit_before_ack:3`` (die at the 3rd time the point
is reached). Dying is ``os._exit``: no cleanup, no flush, exactly like a SIGKILL at that line."""

from __future__ import annotations

import os

POINTS = (
    "uow.after_commit_before_publish",  # state + outbox committed, relay has not published
    "relay.after_publish_before_mark",  # PubAck received, row not yet marked sent
    "consumer.after_commit_before_ack",  # effect + inbox committed, message not acked
    "notifications.after_send_before_record",  # message delivered by the channel, not recorded
)


def _parse(spec: str) -> dict[str, int]:
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, n = part.partition(":")
        out[name] = int(n or 1)
    return out


_armed = _parse(os.environ.get("KOOLLE_CRASH_POINTS", ""))
_hits: dict[str, int] = {}


def crash_point(name: str) -> None:
    if not _armed or name not in _armed:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= _armed[name]:
        os._exit(137)
