"""Delivery channels behind one interface.

* :class:`LogChannel` "delivers" by appending a line to a spool file (laptop default).
* :class:`EmailChannel` sends over real SMTP (aiosmtplib), with an .ics invitation for meetings.
* The SMS channel is a provider adapter in ``sms.py`` (46elks), chosen by configuration.
* The portal channel is not an I/O adapter: the dispatcher publishes ``notification.portal_message``
  in the same transaction that records the notification as sent.

Every channel can answer "did you already take this notification?" (:meth:`status`), so a crash
between handing a message over and recording it leads to reconciliation, not a blind resend.
Errors carry machine codes only; no address or text ever goes into an exception or a log line.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol

import aiosmtplib


class DeliveryError(Exception):
    """A channel could not take the message. ``code`` is machine-readable and safe to log."""

    temporary: bool = True

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class TemporaryFailure(DeliveryError):
    temporary = True


class PermanentFailure(DeliveryError):
    temporary = False


@dataclass(frozen=True)
class OutboundMessage:
    notification_id: str  # also the provider idempotency key
    recipient_id: str
    address: str
    language: str
    subject: str
    body: str
    ics: bytes | None = None
    ics_method: str = "REQUEST"
    html: str | None = None  # an HTML alternative of the body (the plan itself)
    attachments: tuple[tuple[str, str, bytes], ...] = ()  # (file name, MIME type, bytes)


@dataclass(frozen=True)
class Receipt:
    provider_ref: str | None = None
    receipt: str | None = None  # delivered | undeliverable | None (not known yet)


@dataclass(frozen=True)
class ProviderStatus:
    state: str  # "sent": the provider has it | "not_sent": it does not | "unknown": cannot tell
    provider_ref: str | None = None
    receipt: str | None = None


class Channel(Protocol):
    name: str

    async def send(self, msg: OutboundMessage) -> Receipt: ...

    async def status(self, notification_id: str) -> ProviderStatus: ...


class Journal:
    """Append-only, fsynced record of notification ids handed over to a provider.

    Group commit: lines appended while a write is in progress go out together with one fsync, and
    the fsync runs in a worker thread, so the event loop never waits on the disk."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.ids: set[str] = set()
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    self.ids.add(json.loads(line)["notification_id"])
                except (ValueError, KeyError):
                    continue  # a torn last line after a crash: that message was not recorded
        self._queue: list[tuple[str, str, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(self, record: dict[str, object]) -> None:
        line = json.dumps(record, ensure_ascii=False)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((line, str(record["notification_id"]), fut))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        await fut

    def _write(self, data: str) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await asyncio.to_thread(self._write, "".join(line + "\n" for line, _, _ in batch))
            except Exception as exc:  # noqa: BLE001 - each waiting sender sees the failure
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for _, nid, fut in batch:
                self.ids.add(nid)
                if not fut.done():
                    fut.set_result(None)


class LogChannel:
    """Writes the message and the recipient's contact id to a spool file, never the address."""

    name = "log"
    max_concurrent = 1000  # a round's lines go to the journal together, with one fsync

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._journal = Journal(self.path)

    async def send(self, msg: OutboundMessage) -> Receipt:
        await self._journal.append(
            {
                "notification_id": msg.notification_id,
                "at": datetime.now(UTC).isoformat(),
                "recipient_id": msg.recipient_id,
                "language": msg.language,
                "subject": msg.subject,
                "body": msg.body,
            }
        )
        return Receipt(provider_ref=msg.notification_id, receipt="delivered")

    async def delivered(self, notification_id: str) -> bool:
        return notification_id in self._journal.ids

    async def status(self, notification_id: str) -> ProviderStatus:
        if notification_id in self._journal.ids:
            return ProviderStatus("sent", notification_id, "delivered")
        return ProviderStatus("not_sent")


class EmailChannel:
    """SMTP. The Message-ID is derived from the notification id, and each accepted message is
    journalled (fsync) before the dispatcher records it: after a crash in between, the journal says
    it went. (SMTP has no status query; in the tiny window between the server's 250 and the journal
    line a resend carries the same Message-ID, which mail systems use to drop the copy.)"""

    name = "email"
    resend_when_unknown = True  # no journal line: the server most likely never said 250

    def __init__(
        self,
        host: str,
        port: int,
        journal: Path,
        mail_from: str = "Koolle <no-reply@koolle.example>",
        username: str = "",
        password: str = "",
        start_tls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port = host, port
        self.mail_from = mail_from
        self.username, self.password = username, password
        self.start_tls = start_tls
        self.timeout = timeout
        self._journal = Journal(journal)

    @property
    def organizer(self) -> str:
        return self.mail_from.split("<")[-1].rstrip(">").strip()

    def build(self, msg: OutboundMessage) -> EmailMessage:
        m = EmailMessage()
        m["From"] = self.mail_from
        m["To"] = msg.address
        m["Subject"] = msg.subject
        m["Message-ID"] = f"<{msg.notification_id}@koolle.example>"
        m["Date"] = format_datetime(datetime.now(UTC))
        m["Auto-Submitted"] = "auto-generated"
        m.set_content(msg.body)
        if msg.html is not None:
            m.add_alternative(msg.html, subtype="html")
        for filename, mime, data in msg.attachments:
            maintype, subtype = mime.split("/", 1)
            m.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
        if msg.ics is not None:
            m.add_alternative(msg.ics.decode("utf-8"), subtype="calendar", params={"method": msg.ics_method})
            m.add_attachment(msg.ics, maintype="application", subtype="ics", filename="invite.ics")
        m["Content-Language"] = msg.language  # after the body: set_content() drops Content-* headers
        return m

    async def send(self, msg: OutboundMessage) -> Receipt:
        message = self.build(msg)
        try:
            await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username or None,
                password=self.password or None,
                start_tls=self.start_tls,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            if any(400 <= c < 500 for c in codes):
                raise TemporaryFailure("provider_unavailable") from None
            raise PermanentFailure("recipient_refused") from None
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code >= 500:
                raise PermanentFailure("provider_rejected") from None
            raise TemporaryFailure("provider_unavailable") from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            raise TemporaryFailure("provider_unavailable") from None
        await self._journal.append({"notification_id": msg.notification_id, "at": datetime.now(UTC).isoformat()})
        return Receipt(provider_ref=message["Message-ID"])

    async def status(self, notification_id: str) -> ProviderStatus:
        if notification_id in self._journal.ids:
            return ProviderStatus("sent", f"<{notification_id}@koolle.example>")
        return ProviderStatus("unknown")
