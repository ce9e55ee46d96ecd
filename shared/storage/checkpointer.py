"""SQLite's WAL checkpoints, off the event loop's thread."""

from __future__ import annotations

import asyncio
import logging
import sqlite3

log = logging.getLogger("koolle.db")


class Checkpointer:
    """Passive WAL checkpoints on a connection of its own, in a worker thread (the sqlite3 module
    releases the GIL while SQLite works). A passive checkpoint never waits for, nor blocks, the
    writer or the readers; durability is the commit's fsync and is unchanged."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stopping = asyncio.Event()
        self._lock = asyncio.Lock()  # one round at a time on the one connection
        self._conn: sqlite3.Connection | None = None
        self.checkpoints = 0

    def stop(self) -> None:
        self._stopping.set()

    def _checkpoint(self) -> None:
        if self._conn is None:
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA synchronous=FULL")  # the database file is synced after each checkpoint
        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints += 1

    async def checkpoint_now(self) -> None:
        """One round now, without waiting for the interval."""
        async with self._lock:
            try:
                await asyncio.to_thread(self._checkpoint)
            except sqlite3.Error as exc:  # busy or locked: the next round tries again
                log.debug("checkpoint skipped (%s)", type(exc).__name__)

    async def run(self, interval: float) -> None:
        try:
            while True:
                try:
                    await asyncio.wait_for(self._stopping.wait(), interval)
                    return
                except TimeoutError:
                    pass
                await self.checkpoint_now()
        finally:
            async with self._lock:
                conn, self._conn = self._conn, None
                if conn is not None:
                    await asyncio.to_thread(conn.close)
