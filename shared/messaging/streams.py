"""Declare the JetStream streams of the catalogue (idempotent)."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from shared.contracts import STREAMS, StreamSpec


def stream_config(spec: StreamSpec, duplicate_window: float, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        duplicate_window=duplicate_window,
        num_replicas=replicas,
        allow_msg_schedules=True if spec.schedules else None,
        allow_rollup_hdrs=True if spec.schedules else None,  # timer cancel = rollup tombstone
        description=spec.description or f"Events owned by the {spec.owner} service.",
    )


async def ensure_streams(js: JetStreamContext, duplicate_window: float = 120.0, replicas: int = 1) -> None:
    for spec in STREAMS.values():
        cfg = stream_config(spec, duplicate_window, replicas)
        try:
            await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(cfg)
            continue
        await js.update_stream(cfg)
