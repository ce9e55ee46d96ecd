"""A small client for front doors and staff apps: publish a submission, send a command, get a typed reply."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.client import Client as NatsClient

from shared.contracts import INTAKE_SUBJECT, Contract, Reply
from shared.internals.natspy import socket_is_tls
from shared.settings import Settings

log = logging.getLogger("koolle.client")


class PlaintextRefused(ConnectionError):
    """TLS is configured but the server did not upgrade the connection."""


def uses_tls(nc: NatsClient) -> bool:
    """Whether the connection's socket is TLS now. nats-py upgrades only when the server's INFO
    asks for it, even with a TLS context or a tls:// URL, so a server without TLS (or an impostor
    that strips the flag) would otherwise get a plaintext connection."""
    return socket_is_tls(nc)  # nats-py's internals, in shared/internals/natspy.py


async def require_tls(nc: NatsClient) -> None:
    """Close ``nc`` and raise if it is not TLS (call after connecting when TLS is configured)."""
    if not uses_tls(nc):
        await nc.close()
        raise PlaintextRefused("TLS is configured but the NATS server did not use it; connection closed")


def refuse_plaintext(get_connection: Callable[[], NatsClient | None]) -> Callable[[], Awaitable[None]]:
    """A ``reconnected_cb`` that closes a connection which came back without TLS: fail closed (the
    service stops being ready) rather than go on in plaintext. nats-py calls it only after it has
    resent subscriptions and buffered publishes, so only handshake-first TLS (no plaintext byte at
    all) also covers those; this stops everything after them."""
    closing: set[asyncio.Task[None]] = set()

    async def reconnected() -> None:
        nc = get_connection()
        if nc is not None and not uses_tls(nc):
            log.error("NATS reconnected without TLS although TLS is configured: closing the connection")
            # Not awaited here: close() cancels the reconnect task this callback runs in.
            task = asyncio.get_running_loop().create_task(nc.close())
            closing.add(task)
            task.add_done_callback(closing.discard)

    return reconnected


async def connect(settings: Settings | None = None, **options: Any) -> NatsClient:
    """A nats-py connection with the settings' identity and TLS (``KOOLLE_NATS_*``); ``options``
    add to or override them (e.g. ``connect_timeout``). With TLS configured, plaintext is refused."""
    settings = settings or Settings()
    holder: list[NatsClient] = []
    kwargs = {**settings.nats_connect_options(), **options}
    if settings.nats_tls_wanted() and "reconnected_cb" not in options:
        kwargs["reconnected_cb"] = refuse_plaintext(lambda: holder[0] if holder else None)
    nc = await nats.connect(**kwargs)
    holder.append(nc)
    if settings.nats_tls_wanted():
        await require_tls(nc)
    return nc


async def submit_referral(nc: NatsClient, submission: dict[str, Any] | Contract, msg_id: str | None = None) -> int:
    """Publish to the intake subject with Nats-Msg-Id = submission id; returns the stream sequence."""
    body = submission.model_dump(mode="json") if isinstance(submission, Contract) else submission
    ack = await nc.jetstream().publish(
        INTAKE_SUBJECT, json.dumps(body).encode(), headers={"Nats-Msg-Id": msg_id or body["submission_id"]}
    )
    return int(ack.seq)


async def call(
    nc: NatsClient, subject: str, payload: dict[str, Any] | Contract, timeout: float = 5.0, attempts: int = 3
) -> Reply:
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
