"""SQLAlchemy's asyncpg adapter internals (tested with SQLAlchemy 2.1 and asyncpg 0.32).

Why: the driver fast path (shared/storage/fastpath/) runs a hot statement on the unit of work's own
asyncpg connection, inside the transaction SQLAlchemy manages. SQLAlchemy's adapter begins that
transaction lazily, at the first statement, and maps asyncpg's errors to its DBAPI errors; neither
has a public API. Read here only:

- ``AsyncAdapt_asyncpg_connection._transaction`` and ``._start_transaction()``: begin the
  transaction as the adapter's own cursor does before its first statement;
- ``._handle_exception(exc)``: asyncpg's error as the dialect's DBAPI error (``IntegrityError`` …).

The asyncpg connection itself comes through the public ``driver_connection``. The check also runs
:mod:`shared.internals.sqlalchemy`'s compiler probes on the PostgreSQL dialect: only a service on
PostgreSQL imports this module (the fast path, when its database is opened at start-up).
"""

from __future__ import annotations

import inspect
from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection, AsyncAdapt_asyncpg_cursor, PGDialect_asyncpg

from shared.internals import InternalsChanged, require_attrs, require_names
from shared.internals.sqlalchemy import check_compiler

LIBRARY = "sqlalchemy"


def check() -> None:
    """Raise :class:`InternalsChanged` unless the adapter and the dialect's compiler still have what
    the fast path uses."""
    check_compiler(PGDialect_asyncpg())  # type: ignore[no-untyped-call]
    require_attrs(
        LIBRARY,
        AsyncAdapt_asyncpg_connection,
        ("_start_transaction", "_handle_exception", "driver_connection"),
        "AsyncAdapt_asyncpg_connection",
    )
    require_names(LIBRARY, AsyncAdapt_asyncpg_connection.__init__, ("_transaction",), "AsyncAdapt_asyncpg_connection.__init__")
    if not inspect.iscoroutinefunction(AsyncAdapt_asyncpg_connection._start_transaction):
        raise InternalsChanged(LIBRARY, "AsyncAdapt_asyncpg_connection._start_transaction is no coroutine function")
    # The adapter's own cursor begins the transaction this way: ours must stay the same.
    require_names(
        LIBRARY,
        AsyncAdapt_asyncpg_cursor._prepare_and_execute,
        ("_transaction", "_start_transaction"),
        "AsyncAdapt_asyncpg_cursor",
    )


check()


async def in_transaction(adapted: Any) -> Any:
    """The asyncpg connection of SQLAlchemy's adapted connection, its transaction begun."""
    if adapted._transaction is None:
        await adapted._start_transaction()
    return adapted.driver_connection


def as_dbapi_error(adapted: Any, exc: Exception) -> Exception:
    """asyncpg's exception as the adapter raises it (the dialect's DBAPI error classes)."""
    try:
        adapted._handle_exception(exc)
    except Exception as translated:  # noqa: BLE001 - it always raises
        return translated
    raise InternalsChanged(LIBRARY, "AsyncAdapt_asyncpg_connection._handle_exception returned instead of raising")
