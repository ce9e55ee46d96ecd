"""Test doubles for the notifications channels: a real SMTP server (aiosmtpd) and a fake SMS gateway
speaking the 46elks SMS API that ``services.notifications.sms.FortySixElks`` adapts (both on free local ports)."""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import json
import uuid
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
    """The 46elks SMS API as documented (https://46elks.com/docs), on loopback, base ``{url}``:

    * ``POST /a1/sms``, HTTP Basic auth, form-encoded ``from``, ``to``, ``message`` (``dontlog``,
      ``whendelivered`` optional): 200 JSON ``{id, status: "created", from, to, message, direction,
      created, parts, estimated_cost}``; 400 ``Invalid to number`` (plain text); 401 bad credentials;
    * ``GET /a1/sms/{id}``: the message with its ``status`` (created | sent | delivered | failed);
    * delivery reports: :meth:`deliver` moves a message on and POSTs ``id``, ``status``,
      ``delivered`` form-encoded to its ``whendelivered`` URL, as the provider does.
    """

    port: int = field(default_factory=free_port)
    username: str = "u-koolle"
    password: str = "secret"
    down: bool = False  # answer 503 to every send
    auto_deliver: bool = True  # the carrier confirms at once (status delivered on GET)
    posts: int = 0
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # by provider id
    invalid_numbers: set[str] = field(default_factory=set)
    reports_sent: list[tuple[str, dict[str, str], int]] = field(default_factory=list)  # (url, form, answer)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/a1"

    async def __aenter__(self) -> FakeSmsGateway:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._server.close()
        await self._server.wait_closed()

    def to(self, number: str) -> list[dict[str, Any]]:
        return [m for m in self.messages.values() if m["to"] == number]

    async def deliver(self, provider_id: str, status: str = "delivered") -> int:
        """The carrier's answer: the message becomes ``status`` and its delivery report is POSTed."""
        import httpx

        m = self.messages[provider_id]
        m["status"] = status
        form = {"id": provider_id, "status": status}
        if status == "delivered":
            m["delivered"] = form["delivered"] = "2026-11-24T10:00:02Z"
        answer = 0
        if m.get("whendelivered"):
            async with httpx.AsyncClient() as client:
                answer = (await client.post(m["whendelivered"], data=form)).status_code
            self.reports_sent.append((m["whendelivered"], form, answer))
        return answer

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            status, payload = self._route(method, target, headers, body)
            data = json.dumps(payload).encode() if isinstance(payload, dict) else payload.encode()
            ctype = "application/json" if isinstance(payload, dict) else "text/plain"
            writer.write(
                f"HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
                + data
            )
            await writer.drain()
        finally:
            writer.close()

    def _route(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any] | str]:
        expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        if headers.get("authorization") != expected:
            return 401, "Authorization required"
        path = urlsplit(target).path
        if method == "GET" and path.startswith("/a1/sms/"):
            m = self.messages.get(path.rsplit("/", 1)[1])
            return (200, {k: v for k, v in m.items() if k != "whendelivered"}) if m else (404, "Not found")
        if method != "POST" or path != "/a1/sms":
            return 404, "Not found"
        self.posts += 1
        if self.down:
            return 503, "Service unavailable"
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8")).items()}
        for key in ("from", "to", "message"):
            if key not in form:
                return 400, f"Missing key {key}"
        if form["to"] in self.invalid_numbers or not form["to"].startswith("+"):
            return 400, "Invalid to number"
        pid = f"s{uuid.uuid4().hex}"
        m = {
            "id": pid,
            "status": "delivered" if self.auto_deliver else "created",
            "from": form["from"],
            "to": form["to"],
            "message": form["message"],
            "direction": "outgoing",
            "created": "2026-11-24T10:00:00.000000",
            "parts": 1,
            "whendelivered": form.get("whendelivered"),
            "dontlog": form.get("dontlog"),
        }
        self.messages[pid] = m
        answer = {k: v for k, v in m.items() if k not in ("whendelivered", "dontlog")} | {
            "status": "created",
            "estimated_cost": 5200,
        }
        if form.get("dontlog") == "message":
            answer.pop("message")
        return 200, answer
