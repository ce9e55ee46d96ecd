"""Partial indexes (``CREATE INDEX … WHERE …``) on both databases, without loading PostgreSQL's dialect
on SQLite.

SQLAlchemy spells a partial index per dialect (``sqlite_where``, ``postgresql_where``), and naming
a dialect's option loads that dialect's modules: PostgreSQL's cost a SQLite service ≈ 3 MB of idle
memory (bench/README.md). So the PostgreSQL condition is given to the index just before its table
is created on PostgreSQL, the only time its DDL is compiled.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Index, Table, event


def partial_index(name: str, *columns: Any, where: ColumnElement[bool]) -> Index:
    """An index of only the rows matching ``where``, on SQLite and on PostgreSQL."""
    index = Index(name, *columns, sqlite_where=where)
    table = index.table
    if not isinstance(table, Table):
        raise TypeError(f"partial index {name}: give it the table's columns")
    if not event.contains(table, "before_create", _postgresql_conditions):
        event.listen(table, "before_create", _postgresql_conditions)
    index.info["where"] = where
    return index


def _postgresql_conditions(table: Table, connection: Any, **_: Any) -> None:
    if connection.dialect.name != "postgresql":
        return
    for index in table.indexes:
        where = index.info.get("where")
        if where is not None:
            index.dialect_kwargs["postgresql_where"] = where
