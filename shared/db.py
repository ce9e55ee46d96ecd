"""Database plumbing shared by every service: engine, UTC datetimes, outbox and inbox tables, unit of work.

Each service owns its own database (a SQLite file by default, PostgreSQL by URL). SQL parameters are
never rendered into exception messages (``hide_parameters=True``), so a failed statement cannot
leak personal data into a log.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic_core import from_json, to_json
from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.types import TypeDecorator

from shared.fastsql import FastResult, FastSQL, hot_once
from shared.faults import crash_point
from shared.internals.asyncpg import as_dbapi_error, in_transaction

log = logging.getLogger("koolle.db")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always returns them aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    # The same values as the SQLite bind and result processors above produce and read, in one step
    # each, for the driver fast path (shared/fastsql.py); tests/integration/test_fastsql.py compares.
    @staticmethod
    def sqlite_bind(value: datetime | None) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", timespec="microseconds")

    @staticmethod
    def sqlite_result(value: str | None) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


class JSONText(TypeDecorator[Any]):
    """JSON stored as text: the same on SQLite and PostgreSQL, compact, order-preserving."""

    impl = Text
    cache_ok = True

    # pydantic-core's JSON (Rust) instead of the json module: ≈ 4× faster, and the stored states are
    # most of what a transaction serialises (bench/). Non-ASCII text is stored as UTF-8, not \u escapes.
    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else to_json(value, fallback=str).decode()

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        return None if value is None else from_json(value)


def messaging_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Add the outbox and inbox tables to a service's metadata."""
    outbox = Table(
        "outbox",
        metadata,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("message_id", String(64), nullable=False, unique=True),
        Column("op", String(16), nullable=False, default="publish"),  # publish | cancel_timer
        Column("subject", String(255), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("headers", JSONText, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("sent_at", UTCDateTime, nullable=True),
        Column("attempts", Integer, nullable=False, default=0),
    )
    Index(
        "ix_outbox_unsent",
        outbox.c.seq,
        sqlite_where=outbox.c.sent_at.is_(None),
        postgresql_where=outbox.c.sent_at.is_(None),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("consumer", String(128), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("processed_at", UTCDateTime, nullable=False),
    )
    Table(
        "command_log",
        metadata,
        Column("command_id", String(64), primary_key=True),
        Column("subject", String(255), nullable=False),
        Column("reply", JSONText, nullable=False),
        Column("recorded_at", UTCDateTime, nullable=False),
    )
    return outbox, inbox


def make_engine(url: str, *, readonly: bool = False, busy_timeout_ms: int = 30000) -> AsyncEngine:
    if url.startswith("sqlite"):
        from shared.sqlite_inline import InlineConnection

        path = make_url(url).database or ":memory:"
        engine = create_async_engine(
            url,
            hide_parameters=True,
            # Statements, BEGIN and COMMIT run on the loop's thread; only what may wait long goes to a
            # worker thread (see shared/sqlite_inline.py for why and the measured difference).
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
    from sqlalchemy.dialects import postgresql, sqlite

    return postgresql.insert if dialect == "postgresql" else sqlite.insert


class Database:
    """A service's database: engine, session factory, outbox/inbox tables and the relay's wake-up."""

    def __init__(self, url: str, metadata: MetaData, *, busy_timeout_ms: int = 30000) -> None:
        self.url = url
        self.metadata = metadata
        self.outbox, self.inbox = (metadata.tables["outbox"], metadata.tables["inbox"])
        self.engine = make_engine(url, busy_timeout_ms=busy_timeout_ms)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # Reads that need no lock (the relay's scan, queries) use their own engine on SQLite.
        self.read_engine = (
            make_engine(url, readonly=True, busy_timeout_ms=busy_timeout_ms) if url.startswith("sqlite") else self.engine
        )
        self.read_sessionmaker = async_sessionmaker(self.read_engine, expire_on_commit=False)
        # Built once: the inbox claim runs for every consumed batch.
        dialect = self.engine.dialect.name
        self.claim_statement = hot_once(
            ("inbox claim", self.inbox, dialect),
            lambda: dialect_insert(dialect)(self.inbox).on_conflict_do_nothing().returning(self.inbox.c.event_id),
        )
        self.outbox_written = asyncio.Event()
        # Committed outbox rows handed straight to this process's relay (no read of the table on the
        # hot path), and the seqs of rows inserted by transactions still committing: a relay scan
        # must leave those to the hand-off, or a row could go out twice.
        self.handoff: list[dict[str, Any]] = []
        self.inflight: set[int] = set()
        # Rows of a multi-row INSERT … RETURNING come in no promised order: matched by message id.
        self.outbox_insert = hot_once(
            ("outbox insert", self.outbox), lambda: insert(self.outbox).returning(self.outbox.c.seq, self.outbox.c.message_id)
        )
        # Hot statements through the driver, SQLite's or asyncpg (shared/fastsql.py).
        self.fast = FastSQL(self.engine.dialect) if url.startswith(("sqlite", "postgresql+asyncpg")) else None
        # SQLite has one writer; serialising our own writers avoids lock churn inside one process.
        self.write_lock: asyncio.Lock | None = asyncio.Lock() if url.startswith("sqlite") else None
        self._signals: dict[str, asyncio.Event] = {}
        self._writer: Any = None
        self.writer_inline: Any = None  # the writer's InlineConnection (shared/sqlite_inline.py)
        self._checkpointer: Checkpointer | None = None
        # Called with the outbox rows of every committed transaction (metrics).
        self.on_commit: Callable[[list[dict[str, Any]]], None] | None = None

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
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


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


HANDOFF_MAX = 10_000
_statement = hot_once  # the helpers' statements below: one per shape, on the fast path


class UnitOfWork:
    """One transaction: the state change, the events it causes (outbox) and the events it consumed (inbox).

    Services subclass it to attach their repositories in :meth:`_attach`.
    """

    producer = ""
    """The service name written into every event's envelope (set by the runtime)."""

    def __init__(self, db: Database, clock: Callable[[], datetime] | None = None) -> None:
        self.db = db
        self.now = clock or (lambda: datetime.now(UTC))
        self.session: AsyncSession
        # What is being handled: the request or the event (the envelope's case and causation come
        # from it) and, for a request, the verified caller. Set by the runtime, never by a handler.
        self.cause: Any = None
        self.principal: Any = None
        self.actor = ""  # who acted, as records name them: a staff id or a guardian's pseudonym
        self._messages: list[dict[str, Any]] = []
        self._routed: list[tuple[dict[str, Any], Any]] = []  # staff-facing events: subject set at commit
        self._locked = False
        self._inline: Any = None  # SQLite: the writer's InlineConnection (fast path, BEGIN, COMMIT)

    def _attach(self, session: AsyncSession) -> None:  # pragma: no cover - overridden
        """Attach repositories to the session."""

    async def __aenter__(self) -> UnitOfWork:
        if self.db.write_lock is not None:
            await self.db.write_lock.acquire()
            self._locked = True
            try:
                # SQLite: the process's one writer connection, kept open (our writers take turns on
                # the lock anyway); a session and a pool checkout per transaction cost more than a
                # small transaction itself (bench/). It has the AsyncSession methods used here.
                self.session = await self.db.writer()
                # BEGIN IMMEDIATE now, on the driver: SQLAlchemy's begin (events, an execution
                # context for the BEGIN statement) cost ≈ 0.2 ms per transaction at a trickle.
                self._inline = self.db.writer_inline
                await self._inline.begin_immediate()
            except BaseException:
                self._locked = False
                self.db.write_lock.release()
                raise
        else:
            self.session = self.db.sessionmaker()
            await self.session.begin()
        self._messages = []
        self._routed = []
        self._after_commit: list[Callable[[], None]] = []
        self._attach(self.session)
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if self._inline is not None:
                try:
                    await self._end(commit=False)
                except BaseException:
                    await self.db.drop_writer()  # a broken connection: the next transaction opens a new one
                    raise
            else:
                await self._end(commit=False)
                await self.session.close()
        finally:
            if self._locked:
                self._locked = False
                assert self.db.write_lock is not None
                self.db.write_lock.release()

    # -- outbox ---------------------------------------------------------------------------------
    def envelope(self, model: Any, **payload: Any) -> Any:
        """The event ``model`` with ``payload`` and the envelope filled in: producer (this service),
        case and causation (the request or event being handled), occurred_at (the clock). A field
        given in ``payload`` wins (e.g. a timer's own moment, or the case a new referral opened)."""
        cause = self.cause
        if "case_id" not in payload:
            payload["case_id"] = getattr(cause, "case_id", None)
        if "causation_id" not in payload:
            payload["causation_id"] = getattr(cause, "command_id", None) or getattr(cause, "event_id", None)
        payload.setdefault("occurred_at", self.now())
        payload.setdefault("producer", self.producer)
        from shared.contracts.base import TRUSTED

        return model.model_validate(payload, context=TRUSTED)

    def emit(self, event: Any, /, *, subject: str | None = None, headers: dict[str, str] | None = None, **payload: Any) -> Any:
        """Queue an event to be published after commit (same transaction as the state change).

        ``uow.emit(SomeEvent, field=value, ...)`` builds the event with its envelope filled in
        (:meth:`envelope`); an already built event is queued as it is. Returns the event."""
        from shared.telemetry import inject_context

        if isinstance(event, type):
            event = self.envelope(event, **payload)

        # A version with contact details goes out as its public successor and the notifications
        # service's private copy, in this same transaction (shared/contracts/directory.py).
        forms = [(str(event.event_id), event)] if subject or not hasattr(event, "published") else event.published()
        for message_id, form in forms:
            hdrs = {"Koolle-Event-Type": form.event_type, "Koolle-Case-Id": str(form.case_id or "")}
            inject_context(hdrs)
            if headers:
                hdrs.update(headers)
            row = {
                "message_id": message_id,
                "op": "publish",
                "subject": subject or form.subject(),
                "payload": form.to_json(),
                "headers": hdrs,
                "created_at": self.now(),
            }
            self._messages.append(row)
            if subject is None and getattr(form, "routed", False):
                self._routed.append((row, form))
        return event

    def schedule(self, event: Any, *, timer_subject: str, at: datetime, timer_id: str) -> None:
        """A durable timer: ``event`` is emitted once ``at`` has passed (shared/messaging/timers.py:
        never early, stamped with the time it fired).

        ``timer_subject`` (``timers.<service>.<name>``) is the timer's identity: scheduling it again
        replaces it; :meth:`cancel_timer` removes it. ``timer_id`` must be unique per scheduling (it
        is the schedule message's id).
        """
        from shared.messaging.timers import schedule_headers

        self.emit(event, subject=timer_subject, headers=schedule_headers(event, timer_subject, at))
        self._messages[-1]["message_id"] = timer_id

    def cancel_timer(self, timer_subject: str, cancel_id: str) -> None:
        self._messages.append(
            {
                "message_id": cancel_id,
                "op": "cancel_timer",
                "subject": timer_subject,
                "payload": b"",
                "headers": {},
                "created_at": self.now(),
            }
        )

    # -- statements ----------------------------------------------------------------------------------
    async def execute(self, stmt: Any, params: Any = None) -> Any:
        """``session.execute`` in this transaction; through the driver when the statement allows
        (shared/fastsql.py), with the same SQL, parameters and result values."""
        fast = self.db.fast
        if fast is not None:
            plan = fast.plan(stmt, params)
            if plan is not None:
                if plan.pg:
                    return await self._run_pg(plan, params if params is not None else {})
                conn = await self._connection()
                try:
                    return plan.run(conn, params if params is not None else {})
                except self.db.engine.dialect.loaded_dbapi.Error as exc:
                    raise self._dbapi_error(plan.sql, exc) from exc
        return await self.session.execute(stmt, params)

    def _dbapi_error(self, sql: str, exc: Exception, invalidated: bool = False) -> Exception:
        """What SQLAlchemy's own path raises for a driver error (``IntegrityError`` and the rest),
        with the parameters hidden."""
        dialect = self.db.engine.dialect
        return DBAPIError.instance(
            sql, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect, connection_invalidated=invalidated
        )

    async def _run_pg(self, plan: Any, params: Any) -> FastResult:
        """A statement on the session's own asyncpg connection, in its transaction (begun here
        when this is the transaction's first statement, as SQLAlchemy's own execution would)."""
        conn = await self.session.connection()
        adapted = conn.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
        driver = await in_transaction(adapted)  # SQLAlchemy's adapter internals: shared/internals/asyncpg.py
        try:
            result: FastResult = await plan.run_pg(driver, params)
            return result
        except Exception as exc:
            raise await self._pg_error(conn, adapted, plan.sql, exc) from exc

    async def _pg_error(self, conn: Any, adapted: Any, sql: str, exc: Exception) -> Exception:
        """The exception SQLAlchemy would raise (``IntegrityError`` and the rest, parameters
        hidden), and a connection lost in the middle is invalidated, as on SQLAlchemy's path."""
        dialect = self.db.engine.dialect
        dbapi_error = as_dbapi_error(adapted, exc)  # asyncpg's error as the dialect's DBAPI error
        if not isinstance(dbapi_error, dialect.loaded_dbapi.Error):
            return dbapi_error  # not the database's (e.g. a value a bind processor refused)
        lost = dialect.is_disconnect(dbapi_error, adapted, None)
        if lost:
            await conn.invalidate()
        return self._dbapi_error(sql, dbapi_error, lost)

    async def scalars(self, stmt: Any, params: Any = None) -> list[Any]:
        result = await self.execute(stmt, params)
        return result.scalars() if isinstance(result, FastResult) else list(result.scalars())

    async def scalar(self, stmt: Any, params: Any = None) -> Any:
        result = await self.execute(stmt, params)
        return result.scalar()

    async def _connection(self) -> Any:
        # The transaction's own connection, so a fast statement commits or rolls back with the rest.
        # Only on SQLite, where ``session`` is the writer connection (``Database.writer``). After a
        # commit, a statement begins the next transaction.
        inline = self._inline
        if not inline.in_transaction:
            await inline.begin_immediate()
        else:
            await inline.ready()
        return inline.sqlite

    async def _end(self, commit: bool) -> None:
        """End the transaction: through the session when it has one (PostgreSQL, or a SQLAlchemy
        statement joined SQLite's), else on SQLite's driver, where it was begun."""
        if self.session.in_transaction():
            await (self.session.commit() if commit else self.session.rollback())
        elif self._inline is not None and self._inline.in_transaction:
            await (self._inline.commit() if commit else self._inline.rollback())

    # -- statements built once --------------------------------------------------------------------
    # Building a SQLAlchemy statement per call (``insert(t).values(...)``, ``select(t).where(...)``)
    # and computing its cache key cost more than running it on SQLite (bench/). These helpers build
    # each statement shape once and pass the values as parameters.

    async def insert(self, table: Table, values: dict[str, Any] | list[dict[str, Any]]) -> None:
        """Insert one row, or many in one executemany."""
        if isinstance(values, list) and not values:
            return
        await self.execute(_statement(("insert", table), lambda: insert(table)), values)

    async def insert_new(self, table: Table, values: dict[str, Any]) -> bool:
        """Insert the row unless one with the same key exists (one statement); True if inserted."""
        dialect = self.db.engine.dialect.name
        stmt = _statement(("insert_new", table, dialect), lambda: dialect_insert(dialect)(table).on_conflict_do_nothing())
        result = await self.execute(stmt, values)
        return bool(result.rowcount)

    async def rows(self, table: Table, order_by: str | None = None, **equals: Any) -> list[Any]:
        """Rows where every given column equals its value (``order_by``: a column name)."""
        keys = tuple(sorted(equals))

        def build() -> Any:
            q = select(table).where(*(table.c[k] == bindparam(f"w_{k}") for k in keys))
            return q.order_by(table.c[order_by]) if order_by else q

        stmt = _statement(("rows", table, keys, order_by), build)
        return list((await self.execute(stmt, {f"w_{k}": equals[k] for k in keys})).all())

    async def row(self, table: Table, **equals: Any) -> Any:
        """The row where every given column equals its value, or None."""
        keys = tuple(sorted(equals))
        stmt = _statement(("row", table, keys), lambda: select(table).where(*(table.c[k] == bindparam(f"w_{k}") for k in keys)))
        return (await self.execute(stmt, {f"w_{k}": equals[k] for k in keys})).first()

    async def update(self, table: Table, where: dict[str, Any], values: dict[str, Any]) -> int:
        """Update the rows matching ``where`` (column equality); returns the number of rows changed."""
        wkeys, vkeys = tuple(sorted(where)), tuple(sorted(values))

        def build() -> Any:
            return (
                update(table)
                .where(*(table.c[k] == bindparam(f"w_{k}") for k in wkeys))
                .values({k: bindparam(f"v_{k}") for k in vkeys})
            )

        stmt = _statement(("update", table, wkeys, vkeys), build)
        params = {f"w_{k}": where[k] for k in wkeys} | {f"v_{k}": values[k] for k in vkeys}
        result = await self.execute(stmt, params)
        return int(result.rowcount)

    # -- inbox ----------------------------------------------------------------------------------
    async def claim_many(self, consumer: str, event_ids: list[str]) -> set[str]:
        """Record that ``consumer`` handled these event ids, in one statement; returns the ids that
        were new (the rest are redeliveries). It commits or rolls back with the effects."""
        if not event_ids:
            return set()
        now = self.now()
        rows = [{"consumer": consumer, "event_id": k, "processed_at": now} for k in dict.fromkeys(event_ids)]
        result = await self.execute(self.db.claim_statement, rows)
        return {r.event_id for r in result}

    # -- idempotent commands ----------------------------------------------------------------------
    async def recall_reply(self, command_id: str) -> Any:
        """The reply already given to this command id, if the staff app is retrying."""
        log = self.db.metadata.tables["command_log"]
        return await self.session.scalar(select(log.c.reply).where(log.c.command_id == command_id))

    async def remember_reply(self, command_id: str, subject: str, reply: Any) -> None:
        log = self.db.metadata.tables["command_log"]
        await self.session.execute(
            insert(log).values(command_id=command_id, subject=subject, reply=reply, recorded_at=self.now())
        )

    async def commit(self) -> None:
        seqs: list[int] = []
        if self._routed:  # the case's municipality and team go into the subject (shared/messaging/routing.py)
            from shared.messaging.routing import route

            await route(self, self._routed)
            self._routed = []
        if self._messages:
            seq_of = {r.message_id: r.seq for r in await self.execute(self.db.outbox_insert, self._messages)}
            for message in self._messages:
                message["seq"] = seq_of[message["message_id"]]
            seqs = list(seq_of.values())
            self.db.inflight.update(seqs)
        try:
            await self._end(commit=True)
        finally:
            self.db.inflight.difference_update(seqs)
        if self._messages:
            # No await between the commit and the hand-off: the relay sees these rows either as
            # in flight or as handed off, never as unclaimed rows of its own scan.
            self.db.handoff.extend(self._messages)
            if len(self.db.handoff) > HANDOFF_MAX:  # no relay draining it (a tool): the scan covers these
                del self.db.handoff[: len(self.db.handoff) - HANDOFF_MAX]
            crash_point("uow.after_commit_before_publish")
            if self.db.on_commit is not None:
                self.db.on_commit(self._messages)
            self._messages = []
            self.db.outbox_written.set()
        callbacks, self._after_commit = self._after_commit, []
        for cb in callbacks:
            cb()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once this transaction has committed (e.g. wake a dispatcher)."""
        self._after_commit.append(callback)

    async def rollback(self) -> None:
        self._messages = []
        self._routed = []
        self._after_commit = []
        await self._end(commit=False)
