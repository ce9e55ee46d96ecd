"""The command log: the reply given to each command id, so that a retried command gets the same reply."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, MetaData, String, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.storage.columns import JSONText, UTCDateTime

if TYPE_CHECKING:
    from shared.storage.database import Database


def command_log_table(metadata: MetaData) -> Table:
    return Table(
        "command_log",
        metadata,
        Column("command_id", String(64), primary_key=True),
        Column("subject", String(255), nullable=False),
        Column("reply", JSONText, nullable=False),
        Column("recorded_at", UTCDateTime, nullable=False),
    )


class CommandReplies:
    """The unit of work's command-log side (idempotent commands)."""

    db: Database
    session: AsyncSession
    now: Callable[[], datetime]

    async def recall_reply(self, command_id: str) -> Any:
        """The reply already given to this command id, if the staff app is retrying."""
        log = self.db.metadata.tables["command_log"]
        return await self.session.scalar(select(log.c.reply).where(log.c.command_id == command_id))

    async def remember_reply(self, command_id: str, subject: str, reply: Any) -> None:
        log = self.db.metadata.tables["command_log"]
        await self.session.execute(
            insert(log).values(command_id=command_id, subject=subject, reply=reply, recorded_at=self.now())
        )
