"""The command log: the reply given to each command id, so that a retried command gets the same reply."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Column, MetaData, String, Table, insert, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from shared.storage.columns import JSONText, UTCDateTime

if TYPE_CHECKING:
    from shared.storage.database import Database


def command_log_table(metadata: MetaData) -> Table:
    table = Table(
        "command_log",
        metadata,
        Column("command_id", String(64), primary_key=True),
        Column("subject", String(255), nullable=False),
        Column("reply", JSONText, nullable=False),
        Column("recorded_at", UTCDateTime, nullable=False),
        # who gave the command (as audit records name them): their own retry gets the first reply
        # even when the command took their access away (a transfer to another team)
        Column("actor", String(100), nullable=True),
        # what was asked (SHA-256 of the subject and the validated command): the same id with other
        # content is refused, never answered with the first reply as if it had been carried out
        Column("request_digest", String(64), nullable=True),
    )
    metadata.info.setdefault("upgrades", []).extend([_column_added("actor", 100), _column_added("request_digest", 64)])
    return table


def _column_added(name: str, length: int) -> Callable[[Connection], None]:
    """An upgrade step, idempotent at every start: the column on a log created before it (its rows
    have none: no actor, no digest, and a retry of such a command still gets its first reply)."""

    def add(conn: Connection) -> None:
        if name not in {c["name"] for c in inspect(conn).get_columns("command_log")}:
            conn.execute(text(f"ALTER TABLE command_log ADD COLUMN {name} VARCHAR({length})"))

    return add


def request_digest(subject: str, command_json: str) -> str:
    return hashlib.sha256(f"{subject}\n{command_json}".encode()).hexdigest()


class CommandReplies:
    """The unit of work's command-log side (idempotent commands)."""

    db: Database
    session: AsyncSession
    now: Callable[[], datetime]

    async def recall_reply(self, command_id: str) -> tuple[Any, str | None, str | None] | None:
        """The reply already given to this command id, who gave the command and the digest of what
        they asked, if the staff app is retrying."""
        log = self.db.metadata.tables["command_log"]
        query = select(log.c.reply, log.c.actor, log.c.request_digest).where(log.c.command_id == command_id)
        row = (await self.session.execute(query)).first()
        return None if row is None else (row[0], row[1], row[2])

    async def remember_reply(
        self, command_id: str, subject: str, reply: Any, actor: str | None = None, digest: str | None = None
    ) -> None:
        log = self.db.metadata.tables["command_log"]
        await self.session.execute(
            insert(log).values(
                command_id=command_id, subject=subject, reply=reply, recorded_at=self.now(), actor=actor, request_digest=digest
            )
        )
