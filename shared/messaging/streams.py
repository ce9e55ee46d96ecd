"""Declare the JetStream streams of the catalogue (idempotent)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from shared.contracts import STREAMS, StreamSpec


def stream_config(spec: StreamSpec, duplicate_window: float, replicas: int = 1, max_age: float = 0.0) -> StreamConfig:
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
        allow_rollup_hdrs=bool(spec.schedules),  # timer cancel = rollup tombstone
        # The outbox relay publishes a scan's rows of one stream as one atomic batch: stored with one
        # write instead of one fsync'd write per event (shared/messaging/relay.py).
        allow_atomic=True,
        description=spec.description or f"Events owned by the {spec.owner} service.",
    )


@lru_cache(maxsize=4096)  # the relay asks for every row it publishes; subjects repeat
def stream_of(subject: str) -> str | None:
    """The catalogue stream that captures ``subject`` (NATS wildcard match), or None."""
    tokens = subject.split(".")
    for spec in STREAMS.values():
        for pattern in spec.subjects:
            p = pattern.split(".")
            if p[-1] == ">" and len(tokens) >= len(p) and all(a in ("*", b) for a, b in zip(p[:-1], tokens, strict=False)):
                return spec.name
            if len(p) == len(tokens) and all(a in ("*", b) for a, b in zip(p, tokens, strict=True)):
                return spec.name
    return None


async def ensure_streams(
    js: JetStreamContext, duplicate_window: float = 120.0, replicas: int = 1, max_ages: Mapping[str, float] | None = None
) -> None:
    """Declare or update every stream. ``max_ages``: seconds per stream name (default: the retention
    settings' defaults, Settings.stream_max_ages)."""
    if max_ages is None:
        from shared.settings import Settings

        max_ages = Settings.model_construct().stream_max_ages()
    for spec in STREAMS.values():
        cfg = stream_config(spec, duplicate_window, replicas, max_ages.get(spec.name, 0.0))
        try:
            await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(cfg)
            continue
        await js.update_stream(cfg)
