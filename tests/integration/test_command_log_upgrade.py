"""A command log created before the request digest gets the column at the next start; its rows,
which have no digest, still answer a retry with their first reply (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, MetaData, Table, insert, inspect, text

from shared.storage.commandlog import command_log_table
from shared.storage.database import Database
from shared.storage.tables import messaging_tables
from shared.storage.uow import UnitOfWork
from tests.support.databases import KINDS, fresh_database

pytestmark = [pytest.mark.integration]


def _before_the_digest(metadata: MetaData) -> Table:
    """The command log as versions before the digest created it: today's columns but that one."""
    today = command_log_table(MetaData())
    kept = [c for c in today.columns if c.name != "request_digest"]
    return Table("command_log", metadata, *(Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable) for c in kept))


@pytest.mark.parametrize("kind", KINDS)
async def test_an_older_command_log_gets_the_digest_column_and_keeps_answering_its_retries(kind, tmp_path) -> None:  # type: ignore[no-untyped-def]
    old = MetaData()
    messaging_tables(old)  # outbox and inbox, and a command log that this test makes older
    old.remove(old.tables["command_log"])
    old.info["upgrades"] = []
    log = _before_the_digest(old)
    async with fresh_database(kind, old, tmp_path, "cmdlog") as before:
        async with before.engine.begin() as conn:
            await conn.execute(
                insert(log).values(
                    command_id="c-1",
                    subject="cmd.x.v1",
                    reply={"ok": True, "id": "1"},
                    recorded_at=text("CURRENT_TIMESTAMP"),
                    actor="w-1",
                )
            )
        current = MetaData()
        messaging_tables(current)
        after = Database(before.url, current)
        try:
            await after.create_all()
            await after.create_all()  # idempotent at every start
            async with after.engine.connect() as conn:
                columns = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("command_log")})
            assert "request_digest" in columns
            async with UnitOfWork(after) as uow:
                assert await uow.recall_reply("c-1") == ({"ok": True, "id": "1"}, "w-1", None)
        finally:
            await after.dispose()
