"""A service's database: its engines, sessions, the SQLite writer and the state the relay's hand-off shares.

Each service owns its own database (a SQLite file by default, PostgreSQL by URL).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import MetaData, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import async_sessionmaker

from shared.storage.checkpointer import Checkpointer
from shared.storage.engine import make_engine
from shared.storage.fastpath.plan import FastSQL
from shared.storage.inbox import claim_statement
from shared.storage.outbox import outbox_insert


class Database:
    """A service's database: engine, session factory, outbox/inbox tables and the relay's wake-up."""

    def __init__(self, url: str, metadata: MetaData, *, busy_timeout_ms: int = 30000) -> None:
        self.url = url
        self.metadata = metadata
        self.outbox, self.inbox = (metadata.tables["outbox"], metadata.tables["inbox"])
        self.engine = make_engine(url, busy_timeout_ms=busy_timeout_ms)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # Reads that need no lock (the relay's scan, metrics, the audit walk) use their own engine on
        # SQLite; on PostgreSQL the same pool without BEGIN and ROLLBACK around them (autocommit: under
        # READ COMMITTED a statement sees the same inside a transaction or not). The relay's scan,
        # once a second per service, is then one round trip instead of three.
        self.read_engine = (
            make_engine(url, readonly=True, busy_timeout_ms=busy_timeout_ms)
            if url.startswith("sqlite")
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self.read_sessionmaker = async_sessionmaker(self.read_engine, expire_on_commit=False)
        # Built once: the inbox claim runs for every consumed batch.
        dialect = self.engine.dialect.name
        self.claim_statement = claim_statement(self.inbox, dialect)
        self.outbox_written = asyncio.Event()
        # Committed outbox rows handed straight to this process's relay, and the seqs of rows
        # inserted by transactions still committing (handoff.py).
        self.handoff: list[dict[str, Any]] = []
        self.inflight: set[int] = set()
        self.outbox_insert = outbox_insert(self.outbox)
        # Hot statements through the driver, SQLite's or asyncpg (shared/storage/fastpath/).
        self.fast = FastSQL(self.engine.dialect) if url.startswith(("sqlite", "postgresql+asyncpg")) else None
        # SQLite has one writer; serialising our own writers avoids lock churn inside one process.
        self.write_lock: asyncio.Lock | None = asyncio.Lock() if url.startswith("sqlite") else None
        self._signals: dict[str, asyncio.Event] = {}
        self._writer: Any = None
        self.writer_inline: Any = None  # the writer's InlineConnection (sqlite_inline.py)
        self._checkpointer: Checkpointer | None = None
        # Called with the outbox rows of every committed transaction (metrics).
        self.on_commit: Callable[[list[dict[str, Any]]], None] | None = None
        # Seals the personal fields of emitted events (shared/sealing.py; set by the runtime): the
        # outbox, and so every stream, holds them as ciphertext only.
        self.sealer: Any = None
        # Case ids whose keys are made ahead (shared/key_reserve.py; set by a service that opens cases).
        self.key_reserve: Any = None
        # The service's handlers of events it produces itself, by published form: applied in the
        # emitting transaction (uow.commit), not consumed back from its own stream (shared/service.py).
        self.own_projections: dict[type, list[Callable[[Any, Any], Any]]] = {}

    def signal(self, name: str) -> asyncio.Event:
        """A named in-process wake-up, e.g. set after commit to wake a dispatcher at once."""
        return self._signals.setdefault(name, asyncio.Event())

    async def create_all(self) -> None:
        """Create missing tables, then run the metadata's upgrade steps (``metadata.info["upgrades"]``:
        idempotent functions of a sync connection, e.g. columns added to an existing table), all in
        one transaction."""
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                # Replicas of a service starting together take turns (SQLite: BEGIN IMMEDIATE does it).
                await conn.execute(text("SELECT pg_advisory_xact_lock(7423001)"))
            await conn.run_sync(self.metadata.create_all)
            for upgrade in self.metadata.info.get("upgrades", ()):
                await conn.run_sync(upgrade)

    async def writer(self) -> Any:
        """SQLite: the connection every write transaction of this process uses (under write_lock)."""
        if self._writer is None or self._writer.closed or self._writer.invalidated:
            self._writer = await self.engine.connect()
            self.writer_inline = (await self._writer.get_raw_connection()).driver_connection
            # No checkpoint inside our COMMITs while the Checkpointer does them; SQLite's default else.
            self.writer_inline.sqlite.execute(f"PRAGMA wal_autocheckpoint={0 if self._checkpointer is not None else 1000}")
        return self._writer

    async def drop_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                await writer.close()
            except Exception:  # noqa: BLE001 - already broken
                pass

    async def start_checkpointer(self, interval: float = 1.0) -> asyncio.Task[None] | None:
        """SQLite: copy committed WAL pages into the database file from a worker thread, instead of
        inside a COMMIT on the event loop's thread (SQLite's automatic checkpoint, every 1,000
        pages, stalled the loop for milliseconds and wrote a page once per checkpoint in which it
        changed). Returns the task, or None on other databases."""
        if self.write_lock is None:
            return None
        async with self.write_lock:  # the writer reconnects without automatic checkpoints
            self._checkpointer = Checkpointer(make_url(self.url).database or "")
            await self.drop_writer()
        return asyncio.create_task(self._checkpointer.run(interval), name="sqlite-checkpoint")

    async def dispose(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
        await self.drop_writer()
        await self.engine.dispose()
        if self.read_engine.sync_engine.pool is not self.engine.sync_engine.pool:
            await self.read_engine.dispose()
