"""Every touch of a library's private attributes, one module per library.

Koolle's hot path reaches into a few libraries' internals where no public API was fast enough
(bench/README.md gives the measurements). Those touches live here and nowhere else:

- :mod:`shared.internals.natspy`: nats-py's pull subscription and connection;
- :mod:`shared.internals.sqlalchemy`: SQLAlchemy's compiler (the driver fast path, shared/storage/fastpath/);
- :mod:`shared.internals.asyncpg`: SQLAlchemy's asyncpg adapter (its transaction and error mapping);
- :mod:`shared.internals.aiosqlite`: the aiosqlite attributes SQLAlchemy's adapter reads, which
  shared/storage/sqlite_inline.py provides.

Each module checks its assumptions when it is imported (so at every service's start-up; the
asyncpg module only where the database is PostgreSQL, when the fast path is built for it) and
raises :class:`InternalsChanged`, naming the library and its installed version, when an upgrade
broke one. There is no silent fallback: a mismatch stops the process at start-up, and
tests/unit/test_internals.py fails in CI. pyproject.toml caps each library at the tested minor.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any


class InternalsChanged(RuntimeError):
    """An installed library no longer has the private attribute or behaviour Koolle relies on."""

    def __init__(self, library: str, what: str) -> None:
        self.library = library
        self.version = installed(library)
        super().__init__(
            f"{library} {self.version}: {what}. Koolle's shared/internals/ was written for the version capped in "
            f"pyproject.toml; update shared/internals/ for this version (or pin the tested one)."
        )


def installed(library: str) -> str:
    try:
        return version(library)
    except PackageNotFoundError:
        return "(not installed)"


def code_names(fn: Callable[..., Any]) -> set[str]:
    """The attribute and global names a function's code uses (nested functions included)."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return set()
    out: set[str] = set()

    def walk(c: types.CodeType) -> None:
        out.update(c.co_names)
        for const in c.co_consts:
            if isinstance(const, types.CodeType):
                walk(const)

    walk(code)
    return out


def require_names(library: str, fn: Callable[..., Any], names: Iterable[str], where: str) -> None:
    """Raise unless ``fn``'s code still uses every one of ``names`` (e.g. assigns those attributes)."""
    missing = sorted(set(names) - code_names(fn))
    if missing:
        raise InternalsChanged(library, f"{where} no longer uses {', '.join(missing)}")


def require_attrs(library: str, obj: Any, names: Iterable[str], where: str) -> None:
    missing = sorted(n for n in names if not hasattr(obj, n))
    if missing:
        raise InternalsChanged(library, f"{where} has no {', '.join(missing)}")


def check_all() -> None:
    """Import (and so check) every internals module."""
    from shared.internals import aiosqlite, asyncpg, natspy, sqlalchemy

    for module in (aiosqlite, asyncpg, natspy, sqlalchemy):
        module.check()
