"""WAL checkpoints run in a worker thread, not inside a COMMIT on the event loop's thread.

Deterministic: the periodic round is held off (a long interval) while the writer commits, so what
is in the database file afterwards is what the commits themselves checkpointed (nothing); then one
round is run on demand. Whether the loop runs rounds on its own is waited for, not timed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, String, Table, select

from shared.storage.database import Database
from shared.storage.tables import messaging_tables
from shared.storage.uow import UnitOfWork
from tests.conftest import wait_for

pytestmark = pytest.mark.integration

md = MetaData()
messaging_tables(md)
notes = Table("notes", md, Column("id", String(36), primary_key=True), Column("text", String(2000)))

COMMITS, ROWS, TEXT = 120, 25, 1500  # ≈ 4.5 MB: past SQLite's automatic checkpoint (1,000 pages of 4 KiB)
WRITTEN = COMMITS * ROWS * TEXT


async def _write(db: Database, commits: int) -> None:
    for i in range(commits):
        async with UnitOfWork(db) as uow:
            await uow.insert(notes, [{"id": f"n{i}-{k}", "text": "x" * TEXT} for k in range(ROWS)])
            await uow.commit()


async def test_writer_leaves_checkpoints_to_the_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    wal = tmp_path / "c.db-wal"
    db = Database(f"sqlite+aiosqlite:///{path}", md)
    await db.create_all()
    task = await db.start_checkpointer(interval=3600)  # no periodic round during this test
    assert task is not None and db._checkpointer is not None
    try:
        await _write(db, COMMITS)
        async with UnitOfWork(db) as uow:
            raw = (await uow.session.get_raw_connection()).driver_connection._conn
            assert raw.execute("PRAGMA temp_store").fetchone()[0] == 2  # memory
        assert db.writer_inline._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        # No COMMIT checkpointed: with SQLite's default every 1,000 pages, several would have.
        assert db._checkpointer.checkpoints == 0
        assert path.stat().st_size < 100_000 and wal.stat().st_size > WRITTEN

        await db._checkpointer.checkpoint_now()  # the checkpointer copies them into the database file
        assert db._checkpointer.checkpoints == 1
        assert path.stat().st_size > WRITTEN
        async with UnitOfWork(db) as uow:
            assert len(await uow.scalars(select(notes.c.id))) == COMMITS * ROWS  # nothing lost on the way
    finally:
        await db.dispose()
        await asyncio.wait_for(task, 5.0)  # stops once the database is disposed


async def test_the_checkpointer_runs_rounds_on_its_own(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    db = Database(f"sqlite+aiosqlite:///{path}", md)
    await db.create_all()
    task = await db.start_checkpointer(interval=0.01)
    assert task is not None and db._checkpointer is not None
    try:
        await _write(db, 1)
        await wait_for(lambda: db._checkpointer is not None and db._checkpointer.checkpoints >= 2, timeout=30)
        async with UnitOfWork(db) as uow:
            assert len(await uow.scalars(select(notes.c.id))) == ROWS
    finally:
        await db.dispose()
        await asyncio.wait_for(task, 5.0)
    assert task.done() and task.exception() is None
