"""A fresh database of either kind for a test: a SQLite file, or a PostgreSQL database on the shared
server (skipped where none is reachable), dropped afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from sqlalchemy import MetaData

from shared.storage.database import Database
from tests.conftest import POSTGRES_URL, postgres_reachable

KINDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
"""Parameters for a fixture that runs its tests on both databases."""


@asynccontextmanager
async def fresh_database(kind: str, metadata: MetaData, tmp_path: Path, label: str) -> AsyncIterator[Database]:
    admin, name = None, ""
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / f'{label}.db'}"
    else:
        if not postgres_reachable():
            pytest.skip("no PostgreSQL at 127.0.0.1:5432")
        admin = await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""))
        name = f"koolle_t_{uuid4().hex[:10]}_{label}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    d = Database(url, metadata)
    try:
        await d.create_all()
        yield d
    finally:
        await d.dispose()
        if admin is not None:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


@contextmanager
def statements_sent(words: int | None = 3) -> Iterator[list[str]]:
    """The statements asyncpg sends to the server (each a round trip), as their first ``words``
    words (None: whole); an ``executemany`` (pipelined: one round trip, the statement once per
    row) says so first."""
    log: list[str] = []

    def shown(query: str) -> str:
        return " ".join(query.split()[:words])

    c = asyncpg.connection.Connection
    originals = {name: getattr(c, name) for name in ("execute", "executemany", "_execute")}

    async def execute(self: Any, query: str, *args: Any, **kw: Any) -> Any:
        if not args:  # with arguments it goes through _execute, counted there
            log.append(shown(query))
        return await originals["execute"](self, query, *args, **kw)

    async def executemany(self: Any, command: str, args: Any, **kw: Any) -> Any:
        log.append("executemany " + shown(command))  # one round trip, a statement per row
        return await originals["executemany"](self, command, args, **kw)

    async def _execute(self: Any, query: str, *args: Any, **kw: Any) -> Any:
        log.append(shown(query))
        return await originals["_execute"](self, query, *args, **kw)

    for name, fn in (("execute", execute), ("executemany", executemany), ("_execute", _execute)):
        setattr(c, name, fn)
    try:
        yield log
    finally:
        for name, fn in originals.items():
            setattr(c, name, fn)
