"""Where the unit of work's statements run: declared ones on the driver (plan.py), the rest through
SQLAlchemy, with the same SQL, parameters, result values and errors either way."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.storage.deferred import Held, tables_of
from shared.storage.fastpath.plan import FastResult

if TYPE_CHECKING:
    from shared.storage.database import Database


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

    async def send_held(self, tables: frozenset[str] | None = None) -> None:
        """Send the held writes of these tables (all when None), each group as one statement."""
        for writes in self._held.take(tables):
            for stmt, params in writes.groups():
                await self._run_many(stmt, params)

    async def _run_many(self, stmt: Any, params: list[dict[str, Any]]) -> None:
        fast = self.db.fast
        plan = fast.plan(stmt, params[0]) if fast is not None else None
        if plan is None:
            await self.session.execute(stmt, params)
        elif plan.pg:
            conn = await self.session.connection()
            adapted = conn.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
            driver = await fast.pg_adapter.in_transaction(adapted)  # type: ignore[union-attr]
            try:
                await plan.run_many_pg(driver, params)
            except Exception as exc:
                raise await self._pg_error(conn, adapted, plan.sql, exc) from exc
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
        """A statement on the session's own asyncpg connection, in its transaction (begun here
        when this is the transaction's first statement, as SQLAlchemy's own execution would)."""
        conn = await self.session.connection()
        adapted = conn.sync_connection.connection.dbapi_connection  # type: ignore[union-attr]
        # SQLAlchemy's adapter internals (shared/internals/asyncpg.py), loaded by the fast path on PostgreSQL
        driver = await self.db.fast.pg_adapter.in_transaction(adapted)  # type: ignore[union-attr]
        try:
            result: FastResult = await plan.run_pg(driver, params)
            return result
        except Exception as exc:
            raise await self._pg_error(conn, adapted, plan.sql, exc) from exc

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
