"""The aiosqlite internals SQLAlchemy's aiosqlite adapter reads (tested with SQLAlchemy 2.1, aiosqlite 0.22).

Why: shared/storage/sqlite_inline.py gives SQLAlchemy's aiosqlite dialect a connection that runs SQLite
calls on the event loop's thread instead of aiosqlite's worker thread (bench/README.md). The
adapter reads private attributes of the aiosqlite connection it wraps, so ``InlineConnection``
provides them: ``_connection`` (open or not), ``_conn`` (the sqlite3 connection, for the isolation
level), ``_tx`` (a queue of (future, function) run on the connection's thread), and ``stop()``.
This module checks that the adapter reads exactly those (and nothing else of the kind that our
connection would lack) and that ``InlineConnection`` has them.
"""

from __future__ import annotations

import types
from typing import Any

from sqlalchemy.dialects.sqlite import aiosqlite as adapter

from shared.internals import InternalsChanged, code_names

LIBRARY = "sqlalchemy"
# The private names the adapter's code uses in SQLAlchemy 2.1: the driver connection's
# (_conn, _connection, _tx), aiosqlite's own thread (_thread, only without async_creator) and the
# adapter's own methods.
KNOWN = {"_conn", "_connection", "_tx", "_thread", "_handle_exception", "_init_dbapi_attributes"}
PROVIDED = ("_conn", "_connection", "_tx", "stop")


def adapter_private_names() -> set[str]:
    names: set[str] = set()
    classes = (
        adapter.AsyncAdapt_aiosqlite_connection,
        adapter.AsyncAdapt_aiosqlite_cursor,
        adapter.AsyncAdapt_aiosqlite_ss_cursor,
        adapter.AsyncAdapt_aiosqlite_dbapi,
    )
    for cls in classes:
        for member in vars(cls).values():
            fns: list[Any] = [member.fget, member.fset] if isinstance(member, property) else [member]
            for fn in fns:
                if isinstance(fn, types.FunctionType):
                    names |= code_names(fn)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


def check() -> None:
    from shared.storage.sqlite_inline import InlineConnection

    new = adapter_private_names() - KNOWN
    if new:
        raise InternalsChanged(LIBRARY, f"the aiosqlite adapter now also reads {', '.join(sorted(new))}")
    missing = [n for n in PROVIDED if not hasattr(InlineConnection, n) and n not in code_names(InlineConnection.__init__)]
    if missing:
        raise InternalsChanged(LIBRARY, f"shared/storage/sqlite_inline.py's InlineConnection lacks {', '.join(missing)}")


check()
