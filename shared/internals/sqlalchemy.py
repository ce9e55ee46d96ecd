"""SQLAlchemy compiler internals (tested with SQLAlchemy 2.1).

Why: the driver fast path (shared/storage/fastpath/) runs a statement as SQLAlchemy would send it, so it
needs, once per statement shape, what the compiler produced. Bind and result processors come
through public APIs (``TypeEngine.dialect_impl(dialect).bind_processor`` / ``result_processor``,
the same functions the compiler caches). One thing has no public equivalent:

- ``SQLCompiler._result_columns``: the result row's keys and types as SQLAlchemy's own ``Row``
  gets them (``selected_columns`` differs for labels and RETURNING).

Everything else read from a compiled statement is a public attribute (``string``,
``positiontup``, ``binds``, ``insert_prefetch``, ``update_prefetch``, ``escaped_bind_names``).

Checked at import on SQLite's compiler; PostgreSQL's compiler is checked by
:mod:`shared.internals.asyncpg`, which only a service on PostgreSQL imports (its dialect and
asyncpg cost a SQLite service ≈ 3 MB of idle memory, bench/README.md).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, insert, select
from sqlalchemy.dialects import sqlite

from shared.internals import InternalsChanged, require_attrs

LIBRARY = "sqlalchemy"
_PUBLIC = ("string", "positiontup", "binds", "insert_prefetch", "update_prefetch", "escaped_bind_names")


def result_columns(compiled: Any) -> list[tuple[str, Any]]:
    """(key, type) of each column of the statement's result rows, in order; empty for none."""
    return [(c.keyname, c.type) for c in compiled._result_columns]


def check() -> None:
    check_compiler(sqlite.dialect())


def check_compiler(dialect: Any) -> None:
    """Compile probe statements on ``dialect`` and raise :class:`InternalsChanged` unless the
    compiler still gives what shared/storage/fastpath/ reads, in the shape it reads it."""
    t = Table("probe", MetaData(), Column("id", Integer, primary_key=True), Column("name", String(10)))
    probes: list[tuple[str, Any, list[tuple[str, type]]]] = [
        ("select", select(t.c.id, t.c.name.label("n")).where(t.c.id == bindparam("k")), [("id", Integer), ("n", String)]),
        ("insert returning", insert(t).returning(t.c.id), [("id", Integer)]),
    ]
    for what, stmt, expected in probes:
        compiled = stmt.compile(dialect=dialect, column_keys=["k", "id", "name"])
        require_attrs(LIBRARY, compiled, (*_PUBLIC, "_result_columns"), f"{type(compiled).__name__} ({dialect.name})")
        try:
            got = result_columns(compiled)
        except AttributeError as exc:
            raise InternalsChanged(LIBRARY, f"SQLCompiler._result_columns entries have no keyname/type ({exc})") from None
        if [k for k, _ in got] != [k for k, _ in expected] or not all(
            isinstance(ty, cls) for (_, ty), (_, cls) in zip(got, expected, strict=True)
        ):
            raise InternalsChanged(LIBRARY, f"SQLCompiler._result_columns of a {what} on {dialect.name} is {got!r}")
        if not isinstance(compiled.positiontup, list) or not isinstance(compiled.binds, dict):
            raise InternalsChanged(LIBRARY, "SQLCompiler.positiontup or binds changed type")


check()
