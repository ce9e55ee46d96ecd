"""WAL checkpoints run in a worker thread, not inside a COMMIT on the event loop's thread."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, String, Table, select

from shared.db import Database, UnitOfWork, messaging_tables

pytestmark = pytest.mark.integration

md = MetaData()
messaging_tables(md)
notes = Table("notes", md, Column("id", String(36), primary_key=True), Column("text", String(2000)))


async def test_writer_leaves_checkpoints_to_the_checkpointer(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    db = Database(f"sqlite+aiosqlite:///{path}", md)
    await db.create_all()
    task = await db.start_checkpointer(interval=0.02)
    assert task is not None
    try:
        for i in range(50):  # ≈ 50 pages per 25 rows: well past what one checkpoint has to copy
            async with UnitOfWork(db) as uow:
                await uow.insert(notes, [{"id": f"n{i}-{k}", "text": "x" * 1500} for k in range(25)])
                await uow.commit()
        async with UnitOfWork(db) as uow:
            raw = (await uow.session.get_raw_connection()).driver_connection._conn
            assert raw.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # no checkpoint inside COMMIT
            assert raw.execute("PRAGMA temp_store").fetchone()[0] == 2  # memory
        assert path.stat().st_size < 100_000  # the ≈ 2 MB written are still in the WAL only
        for _ in range(200):  # the checkpointer copies them into the database file
            await asyncio.sleep(0.02)
            if path.stat().st_size > 50 * 25 * 1500:
                break
        assert path.stat().st_size > 50 * 25 * 1500
        assert db._checkpointer is not None and db._checkpointer.checkpoints > 0
        async with UnitOfWork(db) as uow:
            assert len(await uow.scalars(select(notes.c.id))) == 50 * 25  # nothing lost on the way
    finally:
        await db.dispose()
        await asyncio.wait_for(task, 2.0)  # stops once the database is disposed
