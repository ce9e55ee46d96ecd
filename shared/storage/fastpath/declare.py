"""Which statements take the driver fast path: only those declared once, at module level or per key.

A statement object is compiled once (plan.py) and found again by its identity, so it must be built
once. :func:`hot` declares one at module level (it refuses, loudly, to run inside a function: a
statement built per call would never be found again), and :func:`hot_once` builds one per key the
first time it is asked for (per table, per dialect). Any other statement runs through SQLAlchemy.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

S = TypeVar("S")

_KEYS_MAX = 10_000  # statement shapes (hot_once): tables × columns used, far below this


class FastPathMisuse(RuntimeError):
    """A statement was declared for the fast path in a way that would defeat it."""


# Declared statements by id(); holding the object keeps its id from being reused by another.
_DECLARED: dict[int, Any] = {}
_BUILT: dict[Hashable, Any] = {}


def hot(stmt: S) -> S:
    """Declare ``stmt`` for the driver fast path. Call at module level only: raises
    :class:`FastPathMisuse` inside a function, where the statement would be built per call."""
    _at_module_level("hot")
    _DECLARED[id(stmt)] = stmt
    return stmt


def hot_all(*stmts: Any) -> None:
    """Declare several statements (or dicts of them) at module level, as :func:`hot`."""
    _at_module_level("hot_all")
    for stmt in stmts:
        for s in stmt.values() if isinstance(stmt, dict) else (stmt,):
            _DECLARED[id(s)] = s


def _at_module_level(name: str) -> None:
    caller = sys._getframe(2)
    if caller.f_code.co_name != "<module>":
        raise FastPathMisuse(
            f"{name}() called in {caller.f_code.co_name}() at {caller.f_code.co_filename}:{caller.f_lineno}: a statement "
            "built per call is never found again; declare it at module level, or use hot_once(key, build)"
        )


def hot_once(key: Hashable, build: Callable[[], S]) -> S:
    """The statement for ``key``, built and declared the first time it is asked for (a statement
    shape per table or dialect). Raises :class:`FastPathMisuse` past 10,000 keys: a key made per
    call (e.g. holding a value) would grow this without end."""
    stmt = _BUILT.get(key)
    if stmt is None:
        if len(_BUILT) >= _KEYS_MAX:
            raise FastPathMisuse(
                f"more than {_KEYS_MAX:,} fast-path statement keys: is a key built per call? (last: {key!r:.100})"
            )
        stmt = _BUILT[key] = build()
        _DECLARED[id(stmt)] = stmt
    return stmt


def declared(stmt: Any) -> bool:
    return _DECLARED.get(id(stmt)) is stmt
