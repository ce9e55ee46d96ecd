"""Engines: SQLite (statements on the loop's thread, WAL, fsync at every commit) or PostgreSQL (a pool).

SQL parameters are never rendered into exception messages (``hide_parameters=True``), so a failed
statement cannot leak personal data into a log.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Table, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def make_engine(url: str, *, readonly: bool = False, busy_timeout_ms: int = 30000) -> AsyncEngine:
    if url.startswith("sqlite"):
        from shared.storage.sqlite_inline import InlineConnection

        path = make_url(url).database or ":memory:"
        engine = create_async_engine(
            url,
            hide_parameters=True,
            # Statements, BEGIN and COMMIT run on the loop's thread; only what may wait long goes to a
            # worker thread (see shared/storage/sqlite_inline.py for why and the measured difference).
            async_creator=lambda: InlineConnection.connect(path, timeout=busy_timeout_ms / 1000),
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let us issue BEGIN ourselves: a write transaction takes the lock up front
            # (BEGIN IMMEDIATE) instead of failing later when a read upgrades to a write.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")  # durable: fsync at every commit
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cur.execute("PRAGMA foreign_keys=ON")
            # Sorts and IN lists in memory: on disk each took a temp file (open, unlink, close).
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # A unit of work begins its transaction on the driver itself (UnitOfWork.__aenter__);
            # a SQLAlchemy statement inside it then joins that transaction.
            if conn.connection.driver_connection.in_transaction:
                return
            # Readers never wait for the write lock (WAL: readers and the writer do not block each other).
            conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")

        return engine
    engine = create_async_engine(url, hide_parameters=True, pool_size=10, max_overflow=10)
    _ping_when_idle(engine)
    return engine


PING_AFTER_IDLE_SECONDS = 1.0


def _ping_when_idle(engine: AsyncEngine) -> None:
    """``pool_pre_ping``, but only for a connection that sat in the pool for a while: after a
    server restart or failover the pool holds dead connections, and the first use of each is
    checked and replaced. A connection in steady use is not pinged: a ping per transaction cost a
    round trip on the path of every referral (bench/). One that dies while in use fails its
    statement; SQLAlchemy then discards the pool's older connections and the consumer retries."""

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dbapi_conn.ping()
        except Exception as exc:  # the pool replaces the connection and checks out another
            raise DisconnectionError("connection lost while idle") from exc


def dialect_insert(dialect: str) -> Callable[[Table], Any]:
    """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL spell it alike)."""
    # Only the dialect in use: a SQLite service need not load PostgreSQL's (bench/README.md).
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert
