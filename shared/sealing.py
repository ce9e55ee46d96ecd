"""Crypto-shredding: the personal fields of events sealed with a per-case data key.

Each case has a random 256-bit data key in the JetStream key-value bucket ``CASE_KEYS`` (history 1),
which every service reads. The first service to seal a personal field of a case (normally the
referral service, with the case's ``referral.received``) creates it; the referral service makes
keys ahead for the cases it will open (shared/key_reserve.py). The runtime seals every field
marked ``Personal[...]`` (shared/contracts/personal.py) when an event is written to the outbox, so
streams, replicas, backups and dead letters only ever hold ciphertext, and opens them before a
handler sees the event. Keys are cached in memory (a hit costs a dict lookup and one AES-GCM call).

Erasing a family destroys its key: the bucket's message holding it is deleted with the server's
secure erase (overwritten on disk), and a tombstone (``erased``) takes its place so that no service
creates a new key for the case. Every copy of the case's sealed fields is then unreadable; opening
one gives the field's *erased value* (its default, an empty list or text, or none) and marks the
event :attr:`~shared.contracts.base.Event.erased`, never an exception carrying data.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import secrets
from collections import OrderedDict
from functools import cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KV_DEL, KV_MARKER_REASON, KV_OP, KV_PURGE
from pydantic import TypeAdapter, ValidationError
from pydantic_core import to_json

from shared.contracts.base import TRUSTED, Event, mark_erased
from shared.contracts.personal import SEALED_PREFIX, Sealed, is_personal
from shared.internals.natspy import core_client
from shared.messaging.atomic import ATOMIC_BATCH_MAX, ATOMIC_BATCH_MIN, publish_atomic
from shared.messaging.directget import last_of_subjects
from shared.outage import DependencyUnavailable

log = logging.getLogger("koolle.sealing")

KEYS_BUCKET = "CASE_KEYS"
KEYS_STREAM = f"KV_{KEYS_BUCKET}"


def key_subject(case_id: str) -> str:
    """The subject of a case's key in the bucket (as nats-py's key-value API writes it)."""
    return f"$KV.{KEYS_BUCKET}.{case_id}"


TOMBSTONE = b"erased"
NONCE = 12


class Erased:
    """What opening a sealed value of an erased case gives: nothing of the value."""

    _instance: Erased | None = None

    def __new__(cls) -> Erased:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ERASED"


ERASED = Erased()


class CaseKeyUnavailable(DependencyUnavailable):
    """No data key could be had for a case (the bucket unreachable). The message names no data."""


@cache
def personal_fields(model: type[Event]) -> tuple[str, ...]:
    """The fields of an event marked ``Personal[...]`` (computed once per class)."""
    return tuple(name for name, f in model.model_fields.items() if is_personal(f.metadata))


@cache
def _adapter(model: type[Event], name: str) -> TypeAdapter[Any]:
    annotation: Any = model.model_fields[name].annotation
    return TypeAdapter(annotation)


@cache
def erased_value(model: type[Event], name: str) -> Any:
    """The value an erased field takes: its default, else the first of [], None, "", {} its type
    accepts (so handlers and statistics keep working on the rest of the event)."""
    f = model.model_fields[name]
    if not f.is_required():
        return f.get_default(call_default_factory=True)
    adapter = _adapter(model, name)
    candidates: tuple[Any, ...] = ([], None, "", {})
    for candidate in candidates:
        try:
            return adapter.validate_python(candidate, context=TRUSTED)
        except ValidationError:
            continue
    raise TypeError(f"{model.__name__}.{name} has no erased value: give the personal field a default")


def _aad(case_id: str, model: type[Event], name: str) -> bytes:
    # Binds a ciphertext to its case, event version and field: it cannot be moved elsewhere.
    return f"{case_id}|{model.event_type}.v{model.version}|{name}".encode()


def seal_value(cipher: AESGCM, case_id: str, model: type[Event], name: str, value: Any) -> str:
    nonce = os.urandom(NONCE)
    plain = to_json(value)  # compact UTF-8, as the json module's with these options, ≈ 5× faster
    sealed = cipher.encrypt(nonce, plain, _aad(case_id, model, name))
    return SEALED_PREFIX + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()


def open_value(cipher: AESGCM | None, case_id: str, model: type[Event], name: str, sealed: str) -> Any:
    """The field's value, or :data:`ERASED` when the case's key is gone (``cipher`` None) or does
    not open it (a key destroyed and the case's data sealed again is not the same key)."""
    if cipher is None:
        return ERASED
    raw = sealed[len(SEALED_PREFIX) :]
    try:
        blob = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        plain = cipher.decrypt(blob[:NONCE], blob[NONCE:], _aad(case_id, model, name))
    except (InvalidTag, ValueError):
        return ERASED
    return _adapter(model, name).validate_json(plain, context=TRUSTED)


def stream_config() -> StreamConfig:
    """The key bucket, as nats-py's key-value API expects it, except that a message may be deleted
    (the server's secure erase of a destroyed key) and that nothing may purge or roll it up."""
    return StreamConfig(
        name=KEYS_STREAM,
        subjects=[f"$KV.{KEYS_BUCKET}.>"],
        storage=StorageType.FILE,
        max_msgs_per_subject=1,
        discard=DiscardPolicy.NEW,
        allow_rollup_hdrs=False,
        deny_delete=False,
        deny_purge=True,
        allow_direct=True,
        # The keys of many new cases are made as one atomic batch (CaseKeys.make_many).
        allow_atomic=True,
        num_replicas=1,
        description="Per-case data keys of the personal fields of events (crypto-shredding, docs/operations.md §11).",
    )


async def ensure_key_bucket(js: JetStreamContext, replicas: int = 1) -> None:
    cfg = stream_config()
    cfg.num_replicas = replicas
    try:
        await js.stream_info(KEYS_STREAM)
    except NotFoundError:
        await js.add_stream(cfg)
        return
    await js.update_stream(cfg)


def _cipher_of(key: bytes | None) -> AESGCM | None:
    return None if key is None else AESGCM(key)


def leaves_sealed(handler: Any) -> Any:
    """Mark an event handler that reads none of its event's personal fields: the runtime gives it the
    event as it travelled, those fields still sealed, and fetches no case key for it (a service whose
    handlers of an event are all so marked never opens the family's data in it, shared/service.py)."""
    handler.opens_personal_data = False
    return handler


def opens_personal_data(handler: Any) -> bool:
    return getattr(handler, "opens_personal_data", True)


class CaseKeys:
    """The case keys as this process knows them: a bounded in-memory cache over the bucket.
    A cached ``None`` means the case was erased.

    The cache holds the keys, not ciphers: an ``AESGCM`` holds OpenSSL contexts of about 2.5 KB,
    so 20,000 cached ciphers held 50 MB in every service, against 1.3 µs to build one when asked."""

    def __init__(self, js: JetStreamContext, cache_size: int = 20000, *, atomic: bool = True) -> None:
        self.js = js
        self.atomic = atomic  # KOOLLE_OUTBOX_ATOMIC_BATCHES: false for a server older than 2.12
        self._kv: Any = None
        self._cache: OrderedDict[str, bytes | None] = OrderedDict()
        self._size = cache_size

    async def _bucket(self) -> Any:
        if self._kv is None:
            self._kv = await self.js.key_value(KEYS_BUCKET)
        return self._kv

    def known(self, case_id: str) -> bool:
        """Whether the case's key (or its erasure) is in the cache."""
        return case_id in self._cache

    def cached(self, case_id: str) -> AESGCM | None | bool:
        """The cached key's cipher, None (erased), or False (not in the cache)."""
        if case_id not in self._cache:
            return False
        self._cache.move_to_end(case_id)
        return _cipher_of(self._cache[case_id])

    def remember(self, case_id: str, key: bytes | None) -> None:
        """Cache the case's key (None: erased)."""
        self._cache[case_id] = key
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)

    def forget(self, case_id: str) -> None:
        self._cache.pop(case_id, None)

    async def make(self, case_id: str) -> tuple[int, bytes]:
        """A new random key for ``case_id`` in the bucket, not cached: its message's revision and the
        key. ``KeyWrongLastSequenceError`` when the case has a key (or a tombstone) already."""
        key = secrets.token_bytes(32)
        return await (await self._bucket()).create(case_id, key), key

    async def entry(self, case_id: str) -> Any:
        """The bucket's entry for ``case_id`` (revision and value), not cached; None when it has none."""
        try:
            return await (await self._bucket()).get(case_id)
        except NotFoundError:
            return None

    async def fetch_many(self, case_ids: list[str]) -> None:
        """Cache the keys of ``case_ids`` (an erased case's as None), all with one request (a batched
        direct get, shared/messaging/directget.py); a case without a key is left out, as :meth:`cipher`
        leaves it. One case, or a server older than 2.12 (``atomic`` off): one request each. Should the
        batch fail, each case is asked alone."""
        if self.atomic and len(case_ids) > 1:
            try:
                subjects = {case_id: key_subject(case_id) for case_id in case_ids}
                found = await last_of_subjects(core_client(self.js), KEYS_STREAM, list(subjects.values()))
            except Exception as exc:  # noqa: BLE001 - the one-by-one path below decides, per case
                log.info("case keys: a batch of %d not read (%s); one by one", len(case_ids), type(exc).__name__)
            else:
                for case_id, subject in subjects.items():
                    got = found.get(subject)
                    if got is None or got.headers.get(KV_OP) in (KV_DEL, KV_PURGE) or KV_MARKER_REASON in got.headers:
                        continue  # none (never made, or a delete marker): not cached, as cipher() leaves it
                    self.remember(case_id, None if got.data == TOMBSTONE else got.data)
                return
        await asyncio.gather(*(self.cipher(c) for c in case_ids), return_exceptions=True)

    def batched(self, count: int) -> bool:
        """Whether ``count`` new keys are made as atomic batches (:meth:`make_many`) rather than one by
        one: one fsync'd write and one reply per batch instead of per key. Measured with 250 keys: 10
        against 40 µs of this process's CPU and 16 against 91 µs of nats-server's per key, and 7
        against 62 ms until all were stored (bench/README.md). A few keys are cheaper one by one."""
        return self.atomic and count >= ATOMIC_BATCH_MIN

    async def make_many(self, case_ids: list[str]) -> list[tuple[int, bytes]]:
        """New random keys for ``case_ids`` in the bucket, not cached, in atomic batches of up to
        ``ATOMIC_BATCH_MAX``: each key's message revision and the key, in order. Each message expects
        its subject to be empty, as :meth:`make` does, so a batch holding a case that has a key (or
        a tombstone) already is refused whole: ``BatchRefused`` (shared/messaging/atomic.py), and
        none of that batch's keys is stored. Batches stored before it stay (keys nothing uses yet)."""
        made: list[tuple[int, bytes]] = []
        nc = core_client(self.js)
        for start in range(0, len(case_ids), ATOMIC_BATCH_MAX):
            chunk = case_ids[start : start + ATOMIC_BATCH_MAX]
            keys = [secrets.token_bytes(32) for _ in chunk]
            messages = [
                (key_subject(c), k, {"Nats-Expected-Last-Subject-Sequence": "0"}) for c, k in zip(chunk, keys, strict=True)
            ]
            last = await publish_atomic(nc, messages)
            first = last - len(chunk) + 1
            made += [(first + i, k) for i, k in enumerate(keys)]
        return made

    async def ciphers_created(self, case_ids: list[str]) -> list[AESGCM | None]:
        """The ciphers of ``case_ids``, their keys created where missing, as :meth:`cipher` with
        ``create``. Many new cases (the intake's batch under load) get their keys as atomic batches;
        should a batch be refused (a case had a key already) or fail, every case is asked alone."""
        if self.batched(len(case_ids)) and not any(self.known(c) for c in case_ids):
            try:
                made = await self.make_many(case_ids)
            except Exception as exc:  # noqa: BLE001 - the one-by-one path below decides, per case
                log.info("case keys: a batch of %d not made (%s); one by one", len(case_ids), type(exc).__name__)
            else:
                for case_id, (_, key) in zip(case_ids, made, strict=True):
                    self.remember(case_id, key)
                return [_cipher_of(key) for _, key in made]
        return list(await asyncio.gather(*(self.cipher(c, create=True) for c in case_ids)))

    async def cipher(self, case_id: str, *, create: bool = False) -> AESGCM | None:
        """The case's cipher; None once the case is erased (or, when not ``create``, has no key)."""
        found = self.cached(case_id)
        if found is not False:
            return found  # type: ignore[return-value]
        try:
            kv = await self._bucket()
            value = None
            if create:
                # Asked to create: mostly a new case (the intake's), so the create goes first and
                # a key that is already there (or a tombstone) is read only then: one round trip.
                try:
                    _, value = await self.make(case_id)
                except KeyWrongLastSequenceError:  # there already: another service's, or erased
                    value = (await kv.get(case_id)).value
            else:
                try:
                    value = (await kv.get(case_id)).value
                except NotFoundError:
                    value = None
        except Exception as exc:
            # The bucket's trouble, never the payload's (the key is the case's UUID): a timeout while
            # a cluster elects the bucket's leader, or a bucket missing or forbidden by configuration,
            # which every message would meet alike. A consumer waits for it (shared/outage.py).
            raise CaseKeyUnavailable(f"case key bucket unavailable ({type(exc).__name__})") from exc
        if value is None and not create:
            return None  # never created: nothing was sealed with it (e.g. a destroyed, erased key)
        key = None if value in (None, TOMBSTONE) else value
        self.remember(case_id, key)
        return _cipher_of(key)

    async def destroy(self, case_id: str) -> bool:
        """Destroy the case's key (secure erase of its message) and leave the tombstone. Returns
        whether a key was there. Idempotent."""
        kv = await self._bucket()
        try:
            entry = await kv.get(case_id)
        except NotFoundError:
            entry = None
        had_key = entry is not None and entry.value not in (None, TOMBSTONE)
        if had_key:
            # A plain delete only marks the message; the server's default (no_erase false)
            # overwrites it on disk first.
            await self.js.delete_msg(KEYS_STREAM, entry.revision)
        if entry is None or entry.value != TOMBSTONE:
            await kv.put(case_id, TOMBSTONE)
        self.remember(case_id, None)
        return had_key


