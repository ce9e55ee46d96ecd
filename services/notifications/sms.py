"""SMS providers: adapters for real providers' documented HTTP APIs, chosen by configuration
(``KOOLLE_NOTIFICATIONS_SMS_PROVIDER``; see :data:`PROVIDERS` and the README's "Adding an SMS provider").

:class:`FortySixElks` speaks the 46elks API (https://46elks.com/docs):

* send: ``POST {base}/sms`` (base ``https://api.46elks.com/a1``), HTTP Basic auth with the API
  username and password, form-encoded ``from``, ``to``, ``message``, ``dontlog=message`` (the
  provider keeps no copy of the text) and, when configured, ``whendelivered`` (the delivery-report
  webhook). 200 ``{"id": "s…", "status": "created", …}``; a refusal is a 4xx with a plain-text
  reason (e.g. ``Invalid to number``).
* status: ``GET {base}/sms/{id}`` -> ``{"id", "status": created | sent | delivered | failed, …}``.
* delivery report: the provider POSTs ``id``, ``status`` (sent | delivered | failed) and
  ``delivered`` form-encoded to the ``whendelivered`` URL; :class:`DeliveryReportReceiver` takes them.

46elks has no idempotency key: the provider's id is journalled (fsync) as soon as it answers, so a
crash after the send is reconciled from the journal, not sent again (the window between the
provider's answer and the journal line is the only place a duplicate can come from).
Errors carry machine codes only; no number or text ever goes into an exception or a log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from .channels import Journal, OutboundMessage, PermanentFailure, ProviderStatus, Receipt, TemporaryFailure

log = logging.getLogger("koolle.notifications.sms")

# A provider's status word -> our delivery receipt (None: not final yet).
_RECEIPTS = {"delivered": "delivered", "failed": "undeliverable"}


class FortySixElks:
    """The SMS channel over the 46elks REST API."""

    name = "sms"
    resend_when_unknown = True  # no journal line: the provider most likely never answered 200

    def __init__(
        self,
        base_url: str,
        journal: Path,
        username: str = "",
        password: str = "",
        sender: str = "Koolle",
        delivery_report_url: str = "",
        timeout: float = 10.0,
    ) -> None:
        self.base = base_url.rstrip("/")
        self.sender = sender
        self.delivery_report_url = delivery_report_url
        self._journal = Journal(journal)
        self._provider_ids: dict[str, str] = _provider_ids(Path(journal))
        self.reports: dict[str, str] = {}  # provider id -> receipt, from delivery reports
        self._client = httpx.AsyncClient(timeout=timeout, auth=(username, password) if username else None)

    async def close(self) -> None:
        await self._client.aclose()

    async def send(self, msg: OutboundMessage) -> Receipt:
        form = {"from": self.sender, "to": msg.address, "message": msg.body, "dontlog": "message"}
        if self.delivery_report_url:
            form["whendelivered"] = self.delivery_report_url
        try:
            r = await self._client.post(f"{self.base}/sms", data=form)
        except httpx.HTTPError:
            raise TemporaryFailure("provider_unavailable") from None
        if r.status_code == 200:
            provider_id = str(r.json().get("id"))
            await self._journal.append({"notification_id": msg.notification_id, "provider_id": provider_id})
            self._provider_ids[msg.notification_id] = provider_id
            return Receipt(provider_ref=provider_id, receipt=_RECEIPTS.get(str(r.json().get("status"))))
        if r.status_code == 429 or r.status_code >= 500:
            raise TemporaryFailure("provider_unavailable")
        if r.status_code == 400 and "to" in r.text.lower().split():
            raise PermanentFailure("invalid_phone")  # "Invalid to number"
        raise PermanentFailure("provider_rejected")

    async def status(self, notification_id: str) -> ProviderStatus:
        """Sent when the journal has the provider's id; its delivery report, when one came in or
        the provider's ``GET /sms/{id}`` says it is final."""
        provider_id = self._provider_ids.get(notification_id)
        if provider_id is None:
            return ProviderStatus("unknown")
        if provider_id in self.reports:
            return ProviderStatus("sent", provider_id, self.reports[provider_id])
        try:
            r = await self._client.get(f"{self.base}/sms/{provider_id}")
        except httpx.HTTPError:
            return ProviderStatus("sent", provider_id)
        receipt = _RECEIPTS.get(str(r.json().get("status"))) if r.status_code == 200 else None
        return ProviderStatus("sent", provider_id, receipt)

    def report(self, form: dict[str, str]) -> bool:
        """A delivery report as the provider POSTs it (``id``, ``status``, ``delivered``)."""
        receipt = _RECEIPTS.get(form.get("status", ""))
        if not form.get("id") or receipt is None:
            return False
        self.reports[form["id"]] = receipt
        return True


def _provider_ids(journal: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    if journal.exists():
        for line in journal.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                out[rec["notification_id"]] = rec["provider_id"]
            except (ValueError, KeyError):
                continue  # a torn last line after a crash
    return out


PROVIDERS: dict[str, Callable[..., Any]] = {"46elks": FortySixElks}
"""SMS providers by configuration name (``KOOLLE_NOTIFICATIONS_SMS_PROVIDER``)."""


class DeliveryReportReceiver:
    """The webhook the provider POSTs delivery reports to (``whendelivered``): form-encoded
    ``id``, ``status``, ``delivered``; answered 204 (46elks retries anything outside 200-204).
    Listens on ``KOOLLE_NOTIFICATIONS_SMS_REPORT_PORT`` behind the county's reverse proxy; a
    ``?key=`` query parameter must match ``_SMS_REPORT_KEY`` when one is configured."""

    def __init__(self, provider: FortySixElks, host: str, port: int, key: str = "", on_report: Callable[[], None] | None = None):
        self.provider, self.host, self.port, self.key = provider, host, port, key
        self.on_report = on_report
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        status = 400
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            lines = head.decode("latin-1").split("\r\n")
            method, target = lines[0].split(" ")[:2]
            headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
            length = min(int(headers.get("content-length", "0")), 4096)
            body = await asyncio.wait_for(reader.readexactly(length), 5)
            key = parse_qs(urlsplit(target).query).get("key", [""])[0]
            if method != "POST":
                status = 405
            elif self.key and key != self.key:
                status = 403
            else:
                form = {k: v[0] for k, v in parse_qs(body.decode("utf-8")).items()}
                status = 204 if self.provider.report(form) or form.get("status") == "sent" else 400
                if status == 204 and self.on_report is not None:
                    self.on_report()
        except Exception:  # noqa: BLE001 - a malformed report is refused, never fatal
            status = 400
        reason = {204: "No Content", 400: "Bad Request", 403: "Forbidden", 405: "Method Not Allowed"}[status]
        try:
            writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
        finally:
            writer.close()
