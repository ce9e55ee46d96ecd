"""Where the unit of work's statements run: declared ones on the driver (plan.py), the rest through
SQLAlchemy, with the same SQL, parameters, result values and errors either way; held writes
(shared/storage/deferred.py) in their groups, on PostgreSQL several tables' in one statement."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.storage.deferred import Held, tables_of
from shared.storage.fastpath.plan import FastResult

# PostgreSQL takes at most 32,767 parameters in one statement; held writes sent together stay below.
PG_ARGS_PER_STATEMENT = 30_000

if TYPE_CHECKING:
    from shared.storage.database import Database


def _rounds(tables: list[list[list[tuple[Any, list[dict[str, Any]]]]]]) -> list[list[tuple[Any, list[dict[str, Any]]]]]:
    """Round k holds every table's groups of its round k (``TableWrites.groups``)."""
    return [[g for rounds in tables if k < len(rounds) for g in rounds[k]] for k in range(max(len(rounds) for rounds in tables))]


async def _together(*steps: Awaitable[None] | None) -> None:
    """Run these side by side; the first error is raised once all have ended (none left running)."""
    results = await asyncio.gather(*(s for s in steps if s is not None), return_exceptions=True)
    for r in results:
        if isinstance(r, BaseException):
            raise r


class FastPathRouting:
    """The unit of work's ``execute``, ``scalars`` and ``scalar``."""

    db: Database
    session: AsyncSession
    _inline: Any  # SQLite: the writer's InlineConnection
    _held: Held  # writes sent later, in groups (shared/storage/deferred.py)

    async def execute(self, stmt: Any, params: Any = None, *, send_held: bool = True) -> Any:
        """``session.execute`` in this transaction; through the driver when the statement allows
        (shared/storage/fastpath/), with the same SQL, parameters and result values. Held writes
        of the tables it names are sent first (``send_held=False``: the caller knows that none of
        them can change its result)."""
        if send_held and self._held:
            await self.send_held(tables_of(stmt))
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

    async def send_held(self, tables: frozenset[str] | None = None, *, last: bool = False) -> None:
        """Send the held writes of these tables (all when None), each group as one statement. On
        PostgreSQL the groups of different tables go together, as one statement (``_send_round``).
        ``last``: nothing follows but the commit (see ``_send_round``)."""
        taken = [writes.groups() for writes in self._held.take(tables)]
        if not taken:
            return
        fast = self.db.fast
        if (
            fast is not None
            and fast.pg_adapter is not None
            and (last or len(taken) > 1 or any(len(r) > 1 for t in taken for r in t))
        ):
            rounds = _rounds(taken)
            for i, groups in enumerate(rounds):
                await self._send_round(groups, final=last and i == len(rounds) - 1)
            return
        for rounds in taken:
            for groups in rounds:
                for stmt, params in groups:
                    await self._run_many(stmt, params)

    async def send_held_and_insert(self, insert: Any, rows: list[dict[str, Any]], ready: Awaitable[None] | None) -> Any:
        """At commit: every held write, then ``insert`` (an INSERT … RETURNING: the outbox's) of
        ``rows`` once ``ready`` (their payloads' sealing, or None) is done. Returns its result.

        On PostgreSQL the insert is the main statement of the held writes' last round (``WITH w0 AS
        (INSERT …), w1 AS (DELETE …) INSERT INTO outbox … RETURNING …``): one round trip fewer per
        transaction. The earlier rounds go while ``ready`` runs (a new case's key is a JetStream
        write). The outbox is no held table, so no sub-statement sees or depends on its rows."""
        fast = self.db.fast
        plan = fast.plan(insert, rows) if fast is not None and fast.pg_adapter is not None and self._held else None
        if plan is None or not plan.pg or "outbox" in self._held.tables:
            await _together(self.send_held() if self._held else None, ready)
            return await self.execute(insert, rows, send_held=False)
        *early, last = _rounds([writes.groups() for writes in self._held.take(None)])

        async def early_rounds() -> None:
            for groups in early:
                await self._send_round(groups)

        await _together(early_rounds() if early else None, ready)
        return await self._send_round(last, (plan, rows), final=True)

    async def _send_round(
        self, groups: list[tuple[Any, list[dict[str, Any]]]], returning: tuple[Any, list[Any]] | None = None, final: bool = False
    ) -> Any:
        """One round of held writes as one statement of data-modifying CTEs: one round trip instead
        of one per group. The groups of a round touch rows no other group of it touches (two of one
        table too, e.g. a route's delete of a case's old team and insert of its new one), so none
        sees or depends on another's rows. A group that needs an ``executemany`` goes alone.
        ``returning``: (plan, rows) of an INSERT … RETURNING that goes last, as the main
        statement; its result is returned.

        ``final``: this round's statement is the transaction's last before the commit. When
        nothing has begun a transaction before it (only plain reads came first, ``_on_pg``), it
        is sent without BEGIN and COMMIT: one statement is a transaction of its own in
        PostgreSQL, so every write in it, the events' outbox rows and the inbox rows with them,
        commits or fails as one. Two round trips fewer (bench/README.md)."""
        fast = self.db.fast
        assert fast is not None
        parts: list[tuple[str, list[Any]]] = []
        width = 0
        for stmt, params in groups:
            plan = fast.plan(stmt, params[0])
            part = plan.pg_part(params, width) if plan is not None and plan.pg else None
            if part is None:
                await self._run_many(stmt, params)
                continue
            if width + len(part[1]) > PG_ARGS_PER_STATEMENT and parts:
                await self._run_together(parts)
                parts, width = [], 0
                part = plan.pg_part(params, 0)  # type: ignore[union-attr]
                assert part is not None
            parts.append(part)
            width += len(part[1])
        if returning is None:
            if parts:
                await self._run_together(parts, begin=not final)
            return None
        plan, rows = returning
        last = plan.pg_returning_part(rows, width)
        if last is None or width + len(last[1]) > PG_ARGS_PER_STATEMENT:  # too many rows for one statement
            if parts:
                await self._run_together(parts)
            return await self._run_pg(plan, rows)
        parts.append(last)
        records = await self._run_together(parts, fetch=True, begin=not final)
        return plan.result(records)

    async def _run_together(self, parts: list[tuple[str, list[Any]]], fetch: bool = False, begin: bool = True) -> Any:
        *ctes, (last, _) = parts
        sql = "WITH " + ", ".join(f"w{i} AS ({s})" for i, (s, _) in enumerate(ctes)) + " " + last if ctes else last
        args = [a for _, part_args in parts for a in part_args]
        if fetch:
            return await self._on_pg(sql, lambda driver: driver.fetch(sql, *args), begin=begin)
        return await self._on_pg(sql, lambda driver: driver.execute(sql, *args), begin=begin)

    async def _run_many(self, stmt: Any, params: list[dict[str, Any]]) -> None:
        fast = self.db.fast
        plan = fast.plan(stmt, params[0]) if fast is not None else None
        if plan is None:
            await self.session.execute(stmt, params)
        elif plan.pg:
            await self._on_pg(plan.sql, lambda driver: plan.run_many_pg(driver, params))
        else:
            conn = await self._connection()
            try:
                plan.run_many(conn, params)
            except self.db.engine.dialect.loaded_dbapi.Error as exc:
                raise self._dbapi_error(plan.sql, exc) from exc

    def _dbapi_error(self, sql: str, exc: Exception, invalidated: bool = False) -> Exception:
        """What SQLAlchemy's own path raises for a driver error (``IntegrityError`` and the rest),
        with the parameters hidden."""
        dialect = self.db.engine.dialect
        return DBAPIError.instance(
            sql, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True, dialect=dialect, connection_invalidated=invalidated
        )

    async def _run_pg(self, plan: Any, params: Any) -> FastResult:
        result: FastResult = await self._on_pg(plan.sql, lambda driver: plan.run_pg(driver, params), begin=not plan.reads_only)
        return result

    async def _on_pg(self, sql: str, run: Callable[[Any], Awaitable[Any]], begin: bool = True) -> Any:
        """``run(driver)`` on the session's own asyncpg connection, in its transaction (begun here
        when this is the transaction's first write, as SQLAlchemy's own execution would); a
        driver error raised as SQLAlchemy would raise it.

        ``begin=False``: a plain read, or the transaction's last statement (``_send_round``). Before
        the first write no transaction is begun for it: under READ COMMITTED (PostgreSQL's default,
        and the services') a read sees what is committed when it starts, inside a transaction or
        not, and holds no lock a later statement would need. Once a transaction is begun, it runs
        in it."""
        conn = await self.session.connection()
        adapted = conn.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
        # SQLAlchemy's adapter internals (shared/internals/asyncpg.py), loaded by the fast path on PostgreSQL
        pg = self.db.fast.pg_adapter  # type: ignore[union-attr]
        driver = await pg.in_transaction(adapted) if begin else adapted.driver_connection  # type: ignore[union-attr]
        try:
            return await run(driver)
        except Exception as exc:
            raise await self._pg_error(conn, adapted, sql, exc) from exc

    async def _pg_error(self, conn: Any, adapted: Any, sql: str, exc: Exception) -> Exception:
        """The exception SQLAlchemy would raise (``IntegrityError`` and the rest, parameters
        hidden), and a connection lost in the middle is invalidated, as on SQLAlchemy's path."""
        dialect = self.db.engine.dialect
        # asyncpg's error as the dialect's DBAPI error (SQLAlchemy's internals: shared/internals/asyncpg.py)
        dbapi_error: Exception = self.db.fast.pg_adapter.as_dbapi_error(adapted, exc)  # type: ignore[union-attr]
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