class _Unsealed:
    """An outbox payload still to be sealed at commit (the case's key was not in the cache)."""

    __slots__ = ("event",)

    def __init__(self, event: Event) -> None:
        self.event = event


class Sealer:
    """Seals at emit, opens at consume (the runtime's hooks: shared/storage/outbox.py and uow.py, shared/messaging/consumer.py, shared/service.py)."""

    def __init__(self, keys: CaseKeys) -> None:
        self.keys = keys
        # The last event opened and its opened copy: the handlers of one event run one after the
        # other with the same event object, and open it once.
        self._last: tuple[Any, Any] | None = None

    # -- producing --------------------------------------------------------------------------------
    def payload(self, event: Event) -> bytes | _Unsealed:
        """The outbox payload: the event's JSON with its personal fields sealed, or a placeholder
        that :meth:`complete` seals at commit when the key has to be fetched first."""
        model = type(event)
        if not personal_fields(model):
            return event.to_json()
        found = self.keys.cached(str(event.case_id))
        if found is False:
            return _Unsealed(event)
        return self._sealed(event, found)  # type: ignore[arg-type]

    async def complete(self, messages: list[dict[str, Any]]) -> None:
        waiting = [m for m in messages if isinstance(m["payload"], _Unsealed)]
        if not waiting:
            return
        # A batch of new cases (the intake's): their keys fetched or created side by side, not one
        # round trip after another while the transaction waits.
        cases = sorted({str(m["payload"].event.case_id) for m in waiting})
        ciphers = dict(zip(cases, await self.keys.ciphers_created(cases), strict=True))
        for m in waiting:
            event = m["payload"].event
            m["payload"] = self._sealed(event, ciphers[str(event.case_id)])

    def _sealed(self, event: Event, cipher: AESGCM | None) -> bytes:
        model = type(event)
        data = event.model_dump(mode="json")
        case_id = str(event.case_id)
        for name in personal_fields(model):
            value = data.get(name)
            if value is None:
                continue
            # An erased case: the family's data is not written again, in any form.
            data[name] = seal_value(cipher, case_id, model, name, value) if cipher is not None else erased_value(model, name)
        return to_json(data)  # pydantic-core's (Rust): the same bytes as the json module's here, ≈ 5× faster

    # -- consuming --------------------------------------------------------------------------------
    async def prefetch(self, events: list[Any]) -> None:
        """Fetch the keys a batch of events will need, side by side and before its transaction
        (a new case per event, e.g. referral.received: one round trip for the batch, not one per
        event with the transaction open). Best effort: a failure shows again when an event is
        opened, and goes through the consumer's retries."""
        cases = {
            str(ev.case_id)
            for ev in events
            if isinstance(ev, Event) and any(isinstance(getattr(ev, n), Sealed) for n in personal_fields(type(ev)))
        }
        missing = [c for c in cases if not self.keys.known(c)]
        if missing:
            await self.keys.fetch_many(missing)

    async def open(self, event: Any) -> Any:
        """The event with its sealed fields opened; an erased case's fields take their erased
        values and the event is marked ``erased``."""
        if not isinstance(event, Event):
            return event
        model: type[Event] = type(event)
        if not personal_fields(model):
            return event
        last = self._last
        if last is not None and last[0] is event:
            return last[1]
        sealed = {n: v for n in personal_fields(model) if isinstance(v := getattr(event, n), Sealed)}
        if not sealed:
            return event
        case_id = str(event.case_id)
        cipher = await self.keys.cipher(case_id)
        update: dict[str, Any] = {}
        erased = False
        for name, value in sealed.items():
            opened = open_value(cipher, case_id, model, name, value)
            if opened is ERASED:
                erased = True
                opened = erased_value(model, name)
            update[name] = opened
        result = event.model_copy(update=update)
        if erased:
            mark_erased(result)
        self._last = (event, result)
        return result


def opened_event(model: type[Event], data: bytes, cipher: AESGCM | None) -> Event:
    """Parse and open one event with a given cipher (tools and tests; the services use :class:`Sealer`)."""
    from shared.contracts.base import parse_event

    event = parse_event(model, data)
    update: dict[str, Any] = {}
    erased = False
    for name in personal_fields(model):
        value = getattr(event, name)
        if isinstance(value, Sealed):
            opened = open_value(cipher, str(event.case_id), model, name, value)
            if opened is ERASED:
                erased, opened = True, erased_value(model, name)
            update[name] = opened
    result = event.model_copy(update=update)
    if erased:
        mark_erased(result)
    return result
