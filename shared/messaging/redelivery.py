"""An operator's dead-letter replay, answered by the service that owns the consumer.

Ops asks ``ops.replay.<service>`` with the stream, stream sequence and durable of a dead letter
(the name of the subscription that gave up on it). The service trusts none of it: the durable must
name one of its own subscriptions, the stream that subscription's stream, and the message, re-read
by the service from that stream by sequence, must be on the subscription's filter subject. The
message then goes through that subscription's normal path (inbox
dedup applies: an event already handled has no second effect). Nothing is published on anyone's
behalf, so a planted dead letter can at most make a service handle again a message it consumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.messaging.consumer import EventConsumer
from shared.messaging.deadletters import StoredMessage
from shared.messaging.streams import subject_matches

OUTCOMES = ("handled", "duplicate", "contract_violation", "handler_failed")
REFUSALS = ("bad_request", "unknown_consumer", "not_found", "subject_mismatch", "unavailable")


def replay_subject(service: str) -> str:
    return f"ops.replay.{service}"


class ReplayRequest(BaseModel):
    """Replay one stored message through one of the service's durable consumers."""

    model_config = ConfigDict(extra="forbid")
    stream: str = Field(min_length=1, max_length=64, pattern=r"^[A-Z0-9_]+$", description="The consumer's stream.")
    sequence: int = Field(gt=0, description="Stream sequence of the message the consumer gave up on.")
    durable: str = Field(min_length=1, max_length=200, pattern=r"^[a-z0-9_-]+$", description="The durable consumer.")


async def answer_replay(consumers: Sequence[EventConsumer], js: JetStreamContext, body: bytes) -> dict[str, Any]:
    """``{"ok": true, "outcome": ...}`` or ``{"ok": false, "error": <code>}`` (codes in REFUSALS / OUTCOMES)."""
    try:
        req = ReplayRequest.model_validate_json(body)
    except ValidationError:
        return {"ok": False, "error": "bad_request"}
    # A dead letter names the subscription that gave up on it (a durable consumer feeds several).
    found = next(((c, s) for c in consumers if c.stream == req.stream and (s := c.subscription(req.durable))), None)
    if found is None:
        return {"ok": False, "error": "unknown_consumer"}
    consumer, sub = found
    try:
        raw = await js.get_msg(req.stream, req.sequence)
    except NotFoundError:
        return {"ok": False, "error": "not_found"}
    except Exception:  # noqa: BLE001 - NATS trouble: the operator retries
        return {"ok": False, "error": "unavailable"}
    if not raw.subject or not subject_matches(sub.subject, raw.subject):
        return {"ok": False, "error": "subject_mismatch"}
    msg = StoredMessage(req.stream, req.sequence, raw.subject, raw.data or b"", dict(raw.headers or {}))
    outcome = await consumer.redeliver(msg, sub)
    if outcome in ("handled", "duplicate"):
        return {"ok": True, "outcome": outcome}
    return {"ok": False, "error": outcome}
