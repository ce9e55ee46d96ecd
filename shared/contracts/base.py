"""Base classes for published contracts.

Every event is one pydantic model per name and version. Producers are strict (unknown fields are
an error: ``extra="forbid"``); consumers are tolerant (they parse with ``extra="ignore"``, see
:func:`parse_event`). Input values never appear in validation errors (``hide_input_in_errors``),
so an error message cannot leak personal data into a log.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.errors import message

STRICT = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True)


def _now() -> datetime:
    return datetime.now(UTC)


class _RandomPool(threading.local):
    """Bytes from the operating system's random source, taken 4 KiB at a time: one system call
    per 400 ids instead of one per id (≈ 2 % of the intake's CPU, bench/). Per thread, and
    emptied in a forked child, so no two ids share random bits."""

    buf = b""
    pos = 0


_pool = _RandomPool()
os.register_at_fork(after_in_child=lambda: _pool.__dict__.clear())  # the forking thread's pool


def _random_bytes(n: int) -> bytes:
    pool = _pool
    pos = pool.pos
    if pos + n > len(pool.buf):
        pool.buf, pos = os.urandom(4096), 0
    pool.pos = pos + n
    return pool.buf[pos : pos + n]


def time_ordered_id() -> UUID:
    """A UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits.

    Event and notification ids go into unique indexes in every service (outbox message ids, the
    consumers' inboxes). Random (version 4) ids put each new row on a random page of those
    indexes, so a small transaction dirtied, wrote to the WAL, fsynced and later checkpointed a
    page per id; ids that grow with time all land on the last pages (bench/). Consumers treat
    ids as opaque UUIDs, as before."""
    rand = int.from_bytes(_random_bytes(10), "big")
    value = (time.time_ns() // 1_000_000) << 80 | 0x7 << 76 | (rand >> 68) << 64 | 0b10 << 62 | (rand & ((1 << 62) - 1))
    return UUID(int=value)


class Contract(BaseModel):
    """A published data shape (event payload part, command or reply)."""

    model_config = STRICT
    # A request declares what it needs (a shared.policy.Access: read/write/aggregate/roster_admin,
    # personal data or not, the field naming its case); a retired version names its successor.
    access: ClassVar[Any] = None
    retired_by: ClassVar[str | None] = None
    predecessor: ClassVar[type[Contract] | None] = None  # the request version this one succeeds

    reply_data: ClassVar[type[Contract] | None]
    """On a command or query: the model of its reply's ``data`` (None: the reply carries no data).
    Every request declares it; the AsyncAPI document types each reply with it, and the tests check
    every handler's real replies against it."""


class Event(Contract):
    """The envelope every event carries. Subclasses add the payload fields.

    The subject of an event is ``<event_type>.v<version>``, e.g. ``referral.received.v1``.
    """

    event_type: ClassVar[str]
    version: ClassVar[int] = 1
    stream: ClassVar[str]

    event_id: UUID = Field(default_factory=time_ordered_id, description="Unique id of this event; also its Nats-Msg-Id.")
    occurred_at: datetime = Field(default_factory=_now, description="When it happened (UTC).")
    producer: str = Field(description="The service that produced the event.")
    case_id: UUID = Field(description="The family's case (asiakkuus) this event belongs to; the correlation id of the flow.")
    causation_id: UUID | None = Field(default=None, description="The event or command id that caused this event.")

    @classmethod
    def subject(cls) -> str:
        return f"{cls.event_type}.v{cls.version}"

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


E = TypeVar("E", bound=Event)


TRUSTED = {"trusted": True}
"""Validation context for data already checked where it entered the system: an event read by a
consumer, or an event built from a checked submission (see ``common.Email``)."""


def parse_event(model: type[E], data: bytes | str) -> E:
    """Consumer-side parse: tolerant of fields added later within the same version."""
    return model.model_validate_json(data, extra="ignore", context=TRUSTED)


class FieldError(Contract):
    """One machine-readable validation problem. ``field`` is a dotted path, never a value."""

    field: str = Field(description="Dotted path of the offending field, e.g. 'children.0.personal_id'.")
    code: str = Field(description="Stable machine code, e.g. 'missing', 'invalid_checksum'.")
    message: dict[str, str] = Field(default_factory=dict, description="Human-readable message by language: fi, sv, en.")


class Reply(Contract):
    """Typed reply of a request/reply command or query. ``data`` is the request's ``reply_data``."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)

    ok: bool = Field(description="True when the command was carried out or the query answered.")
    id: str | None = Field(default=None, description="Id of what was created or changed.")
    errors: list[FieldError] = Field(default_factory=list, description="Why it was refused.")
    data: dict[str, Any] | None = Field(
        default=None,
        description="On success, the request's own reply data. On a refusal by identity or policy "
        "(unauthenticated, forbidden, purpose_required, version_retired): a RefusalDetail.",
    )


class RefusalDetail(Contract):
    """``data`` of a reply refused by identity or policy (no personal data in it)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(
        default=None, description="Why, machine-readable: e.g. expired, no_relation_to_case, not_on_team, purpose_missing."
    )
    successor: str | None = Field(default=None, description="version_retired: the subject of the request version to use.")


def reply_problems(request: type[Contract], reply: Reply) -> list[str]:
    """Where a real reply breaks its request's declared ``reply_data`` (empty: it keeps it). ``data``
    may always be empty (a refusal, or a command with nothing to add)."""
    if reply.data is None:
        return []
    if not reply.ok and set(reply.data) <= set(RefusalDetail.model_fields):
        return []  # a refusal's detail (RefusalDetail), the same for every request
    model = getattr(request, "reply_data", None)
    if model is None:
        return [f"{request.__name__} declares no reply_data, but the reply has {sorted(reply.data)}"]
    try:
        model.model_validate(reply.data)
    except ValidationError as exc:
        return [f"{request.__name__} -> {model.__name__}: {e['type']} at {'.'.join(map(str, e['loc']))}" for e in exc.errors()]
    return []


def field_errors(exc: ValidationError) -> list[FieldError]:
    """Turn a pydantic error into machine-readable errors without echoing any input value."""
    out = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "$"
        code = err["type"]
        out.append(FieldError(field=loc, code=code, message=message(code)))
    return out
