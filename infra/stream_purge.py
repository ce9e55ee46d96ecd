"""The one way to empty a stream: explicit, audited, and with the services stopped.

The event streams refuse purges and message deletes for good (nats-server cannot lift
``deny_purge`` / ``deny_delete`` once set), so a legitimate purge (e.g. a test environment, or
data that must go after a legal decision) deletes the stream and creates it again, empty, with
the configuration the server held for it (replicas, retention, duplicate window and protections:
the operator's shell need not know the services' settings) and its sequence numbers continuing
where they were (nothing keyed by a stream sequence is reused). The durable consumers go with the stream: the services recreate them
at start. Before anything is removed, an audit record (who, why, when, what: counts and sequences
only) is appended to ``<data dir>/audit/ops.jsonl`` (owner only) and logged.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats
from nats.js.errors import NotFoundError

from shared.contracts import STREAMS

log = logging.getLogger("koolle.ops")

SERVICES = ("referral", "meetings", "plans", "notifications")
MIN_REASON = 10


class PurgeRefused(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def audit(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line, owner-only file and directory, flushed to disk."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


async def _running_services(nc: nats.NATS) -> list[str]:
    running = []
    for s in SERVICES:
        try:
            await nc.request(f"ops.health.{s}", b"{}", timeout=0.5)
            running.append(s)
        except Exception:  # noqa: BLE001 - no answer: not running
            pass
    return running


async def purge_stream(
    nc: nats.NATS,
    stream: str,
    *,
    reason: str,
    requested_by: str,
    audit_file: Path,
) -> dict[str, Any]:
    """Empty ``stream`` as the module docstring says; returns the audit record."""
    if stream not in STREAMS:
        raise PurgeRefused("unknown_stream")
    if len(reason.strip()) < MIN_REASON:
        raise PurgeRefused("reason_required")
    if not requested_by.strip():
        raise PurgeRefused("requested_by_required")
    running = await _running_services(nc)
    if running:
        raise PurgeRefused("services_running:" + ",".join(running))
    js = nc.jetstream()
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        raise PurgeRefused("unknown_stream") from None
    record = {
        "at": datetime.now(UTC).isoformat(),
        "action": "purge_stream",
        "stream": stream,
        "requested_by": requested_by,
        "reason": reason.strip(),
        "messages": info.state.messages,
        "first_seq": info.state.first_seq,
        "last_seq": info.state.last_seq,
        "consumers": info.state.consumer_count,
    }
    audit(audit_file, record)  # before anything is removed
    log.warning("purging stream %s (%d messages) requested by %s", stream, info.state.messages, requested_by)
    cfg = info.config
    cfg.first_seq = info.state.last_seq + 1
    # The server writes its own metadata (API level, version) on create; a copy of the old is refused.
    cfg.metadata = {k: v for k, v in (cfg.metadata or {}).items() if not k.startswith("_nats.")} or None
    await js.delete_stream(stream)
    await js.add_stream(cfg)
    return record
