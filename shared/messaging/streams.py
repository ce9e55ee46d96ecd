"""Declare the JetStream streams of the catalogue (idempotent)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError

from shared.contracts import STREAMS, StreamSpec

STREAM_NOT_FOUND = 10059  # JetStream's error code for a stream that does not exist


class StreamsNotDeclared(RuntimeError):
    """A service that does not declare the streams (``KOOLLE_MANAGE_STREAMS=false``) started before
    they were declared: ops declares them (``python -m infra.ops declare-streams``)."""


class StreamLayoutOutdated(RuntimeError):
    """An event stream was created by an earlier version with its timers inside it: nats-server
    cannot turn message schedules off on an existing stream, so rollup and purge stay allowed on it
    until it is migrated (docs/operations.md, "Streams that refuse erasure")."""


def stream_config(spec: StreamSpec, duplicate_window: float, replicas: int = 1, max_age: float = 0.0) -> StreamConfig:
    """History cannot be erased: no rollup headers, no message delete, no purge (a stream of timers
    must allow rollup and purge: nats-server forces both with message schedules; a timer is
    cancelled by a rollup tombstone on its own subject). The dead-letter stream allows message
    deletes: a replayed dead letter is removed by ops, the only identity with that right."""
    return StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        duplicate_window=min(duplicate_window, max_age) if max_age else duplicate_window,  # the server requires it
        # Retention (Settings.stream_max_ages): the server drops messages older than this; 0 keeps them.
        max_age=max_age or None,
        num_replicas=replicas,
        allow_msg_schedules=True if spec.schedules else None,
        allow_rollup_hdrs=spec.schedules,  # timer cancel = rollup tombstone
        deny_purge=not spec.schedules,
        deny_delete=spec.name != "DEADLETTER",
        # The outbox relay publishes a scan's rows of one stream as one atomic batch: stored with one
        # write instead of one fsync'd write per event (shared/messaging/relay.py).
        allow_atomic=True,
        description=spec.description or f"Events owned by the {spec.owner} service.",
    )


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard match of ``subject`` against a filter ``pattern`` (``*`` one token, ``>`` the rest)."""
    p, t = pattern.split("."), subject.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(t) > i
        if i >= len(t) or (tok != "*" and tok != t[i]):
            return False
    return len(p) == len(t)


@lru_cache(maxsize=4096)  # the relay asks for every row it publishes; subjects repeat
def stream_of(subject: str) -> str | None:
    """The catalogue stream that captures ``subject`` (NATS wildcard match), or None."""
    for spec in STREAMS.values():
        for pattern in spec.subjects:
            if subject_matches(pattern, subject):
                return spec.name
    return None


async def ensure_streams(
    js: JetStreamContext, duplicate_window: float = 120.0, replicas: int = 1, max_ages: Mapping[str, float] | None = None
) -> None:
    """Create the catalogue's streams, or bring existing ones to this configuration (denying
    rollup, delete and purge is allowed on an existing stream; turning message schedules off is
    not: an event stream of the earlier layout raises :class:`StreamLayoutOutdated`). ``max_ages``:
    seconds per stream name (default: the retention settings' defaults, Settings.stream_max_ages)."""
    if max_ages is None:
        from shared.settings import Settings

        max_ages = Settings.model_construct().stream_max_ages()
    for spec in STREAMS.values():
        cfg = stream_config(spec, duplicate_window, replicas, max_ages.get(spec.name, 0.0))
        try:
            info = await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(cfg)
            continue
        if info.config.allow_msg_schedules and not spec.schedules:
            raise StreamLayoutOutdated(
                f"stream {spec.name} holds timers (earlier layout, rollup and purge allowed): migrate it as "
                'docs/operations.md "Streams that refuse erasure" says (a development data dir: make clean)'
            )
        try:
            await js.update_stream(cfg)
        except APIError as exc:
            raise RuntimeError(f"stream {spec.name} cannot take its configuration: {exc.description}") from exc
    from shared.sealing import ensure_key_bucket  # the per-case data keys (crypto-shredding)

    await ensure_key_bucket(js, replicas)
