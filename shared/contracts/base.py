"""Base classes for published contracts.

Every event is one pydantic model per name and version. Producers are strict (unknown fields are
an error: ``extra="forbid"``); consumers are tolerant (they parse with ``extra="ignore"``, see
:func:`parse_event`). Input values never appear in validation errors (``hide_input_in_errors``),
so an error message cannot leak personal data into a log.
"""

from __future__ import annotations

import os
import re
import threading
import time
import weakref
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar, get_args, get_origin
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from shared.errors import message

# Validators are built at a model's first use, not at import: every service imports the whole
# catalogue but parses and builds only its own part of it (≈ 4 MB of idle memory per service,
# bench/README.md). A service builds its own part at start-up (:func:`build`).
STRICT = ConfigDict(extra="forbid", hide_input_in_errors=True, frozen=True, defer_build=True)


def build(models: Iterable[type[BaseModel]]) -> None:
    """Build these models' deferred validators and serializers now, so that no request or event
    waits for one."""
    for model in models:
        model.model_rebuild()


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


class MultiLine:
    """Marks a free-text field (``Annotated[str, ..., MULTILINE]``): newline, carriage return and tab
    are allowed in it. No other control character is allowed in any text of an inbound contract."""


MULTILINE = MultiLine()

# C0 controls, DEL, C1 controls and lone surrogates. NUL cannot be stored in PostgreSQL text (the
# statement fails), the others are never part of a name, an id or a message someone typed.
_CONTROL_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_FREE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def _marks_free_text(annotation: Any) -> bool:
    """Whether MULTILINE appears anywhere in a field's type (``Annotated``, ``X | None``, ``list[X]``)."""
    if isinstance(annotation, MultiLine):
        return True
    return any(_marks_free_text(a) for a in get_args(annotation) or getattr(annotation, "__metadata__", ()))


def _holds_text(tp: Any) -> bool:
    """Whether a field of this type can hold text (a Literal, number, date or UUID cannot)."""
    if tp is str or tp is Any:
        return True
    if isinstance(tp, type):
        return issubclass(tp, BaseModel)
    origin = get_origin(tp)
    if origin is Literal:
        return False
    if origin is Annotated:
        return _holds_text(get_args(tp)[0])
    return any(_holds_text(a) for a in get_args(tp))


_PLANS: dict[type, tuple[tuple[str, re.Pattern[str]], ...]] = {}


def _text_fields(cls: type[BaseModel]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """The fields of a model that can hold text, each with the pattern of what it may not hold."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = tuple(
            (
                name,
                _CONTROL_FREE_TEXT
                if _marks_free_text(f.annotation) or any(isinstance(m, MultiLine) for m in f.metadata)
                else _CONTROL_ONE_LINE,
            )
            for name, f in cls.model_fields.items()
            if _holds_text(f.annotation)
        )
    return plan


class Contract(BaseModel):
    """A published data shape (event payload part, command or reply).

    Text in an inbound contract (a command, a query, the intake submission and their parts) may not
    hold control characters: error code ``control_character`` on the field. Free-text fields
    (marked ``MULTILINE``) allow newline, carriage return and tab. Events and replies are built by
    the services from checked input and are not checked again (``checks_text = False``), nor is
    anything validated with the ``TRUSTED`` context."""

    model_config = STRICT
    # A request declares what it needs (a shared.policy.Access: read/write/aggregate/roster_admin,
    # personal data or not, the field naming its case); a retired version names its successor.
    access: ClassVar[Any] = None
    retired_by: ClassVar[str | None] = None
    predecessor: ClassVar[type[Contract] | None] = None  # the request version this one succeeds
    checks_text: ClassVar[bool] = True

    reply_data: ClassVar[type[Contract] | None]
    """On a command or query: the model of its reply's ``data`` (None: the reply carries no data).
    Every request declares it; the AsyncAPI document types each reply with it, and the tests check
    every handler's real replies against it."""

    # Checked after pydantic's own validation, in one walk over the validated model's text fields: a
    # validator on every field cost a Python call per field of every contract, events included (the
    # intake's validation took several times as long). JSON with no control-character escape, DEL
    # or C1 character cannot hold one, so then the walk is skipped.
    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, *args: Any, **kwargs: Any) -> Self:
        model = super().model_validate_json(json_data, *args, **kwargs)
        if cls.checks_text and not _trusted(kwargs) and _may_hold_control(json_data):
            _raise_on_control(cls, model)
        return model

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Self:
        model = super().model_validate(obj, *args, **kwargs)
        if cls.checks_text and not _trusted(kwargs):
            _raise_on_control(cls, model)
        return model


def _trusted(kwargs: dict[str, Any]) -> bool:
    context = kwargs.get("context")
    return bool(context and context.get("trusted"))


# In JSON text a control character is an escape (\u0000, \n, \t, ...; an escaped backslash before
# an "n" is a harmless false alarm) or, for DEL and the C1 range, the raw character (UTF-8 C2 80-C2
# 9F); a lone surrogate is an escape too. An escaped letter such as \u00e4 is not suspect. Separate
# patterns: one alternation of all of them scanned ≈ 15 times slower.
_ESCAPE = r"\\(?:[bfnrt]|u00[01]|u007[fF]|u00[89]|u[dD][89a-fA-F])"
_ESCAPE_BYTES = re.compile(_ESCAPE.encode())
_C1_BYTES = re.compile(rb"\xc2[\x80-\x9f]")
_ESCAPE_TEXT = re.compile(_ESCAPE)
_RAW_TEXT = re.compile("[\x7f-\x9f]")


def _may_hold_control(data: str | bytes | bytearray) -> bool:
    if isinstance(data, str):
        return _ESCAPE_TEXT.search(data) is not None or _RAW_TEXT.search(data) is not None
    return _ESCAPE_BYTES.search(data) is not None or b"\x7f" in data or (b"\xc2" in data and _C1_BYTES.search(data) is not None)


Location = tuple[str | int, ...]


def _control_locations(model: BaseModel, loc: Location, out: list[Location]) -> None:
    values = model.__dict__
    for name, pattern in _text_fields(type(model)):
        value = values[name]
        if value is not None:
            _walk(value, (*loc, name), pattern, out)


def _walk(value: Any, loc: Location, pattern: re.Pattern[str], out: list[Location]) -> None:
    if isinstance(value, str):
        if pattern.search(value) is not None:
            out.append(loc)
    elif isinstance(value, Contract):
        if value.checks_text:
            _control_locations(value, loc, out)
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            _walk(v, (*loc, i), pattern, out)
    elif isinstance(value, dict):
        for k, v in value.items():
            if isinstance(k, str) and pattern.search(k) is not None:
                out.append(loc)
            _walk(v, (*loc, str(k)), pattern, out)


def _raise_on_control(cls: type[BaseModel], model: BaseModel) -> None:
    found: list[Location] = []
    _control_locations(model, (), found)
    if found:
        raise ValidationError.from_exception_data(
            cls.__name__,
            [
                {
                    "type": PydanticCustomError(
                        "control_character",
                        "Control characters (such as NUL) are not allowed; free text allows newline and tab only.",
                    ),
                    "loc": loc,
                    "input": None,
                }
                for loc in found
            ],
            hide_input=True,
        )


