"""The unit of work's table helpers (``uow.insert/insert_new/rows/row/update``), each statement shape built once.

Building a SQLAlchemy statement per call (``insert(t).values(...)``, ``select(t).where(...)``) and
computing its cache key cost more than running it on SQLite (bench/). These helpers build each
statement shape once and pass the values as parameters; those statements take the fast path.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.sql.dml import Delete, Insert

from shared.storage.deferred import DELETE, INSERT, UPDATE, Held
from shared.storage.engine import dialect_insert
from shared.storage.fastpath.declare import hot_once
from shared.storage.fastpath.routing import FastPathRouting

_statement = hot_once  # one per shape, on the fast path


class TableStatements(FastPathRouting):
    _held: Held

    # -- held writes: sent in groups when the transaction next reads their table, or at commit
    # (shared/storage/deferred.py). For writes whose result nobody reads, on hot paths.
    def insert_later(self, table: Table, values: dict[str, Any] | list[dict[str, Any]]) -> None:
        """Insert the row(s), sent with the other held inserts of the table."""
        stmt = _statement(("insert", table), lambda: insert(table))
        for row in values if isinstance(values, list) else (values,):
            self._held.add(table, stmt, row, INSERT)

    def insert_new_later(self, table: Table, values: dict[str, Any]) -> None:
        """Insert the row unless one with the same key exists, sent later (nothing is returned)."""
        dialect = self.db.engine.dialect.name
        stmt = _statement(("insert_new", table, dialect), lambda: dialect_insert(dialect)(table).on_conflict_do_nothing())
        self._held.add(table, stmt, values, INSERT)

    def update_later(self, table: Table, where: dict[str, Any], values: dict[str, Any]) -> None:
        """Update the rows matching ``where`` (column equality), sent later."""
        self._held.add(table, self._update_stmt(table, where, values), _where_params(where, values), UPDATE, where)

    def holds(self, table: Table, **equals: Any) -> bool:
        """Is a held write waiting that could change the rows where these columns equal these
        values? A read of other rows need not send the table's held writes first."""
        return self._held.affects(table.name, equals)

    def later(
        self,
        stmt: Any,
        params: dict[str, Any],
        scope: dict[str, Any] | None = None,
        spares: tuple[dict[str, Any], ...] = (),
        adds: tuple[str, ...] = (),
    ) -> None:
        """A declared INSERT, DELETE or UPDATE (``hot``/``hot_once``) sent later. ``scope``: column
        values every row it may touch has (a DELETE's or UPDATE's ``WHERE``, or a superset of its
        rows); an INSERT's row is its parameters. ``spares``: rows a DELETE never touches (column
        values; its ``WHERE`` must exclude them), so that writes of those rows need not wait for it.
        ``adds``: the columns an upsert on the primary key adds to the row it finds (``SET c = c +
        excluded.c``, a counter); held writes of one key are then sent as one, their values summed."""
        kind = INSERT if isinstance(stmt, Insert) else DELETE if isinstance(stmt, Delete) else UPDATE
        if kind != INSERT and not scope:
            raise ValueError("a held DELETE or UPDATE names the rows it may touch (scope)")
        self._held.add(stmt.table, stmt, params, kind, scope, spares, adds)

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
        send = self._held.affects(table.name, equals)
        return list((await self.execute(stmt, {f"w_{k}": equals[k] for k in keys}, send_held=send)).all())

    async def row(self, table: Table, *, for_update: bool = False, **equals: Any) -> Any:
        """The row where every given column equals its value, or None. ``for_update``: locked until
        commit on PostgreSQL (SQLite's writers take turns anyway)."""
        keys = tuple(sorted(equals))

        def build() -> Any:
            q = select(table).where(*(table.c[k] == bindparam(f"w_{k}") for k in keys))
            return q.with_for_update() if for_update else q

        stmt = _statement(("row", table, keys, for_update), build)
        send = self._held.affects(table.name, equals)  # held writes of other rows can wait
        return (await self.execute(stmt, {f"w_{k}": equals[k] for k in keys}, send_held=send)).first()

    async def delete(self, table: Table, **equals: Any) -> int:
        """Delete the rows where every given column equals its value; returns how many."""
        keys = tuple(sorted(equals))
        stmt = _statement(
            ("delete", table, keys), lambda: delete(table).where(*(table.c[k] == bindparam(f"w_{k}") for k in keys))
        )
        return int((await self.execute(stmt, {f"w_{k}": equals[k] for k in keys})).rowcount)

    async def update(self, table: Table, where: dict[str, Any], values: dict[str, Any]) -> int:
        """Update the rows matching ``where`` (column equality); returns the number of rows changed."""
        result = await self.execute(self._update_stmt(table, where, values), _where_params(where, values))
        return int(result.rowcount)

    @staticmethod
    def _update_stmt(table: Table, where: dict[str, Any], values: dict[str, Any]) -> Any:
        wkeys, vkeys = tuple(sorted(where)), tuple(sorted(values))

        def build() -> Any:
            return (
                update(table)
                .where(*(table.c[k] == bindparam(f"w_{k}") for k in wkeys))
                .values({k: bindparam(f"v_{k}") for k in vkeys})
            )

        return _statement(("update", table, wkeys, vkeys), build)


def _where_params(where: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    return {f"w_{k}": v for k, v in where.items()} | {f"v_{k}": v for k, v in values.items()}
