"""Delivery channels. One interface; real e-mail and SMS adapters plug in here later.

:class:`LogChannel` "delivers" by appending a line to a spool file. It writes the message and the
recipient's contact id, never the address, and it can tell whether a notification id was already
delivered, so a crash between delivering and recording leads to reconciliation, not a resend.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol


class Channel(Protocol):
    name: str

    async def send(self, notification_id: str, address: str, recipient_id: str, language: str, subject: str, body: str) -> None: ...

    async def delivered(self, notification_id: str) -> bool: ...


class LogChannel:
    name = "log"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._ids: set[str] = set()
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    self._ids.add(json.loads(line)["notification_id"])
                except (ValueError, KeyError):
                    continue  # a torn last line after a crash: that message was not delivered
        self._lock = asyncio.Lock()

    async def send(self, notification_id: str, address: str, recipient_id: str, language: str, subject: str, body: str) -> None:
        line = json.dumps(
            {
                "notification_id": notification_id,
                "at": datetime.now(timezone.utc).isoformat(),
                "recipient_id": recipient_id,
                "language": language,
                "subject": subject,
                "body": body,
            },
            ensure_ascii=False,
        )
        async with self._lock:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())
            self._ids.add(notification_id)

    async def delivered(self, notification_id: str) -> bool:
        return notification_id in self._ids