class Event(Contract):
    """The envelope every event carries. Subclasses add the payload fields.

    The subject of an event is ``<event_type>.v<version>``, e.g. ``referral.received.v1``.
    """

    event_type: ClassVar[str]
    version: ClassVar[int] = 1
    stream: ClassVar[str]
    checks_text: ClassVar[bool] = False
    # A version that carried contact details: what the outbox publishes instead (directory.py).
    public_form: ClassVar[type[Event] | None] = None
    directory_form: ClassVar[type[Event] | None] = None

    event_id: UUID = Field(default_factory=time_ordered_id, description="Unique id of this event; also its Nats-Msg-Id.")
    occurred_at: datetime = Field(default_factory=_now, description="When it happened (UTC).")
    producer: str = Field(description="The service that produced the event.")
    case_id: UUID = Field(description="The family's case (asiakkuus) this event belongs to; the correlation id of the flow.")
    causation_id: UUID | None = Field(default=None, description="The event or command id that caused this event.")

    @property
    def erased(self) -> bool:
        """The family's personal data in this event is gone (the case was erased): the runtime
        opened its sealed personal fields after the case's key was destroyed, and they hold their
        erased values (shared/sealing.py, :func:`mark_erased`)."""
        return id(self) in _ERASED

    # Staff-facing: published on ``<subject>.<municipality>.<team>`` (shared/contracts/routes.py).
    routed: ClassVar[bool] = False
    # For the notifications service only: published as ``directory.<event>`` alone (directory.py).
    private: ClassVar[bool] = False

    @classmethod
    def subject(cls) -> str:
        return f"{cls.event_type}.v{cls.version}"

    @classmethod
    def filter_subject(cls) -> str:
        """What a consumer of every copy of this event filters on: the subject, or all its routes."""
        return f"{cls.event_type}.v{cls.version}.>" if cls.routed else cls.subject()

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    def published(self) -> list[tuple[str, Event]]:
        """(message id, event) the outbox publishes for this event (see shared/contracts/directory.py)."""
        from .directory import published_forms

        return published_forms(self)


E = TypeVar("E", bound=Event)


# The events opened after their case's erasure, by id while they live. Not a pydantic private
# attribute: one of those makes pydantic run its post-init hook at every construction of every
# event, ≈ 1.1 µs of each of the ≈ 30 events the services build and parse per referral
# (bench/README.md, twenty-second session), for a flag that is rarely set.
_ERASED: set[int] = set()


def mark_erased(event: Event) -> None:
    """Mark ``event`` as opened after its case's erasure (its ``erased`` is then true)."""
    key = id(event)
    if key not in _ERASED:
        _ERASED.add(key)
        weakref.finalize(event, _ERASED.discard, key)  # the id is free for another object once this one is gone


TRUSTED = {"trusted": True}
"""Validation context for data already checked where it entered the system: an event read by a
consumer, or an event built from a checked submission (see ``common.Email``)."""

_ABSENT = object()


def field_or_none(obj: Any, name: str) -> Any:
    """``getattr(obj, name, None)`` without the AttributeError that pydantic raises and formats for a
    name the model does not have (≈ 2.2 µs against 0.1 µs): the outbox and the router ask for fields
    that only some events have, several times per event. A model's fields are in its ``__dict__``;
    anything else the class defines (a property) is read as before."""
    value = vars(obj).get(name, _ABSENT) if hasattr(obj, "__dict__") else _ABSENT
    if value is _ABSENT:
        return getattr(obj, name, None) if hasattr(type(obj), name) else None
    return value


def parse_event(model: type[E], data: bytes | str) -> E:
    """Consumer-side parse: tolerant of fields added later within the same version."""
    return model.model_validate_json(data, extra="ignore", context=TRUSTED)


class FieldError(Contract):
    """One machine-readable validation problem. ``field`` is a dotted path, never a value."""

    checks_text: ClassVar[bool] = False

    field: str = Field(description="Dotted path of the offending field, e.g. 'children.0.personal_id'.")
    code: str = Field(description="Stable machine code, e.g. 'missing', 'invalid_checksum'.")
    message: dict[str, str] = Field(default_factory=dict, description="Human-readable message by language: fi, sv, en.")


class Reply(Contract):
    """Typed reply of a request/reply command or query. ``data`` is the request's ``reply_data``."""

    model_config = ConfigDict(extra="ignore", hide_input_in_errors=True)
    checks_text: ClassVar[bool] = False

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
        default=None,
        description="Why, machine-readable: e.g. expired, no_relation_to_case, not_on_team, purpose_missing; every "
        "value with its meaning in docs/errors.md, 'Refusal reasons'.",
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
        model.model_validate(reply.data, context=TRUSTED)  # built by the service from checked data, as an event
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
