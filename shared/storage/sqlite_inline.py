"""An aiosqlite-compatible connection that runs SQLite calls on the event loop's thread.

Why: aiosqlite sends every call (cursor, execute, fetch, close) to its own thread and back. On a
busy 2-core machine that round trip cost about 400 µs per statement, while the statement itself
takes a few µs, so a consumer spent most of its time handing work between threads (measured in
``bench/``). A SQLite statement on a local file that cannot wait for a lock is fast enough to run in
place. Inside a write transaction we already hold the write lock, and WAL readers never wait for
writers, so statements return in microseconds.

- ``BEGIN IMMEDIATE`` is tried in place with a zero busy timeout: our own writers already queue on
  an asyncio lock, so the write lock is normally free. Only when another connection (another
  process) holds it does the BEGIN wait, in a worker thread, for up to the busy timeout.
- ``COMMIT`` also runs in place: its WAL fsync (≈ 0.2–1.5 ms here) is shorter than what handing it
  to a thread cost: the round trip plus waiting for the GIL while the loop was busy added several
  milliseconds at the tail (bench/: p99 publish → referral.received 30 → 19 ms at 100/s). The loop
  waits for the disk meanwhile; the durability is unchanged (``synchronous=FULL``).
- Explicit ``BEGIN EXCLUSIVE``, ``VACUUM`` and checkpoints go to a worker thread.

SQLAlchemy's aiosqlite dialect is used unchanged, with this connection given as its ``async_creator``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

# Statements that may wait (lock, fsync) and therefore leave the event loop's thread. A plain
# (deferred) BEGIN takes no lock, so a read transaction starts in place.
_BLOCKING = ("BEGIN IMMEDIATE", "BEGIN EXCLUSIVE", "COMMIT", "END", "VACUUM")


def _may_block(sql: str) -> bool:
    head = sql.lstrip()[:16].upper()
    return head.startswith(_BLOCKING) or "CHECKPOINT" in sql[:64].upper()


class _InlineQueue:
    """What SQLAlchemy's adapter uses to set ``isolation_level``: run the function in place."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting caller
            future.set_exception(exc)


class InlineCursor:
    def __init__(self, conn: InlineConnection) -> None:
        self._conn = conn
        self._cursor = conn._conn.cursor()

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = None) -> InlineCursor:
        args = (sql,) if parameters is None else (sql, parameters)
        if sql.startswith("BEGIN IMMEDIATE") and await self._conn.begin_at_once(self._cursor, sql):
            return self
        if _may_block(sql):
            await self._conn._in_thread(self._cursor.execute, *args)
        else:
            await self._conn._idle()
            self._cursor.execute(*args)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Iterable[Any]) -> InlineCursor:
        await self._conn._idle()
        self._cursor.executemany(sql, seq_of_parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, *sizes: Any) -> None:
        return None


class InlineConnection:
    """The subset of ``aiosqlite.Connection`` that SQLAlchemy's aiosqlite dialect uses."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._connection = conn  # the dialect checks this to know the connection is open
        self._tx = _InlineQueue()
        # At most one call of this connection runs in a worker thread; the next call waits for it,
        # so the sqlite3 connection is never used from two threads at once.
        self._pending: asyncio.Future[Any] | None = None
        self._busy_ms: int | None = None

    @classmethod
    async def connect(cls, database: str, *, timeout: float = 30.0) -> InlineConnection:
        conn = await asyncio.to_thread(sqlite3.connect, database, timeout=timeout, check_same_thread=False, isolation_level=None)
        return cls(conn)

    async def begin_at_once(self, cursor: sqlite3.Cursor, sql: str) -> bool:
        """Take the write lock in place when it is free (the usual case: our own writers queue on
        an asyncio lock first). Only when another connection holds it does BEGIN wait, in a worker
        thread. A thread round trip per transaction cost ≈ 10 % of a consumer's CPU (bench/)."""
        await self._idle()
        if self._busy_ms is None:
            self._busy_ms = int(self._conn.execute("PRAGMA busy_timeout").fetchone()[0])
        self._conn.execute("PRAGMA busy_timeout=0")
        try:
            cursor.execute(sql)
            return True
        except sqlite3.OperationalError:  # locked by another connection: wait for it off the loop
            return False
        finally:
            self._conn.execute(f"PRAGMA busy_timeout={self._busy_ms}")

    async def begin_immediate(self) -> None:
        """``BEGIN IMMEDIATE`` on this connection: in place when the write lock is free."""
        cursor = self._conn.cursor()
        try:
            if not await self.begin_at_once(cursor, "BEGIN IMMEDIATE"):
                await self._in_thread(cursor.execute, "BEGIN IMMEDIATE")
        finally:
            cursor.close()

    async def _idle(self) -> None:
        if self._pending is not None and not self._pending.done():
            await asyncio.shield(self._pending)

    async def ready(self) -> None:
        """Wait until no call of this connection runs in a worker thread (then it is ours to use)."""
        await self._idle()

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The sqlite3 connection (use after :meth:`ready`; the driver fast path runs on it)."""
        return self._conn

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        await self._idle()
        loop = asyncio.get_running_loop()
        self._pending = loop.run_in_executor(None, fn, *args)
        # Shielded: a cancelled caller must not leave the connection mid-commit in another thread
        # while the next call runs here; the next call waits in _idle() instead.
        return await asyncio.shield(self._pending)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def cursor(self) -> InlineCursor:
        return InlineCursor(self)

    async def execute(self, sql: str, parameters: Any = None) -> InlineCursor:
        cur = self.cursor()
        return await cur.execute(sql, parameters)

    async def commit(self) -> None:
        await self._idle()
        self._conn.commit()

    async def rollback(self) -> None:
        await self._idle()
        self._conn.rollback()

    async def create_function(self, *args: Any, **kw: Any) -> None:
        self._conn.create_function(*args, **kw)

    async def close(self) -> None:
        if self._connection is None:
            return
        await self._idle()
        self._conn.close()
        self._connection = None  # type: ignore[assignment]

    def stop(self) -> None:
        """Force close (SQLAlchemy's terminate when not in a greenlet)."""
        if self._connection is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._connection = None  # type: ignore[assignment]
