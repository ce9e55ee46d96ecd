"""A small client for front doors and staff apps: publish a submission, send a command, get a typed reply."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import nats

from shared.contracts import INTAKE_SUBJECT, Contract, Reply


async def submit_referral(nc: nats.NATS, submission: dict[str, Any] | Contract, msg_id: str | None = None) -> int:
    """Publish to the intake subject with Nats-Msg-Id = submission id; returns the stream sequence."""
    body = submission.model_dump(mode="json") if isinstance(submission, Contract) else submission
    ack = await nc.jetstream().publish(
        INTAKE_SUBJECT, json.dumps(body).encode(), headers={"Nats-Msg-Id": msg_id or body["submission_id"]}
    )
    return ack.seq


async def call(nc: nats.NATS, subject: str, payload: dict[str, Any] | Contract, timeout: float = 5.0, attempts: int = 3) -> Reply:
    """Request/reply with retries on timeout. Commands carry a command_id, so a retry is safe."""
    body = payload.model_dump_json().encode() if isinstance(payload, Contract) else json.dumps(payload, default=str).encode()
    last: Exception | None = None
    for i in range(attempts):
        try:
            msg = await nc.request(subject, body, timeout=timeout)
            return Reply.model_validate_json(msg.data)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
            last = exc
            await asyncio.sleep(0.2 * (i + 1))
    raise TimeoutError(f"no reply on {subject}") from last
