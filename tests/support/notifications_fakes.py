"""Test doubles for the notifications channels: a real SMTP server (aiosmtpd) and a fake SMS gateway
speaking the vendor REST API that ``RestSmsGateway`` adapts (both on free local ports)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller

from infra.natsserver import free_port


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address in self.server.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.server.messages.append(
            (list(envelope.rcpt_tos), email.message_from_bytes(envelope.content, policy=email.policy.default))
        )
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.messages: list[tuple[list[str], Message]] = []
        self.refuse: set[str] = set()
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port)

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.controller.stop()

    def to(self, address: str) -> list[Message]:
        return [m for rcpts, m in self.messages if address in rcpts]


@dataclass
class FakeSmsGateway:
    """``POST /v1/messages`` (Idempotency-Key honoured) and ``GET /v1/messages?reference=``."""

    port: int = field(default_factory=free_port)
    down: bool = False  # answer 503 to every send
    posts: int = 0
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # by idempotency key
    invalid_numbers: set[str] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FakeSmsGateway:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._server.close()
        await self._server.wait_closed()

    def to(self, number: str) -> list[dict[str, Any]]:
        return [m for m in self.messages.values() if m["to"] == number]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status, payload = self._route(method, target, headers, body)
            data = json.dumps(payload).encode()
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        finally:
            writer.close()

    def _route(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        url = urlsplit(target)
        if url.path != "/v1/messages":
            return 404, {"error": "not_found"}
        if method == "GET":
            ref = parse_qs(url.query).get("reference", [""])[0]
            m = next((m for m in self.messages.values() if m["reference"] == ref), None)
            return (200, {"id": m["id"], "status": m["status"]}) if m else (404, {"error": "not_found"})
        self.posts += 1
        if self.down:
            return 503, {"error": "unavailable"}
        req = json.loads(body)
        key = headers.get("idempotency-key", "")
        if key in self.messages:
            m = self.messages[key]
            return 200, {"id": m["id"], "status": m["status"]}
        if req["to"] in self.invalid_numbers:
            return 400, {"error": "invalid_number"}
        m = {"id": f"gw-{len(self.messages) + 1}", "status": "delivered", **req}
        self.messages[key] = m
        return 201, {"id": m["id"], "status": "queued"}
