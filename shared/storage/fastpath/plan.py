"""Hot statements run through the database driver (SQLite's, or asyncpg), compiled once by SQLAlchemy.

Why: SQLAlchemy's ``session.execute`` costs ≈ 70–100 µs per statement even for a cached statement
(cache key, execution context, result metadata), while SQLite itself runs such a statement in a few
µs. Every consumed event runs several, so on the embedded default this overhead was the largest
part of a service's CPU per referral (bench/README.md).

A :class:`Plan` is what SQLAlchemy would send: the SQL its compiler renders for the dialect, with
its own bind processors (UTC datetimes, JSON text) applied to the parameters and its own result
processors applied to the rows. Only what this covers exactly takes this path; anything else
(Python-side callable defaults, escaped bind names, an empty ``IN`` list on SQLite; on PostgreSQL
``executemany`` without RETURNING) goes through SQLAlchemy as before. On PostgreSQL an ``IN`` list
is sent as one array parameter (``= ANY($n)``), and an INSERT's rows as one array per column
(``SELECT * FROM unnest(…)``), so that its text does not change with the number of rows. Statements
run inside the unit of work's transaction, on the same connection, so atomicity is unchanged, and
a driver error is raised as SQLAlchemy's (``IntegrityError`` …, parameters hidden).

On PostgreSQL SQLAlchemy added ≈ 75 µs to asyncpg's ≈ 100 µs per statement (measured on one
connection, bench/README.md); there the round trip itself is most of a statement's time.

Only declared statements take this path (declare.py: :func:`hot` at module level,
:func:`hot_once` per key); any other statement runs through SQLAlchemy, the public path. A
declared statement this module cannot run exactly is logged once with the reason and then also
runs through SQLAlchemy.
SQLAlchemy's private attributes are read in shared/internals/sqlalchemy.py only.
"""

from __future__ import annotations

import importlib
import logging
import re
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from typing import Any

from sqlalchemy.sql.dml import Insert

from shared.gc_pause import collections_paused
from shared.internals.sqlalchemy import result_columns
from shared.storage.fastpath.declare import FastPathMisuse, declared

log = logging.getLogger("koolle.fastsql")

_EXPANDING = re.compile(r"\(?__\[POSTCOMPILE_(\w+)\]\)?")
# asyncpg's placeholders as SQLAlchemy renders them: ``$1``, ``$2::VARCHAR``, ``$3::TIMESTAMP WITH TIME ZONE``
_PG_PARAM = r"\$\d+(?:::[A-Z][A-Z ]*[A-Z](?:\(\d+\))?)?"
_PG_VALUES = re.compile(rf"VALUES (\((?:{_PG_PARAM}, )*{_PG_PARAM}\))")
_PG_NUMBER = re.compile(r"\$(\d+)")
# A placeholder with its cast in a WHERE clause (where ``_PG_PARAM``'s type could run on into ``AND``).
_PG_TYPED = re.compile(r"\$(\d+)::(TIMESTAMP WITH(?:OUT)? TIME ZONE|[A-Z]+(?:\(\d+\))?)(?![\[\w(])")
_PG_DELETE = re.compile(r"DELETE FROM (\w+) WHERE (.+)", re.DOTALL)
_PG_STATUS_COUNT = re.compile(r"(\d+)$")
_CACHE_MAX = 1024
# Rows per multi-row INSERT … RETURNING: well within SQLite's bound-variable limit (32,766) for our
# tables; a longer list (an intake batch's outbox rows) goes in several statements.
ROWS_PER_INSERT = 500
# A result this long (a statistics query's history) is decoded with the garbage collector paused.
LARGE_RESULT = 1000


def _pg_delete_many(sql: str, params: int) -> str | None:
    """A DELETE whose every placeholder is typed and used once, for rows of parameters given as one
    array each: ``DELETE FROM t USING unnest($1::T[], …) AS _held(p1, …) WHERE <its condition on
    _held.p1 …>``. It deletes what the rows' deletes one after another would: a row goes when some
    parameter row's condition holds for it (deletes do not depend on each other's order). None for
    any other statement."""
    m = _PG_DELETE.fullmatch(sql)
    if m is None or "RETURNING" in sql:
        return None
    found = _PG_TYPED.findall(m.group(2))
    typed = {int(n): t for n, t in found}
    if len(found) != params or sorted(typed) != list(range(1, params + 1)) or len(_PG_NUMBER.findall(sql)) != params:
        return None  # a placeholder used twice, or one without its cast
    arrays = ", ".join(f"${n}::{typed[n]}[]" for n in range(1, params + 1))
    names = ", ".join(f"p{n}" for n in range(1, params + 1))
    where = _PG_TYPED.sub(lambda p: f"_held.p{p.group(1)}", m.group(2))
    return f"DELETE FROM {m.group(1)} USING unnest({arrays}) AS _held({names}) WHERE {where}"


def _shifted(sql: str, offset: int) -> str:
    """``sql`` with its placeholders ``$n`` numbered after ``offset``."""
    return _PG_NUMBER.sub(lambda m: f"${int(m.group(1)) + offset}", sql) if offset else sql


_READS = re.compile(r"\s*\(*\s*SELECT\b", re.IGNORECASE)
_NEEDS_TRANSACTION = re.compile(
    r"\bFOR\s+(?:NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b|\bpg_advisory|\b(?:nextval|setval)\s*\(", re.IGNORECASE
)


_CONFLICT_ON = re.compile(r"ON CONFLICT \(([^)]*)\) DO UPDATE")


def _upsert_key(stmt: Any, sql: str) -> tuple[str, ...] | None:
    """The primary key's columns of an ``INSERT … ON CONFLICT (its primary key) DO UPDATE``, else None."""
    m = _CONFLICT_ON.search(sql)
    table = getattr(stmt, "table", None)
    if m is None or table is None:
        return None
    target = {c.strip().strip('"') for c in m.group(1).split(",")}
    key = tuple(c.name for c in table.primary_key.columns)
    return key if key and target == set(key) else None


class FastRow(tuple):  # type: ignore[type-arg]
    """A result row: by position, by attribute (``row.state``) and as ``row._mapping``."""

    __slots__ = ()
    _index: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        try:
            return self[self._index[name]]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def _mapping(self) -> dict[str, Any]:
        return {k: self[i] for k, i in self._index.items()}

    def _asdict(self) -> dict[str, Any]:
        return self._mapping


class FastResult:
    """The parts of SQLAlchemy's buffered ``Result`` that the services use."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def all(self) -> list[Any]:
        return list(self._rows)

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None

    def scalars(self) -> list[Any]:
        return [r[0] for r in self._rows]


class Plan:
    """One statement shape (statement + parameter names) compiled for the database's driver."""

    __slots__ = (
        "stmt",
        "sql",
        "order",
        "consts",
        "procs",
        "expanding",
        "row_type",
        "result_procs",
        "values_group",
        "plain",
        "pg",
        "_pg_multi",
        "_pg_unnest",
        "_pg_unnest_at",
        "_pg_delete_many",
        "arrays",
        "reads_only",
        "upsert_key",
        "_argspec",
    )

    def __init__(
        self,
        stmt: Any,
        sql: str,
        order: list[str],
        consts: dict[str, Any],
        procs: dict[str, Any],
        row_type: type[FastRow] | None,
        result_procs: list[Any] | None,
        is_insert: bool,
        pg: bool = False,
        arrays: frozenset[str] = frozenset(),
    ) -> None:
        self.stmt = stmt  # kept alive so its id() is never reused by another statement
        self.sql = sql
        self.order = order
        self.consts = consts
        self.procs = procs
        self.expanding = set(_EXPANDING.findall(sql))
        self.row_type = row_type
        self.result_procs = result_procs
        self.plain = result_procs is not None and all(p is None for p in result_procs)  # rows as SQLite gives them
        self.pg = pg
        self.arrays = arrays  # PostgreSQL: IN lists sent as one array parameter (``= ANY($n)``)
        self._argspec = tuple((name, procs.get(name), name in arrays) for name in order)
        # PostgreSQL: a plain read (no row lock, no function with an effect) needs no transaction
        # begun before it: under READ COMMITTED each statement takes its own snapshot anyway (routing.py).
        self.reads_only = pg and bool(_READS.match(sql)) and not _NEEDS_TRANSACTION.search(sql)
        self._pg_multi: dict[int, str] = {}  # rows -> the multi-row INSERT's SQL
        # An upsert that updates on its table's primary key: rows of distinct keys may go as one
        # multi-row statement (``_several``).
        self.upsert_key = _upsert_key(stmt, sql) if pg and is_insert else None
        m = (_PG_VALUES if pg else re.compile(r"VALUES (\((?:\?, )*\?\))")).search(sql) if is_insert else None
        self.values_group = m.group(1) if m else None
        if pg and self.values_group is not None:
            # Renumbering rows' placeholders needs every parameter to be in the one VALUES group.
            numbers = [int(n) for n in _PG_NUMBER.findall(sql)]
            if sorted(numbers) != list(range(1, len(order) + 1)) or len(_PG_NUMBER.findall(self.values_group)) != len(order):
                self.values_group = None
        # PostgreSQL: rows sent as one array per column (``SELECT * FROM unnest($1::VARCHAR[], …)``),
        # so the statement's text is the same for any number of rows. A multi-row VALUES was a new
        # text for every row count and every mix of a round: asyncpg prepared each again (a round
        # trip of its own, and never cached past 15 KB) and the server parsed and planned
        # thousands of placeholders each time (bench/README.md). Every placeholder needs its
        # type for the array; SQLAlchemy renders one for each of our column types.
        self._pg_unnest: str | None = None
        self._pg_unnest_at: dict[int, str] = {}  # placeholder offset -> the statement's SQL
        if pg and self.values_group is not None:
            placeholders = re.findall(_PG_PARAM, self.values_group)
            if all("::" in ph for ph in placeholders):
                columns = ", ".join(f"{ph}[]" for ph in placeholders)
                self._pg_unnest = sql.replace("VALUES " + self.values_group, f"SELECT * FROM unnest({columns})", 1)
        # PostgreSQL: several held deletes of this shape as one statement, their parameters as arrays
        # (``_pg_delete_many``), instead of an executemany that went to the server apart from the
        # round's other writes (routing.py).
        self._pg_delete_many = _pg_delete_many(sql, len(order)) if pg and not is_insert and not arrays else None

    def _args(self, params: dict[str, Any]) -> tuple[Any, ...]:
        out = []
        consts = self.consts
        # Each placeholder's name, bind processor and whether it is an array, found once per plan:
        # this runs for every row of every hot statement.
        for name, p, array in self._argspec:
            v = params[name] if name in params else consts[name]
            if array:
                out.append([p(x) for x in v] if p is not None else list(v))
            elif p is not None:
                out.append(p(v))
            else:
                out.append(v)
        return tuple(out)

    def refusal(self, params: Any) -> str | None:
        """Why these parameters cannot run on this plan (then SQLAlchemy runs them), or None."""
        if isinstance(params, list):
            if self.expanding:
                return "executemany with an IN list"
            if self.pg:  # asyncpg's executemany reports no row count: only INSERT … RETURNING
                ok = self.row_type is not None and self.values_group is not None
                return None if ok else "executemany without INSERT … RETURNING on PostgreSQL"
            return None if self.row_type is None or self.values_group is not None else "executemany of a non-INSERT with rows"
        if self.pg:
            return None
        # an empty IN list: SQLAlchemy's own rendering
        return None if all(params.get(n) for n in self.expanding) else "an empty IN list"

    def _pg_rows(self, params: list[dict[str, Any]], offset: int = 0) -> tuple[str, list[Any]]:
        """These rows as one INSERT (arrays per column where every placeholder is typed, else a
        multi-row VALUES), placeholders after ``offset``."""
        if self._pg_unnest is None:
            return _shifted(self._pg_rows_sql(len(params)), offset), [a for p in params for a in self._args(p)]
        unnest = self._pg_unnest_at.get(offset)
        if unnest is None:
            unnest = _shifted(self._pg_unnest, offset)
            if len(self._pg_unnest_at) < 64:  # offsets depend only on a round's mix of statements
                self._pg_unnest_at[offset] = unnest
        return unnest, self._columns(params)

    def _columns(self, params: list[dict[str, Any]]) -> list[list[Any]]:
        """The rows' parameters as one list per placeholder (the arrays ``unnest`` takes)."""
        return [list(column) for column in zip(*map(self._args, params), strict=True)]

    def _pg_rows_sql(self, rows: int) -> str:
        sql = self._pg_multi.get(rows)
        if sql is None:
            group, width = self.values_group, len(self.order)
            assert group is not None
            groups = [_shifted(group, k * width) for k in range(rows)]
            sql = self.sql.replace("VALUES " + group, "VALUES " + ", ".join(groups), 1)
            if len(self._pg_multi) < 64:  # a handful of batch sizes recur; the rest are built again
                self._pg_multi[rows] = sql
        return sql

    async def run_pg(self, conn: Any, params: Any) -> FastResult:
        """The same on an asyncpg connection (inside the unit of work's transaction)."""
        if isinstance(params, list):  # INSERT … RETURNING for several rows: one statement
            if len(params) > ROWS_PER_INSERT:
                parts = [await self.run_pg(conn, params[i : i + ROWS_PER_INSERT]) for i in range(0, len(params), ROWS_PER_INSERT)]
                return FastResult([r for part in parts for r in part.all()], sum(part.rowcount for part in parts))
            sql, args = self._pg_rows(params)
            records = await conn.fetch(sql, *args)
        elif self.row_type is None:
            status = await conn.execute(self.sql, *self._args(params))
            m = _PG_STATUS_COUNT.search(status or "")
            return FastResult([], int(m.group(1)) if m else -1)
        else:
            records = await conn.fetch(self.sql, *self._args(params))
        return FastResult(self._rows(records), len(records))

    async def run_many_pg(self, conn: Any, params: list[dict[str, Any]]) -> None:
        """Held writes (shared/storage/deferred.py), no result: plain inserts as multi-row INSERTs,
        the rest (deletes, updates, upserts that update) as asyncpg's pipelined ``executemany``.
        A multi-row upsert that updates would fail on a key given twice ("cannot affect row a
        second time"); executemany runs the rows one after the other."""
        if self._several(params):
            for i in range(0, len(params), ROWS_PER_INSERT):
                sql, args = self._pg_rows(params[i : i + ROWS_PER_INSERT])
                await conn.execute(sql, *args)
        elif len(params) == 1:
            await conn.execute(self.sql, *self._args(params[0]))
        else:
            await conn.executemany(self.sql, [self._args(p) for p in params])

    def pg_part(self, params: list[dict[str, Any]], offset: int) -> tuple[str, list[Any]] | None:
        """Held writes as one statement whose placeholders start after ``offset`` (to be sent with
        other tables' in one round trip, routing.py), or None when they take an ``executemany``."""
        if len(params) > 1 and self._pg_delete_many is not None:
            return _shifted(self._pg_delete_many, offset), self._columns(params)
        if len(params) != 1 and not (len(params) <= ROWS_PER_INSERT and self._several(params)):
            return None
        return self._numbered(params, offset)

    def pg_returning_part(self, params: list[dict[str, Any]], offset: int) -> tuple[str, list[Any]] | None:
        """An INSERT … RETURNING of these rows as the main statement after held writes sent
        together (routing.py), placeholders after ``offset``; None when it needs several statements."""
        if self.values_group is None or self.row_type is None or not params or len(params) > ROWS_PER_INSERT:
            return None
        return self._numbered(params, offset)

    def _numbered(self, params: list[dict[str, Any]], offset: int) -> tuple[str, list[Any]]:
        """These rows as one statement, placeholders after ``offset``. An INSERT goes as arrays
        (``_pg_rows``) for one row too, so that a round's statement is the same text whatever
        its row counts."""
        if self._pg_unnest is not None or len(params) > 1:
            return self._pg_rows(params, offset)
        return _shifted(self.sql, offset), list(self._args(params[0]))

    def result(self, records: list[Any]) -> FastResult:
        """asyncpg's records of this statement as its result."""
        return FastResult(self._rows(records), len(records))

    def run_many(self, conn: Any, params: list[dict[str, Any]]) -> None:
        """Held writes on SQLite: one ``executemany`` (no result)."""
        conn.executemany(self.sql, [self._args(p) for p in params])

    def _several(self, params: list[dict[str, Any]]) -> bool:
        """Can these rows go as multi-row INSERTs? Plain inserts can. An upsert that updates only on
        its table's primary key, and only when no key is given twice: PostgreSQL refuses to affect
        a row twice in one statement ("cannot affect row a second time"); rows of distinct keys each
        meet their own conflict, as one after the other would."""
        if self.values_group is None or self.row_type is not None:
            return False
        if not self.updates_on_conflict:
            return True
        if self.upsert_key is None:
            return False
        try:
            return len({tuple(p[k] for k in self.upsert_key) for p in params}) == len(params)
        except (KeyError, TypeError):
            return False

    @property
    def updates_on_conflict(self) -> bool:
        return "ON CONFLICT" in self.sql and "DO UPDATE" in self.sql

    def _rows(self, raw: list[Any]) -> list[Any]:
        """The driver's rows (tuples, asyncpg records) as result rows, through the result processors."""
        rp, rt = self.result_procs, self.row_type
        assert rp is not None and rt is not None
        if self.plain:
            return [rt(r) for r in raw]
        # shared/gc_pause.py: thousands of decoded values, no cycles among them
        with collections_paused() if len(raw) >= LARGE_RESULT else nullcontext():
            return [rt([p(v) if p is not None else v for p, v in zip(rp, r, strict=True)]) for r in raw]

    def run(self, conn: Any, params: Any) -> FastResult:
        if isinstance(params, list):
            if self.row_type is not None:  # INSERT … RETURNING for several rows: multi-row VALUES
                if len(params) > ROWS_PER_INSERT:  # SQLite's limit on bound variables
                    parts = [self.run(conn, params[i : i + ROWS_PER_INSERT]) for i in range(0, len(params), ROWS_PER_INSERT)]
                    return FastResult([r for part in parts for r in part.all()], sum(part.rowcount for part in parts))
                sql = self.sql.replace("VALUES " + self.values_group, "VALUES " + ", ".join([self.values_group] * len(params)), 1)  # type: ignore[operator, list-item]
                args: list[Any] = []
                for p in params:
                    args.extend(self._args(p))
                cur = conn.execute(sql, args)
            else:
                cur = conn.executemany(self.sql, [self._args(p) for p in params])
                return FastResult([], cur.rowcount)
        elif self.expanding:
            sql, args = self._expand(params)
            cur = conn.execute(sql, args)
        else:
            cur = conn.execute(self.sql, self._args(params))
        if self.row_type is None:
            return FastResult([], cur.rowcount)
        return FastResult(self._rows(cur.fetchall()), cur.rowcount)

    def _expand(self, params: dict[str, Any]) -> tuple[str, list[Any]]:
        args: list[Any] = []
        for name in self.order:
            v = params[name] if name in params else self.consts[name]
            p = self.procs.get(name)
            if name in self.expanding:
                args.extend(p(x) if p is not None else x for x in v)
            else:
                args.append(p(v) if p is not None else v)
        sql = _EXPANDING.sub(lambda m: "(" + ", ".join("?" * len(params[m.group(1)])) + ")", self.sql)
        return sql, args


_PG_PLACEHOLDER_OR_IN = re.compile(r"\$(\d+)|(NOT )?IN \(__\[POSTCOMPILE_(\w+)\]\)")


def _pg_in_as_any(sql: str, order: list[str], binds: dict[str, Any], dialect: Any) -> tuple[str, frozenset[str]]:
    """PostgreSQL: ``x IN (…list…)`` as ``x = ANY($n::TYPE[])`` (and ``NOT IN`` as ``<> ALL``), the list
    one array parameter, so that the statement has one shape whatever the list's length (SQLAlchemy
    renders a placeholder per element). Placeholders are numbered again in ``order``, which is
    their order in the text; an empty list means what SQLAlchemy's rendering of it means (no
    row matches ``= ANY('{}')``, every row ``<> ALL('{}')``)."""
    numbers = iter(range(1, len(order) + 1))
    arrays: set[str] = set()

    def renumber(m: re.Match[str]) -> str:
        n = next(numbers)
        if m.group(1) is not None:
            return f"${n}"
        name = m.group(3)
        arrays.add(name)
        element = binds[name].type.compile(dialect=dialect)
        return f"{'<> ALL' if m.group(2) else '= ANY'}(${n}::{element}[])"

    # The casts SQLAlchemy adds to other placeholders ($1::VARCHAR) stay where they are.
    return _PG_PLACEHOLDER_OR_IN.sub(renumber, sql), frozenset(arrays)


class FastSQL:
    """The per-database cache of plans; ``plan()`` returns None for what must go through SQLAlchemy."""

    def __init__(self, dialect: Any) -> None:
        self.dialect = dialect
        self.pg = dialect.name == "postgresql"
        # SQLAlchemy's asyncpg adapter internals (checked on import): loaded only for a database on
        # PostgreSQL, so a SQLite service carries neither that dialect nor its checks (≈ 3 MB, bench/).
        self.pg_adapter: Any = importlib.import_module("shared.internals.asyncpg") if self.pg else None
        self._plans: dict[tuple[int, tuple[str, ...]], Plan | None] = {}
        self._why: dict[tuple[int, tuple[str, ...]], str] = {}  # why a plan is None
        self._told: set[tuple[int, str]] = set()  # (statement, reason) already logged
        self.refused = 0  # executions of declared statements that SQLAlchemy ran instead

    def plan(self, stmt: Any, params: Any) -> Plan | None:
        """The plan for a declared statement (declare.py), or None: then the
        caller runs it through SQLAlchemy (undeclared; or, logged once, not covered here)."""
        if not declared(stmt):
            return None
        first = params[0] if isinstance(params, list) else params
        if first is None:
            first = {}
        keys = tuple(sorted(first))
        key = (id(stmt), keys)
        try:
            plan = self._plans[key]
        except KeyError:
            if len(self._plans) >= _CACHE_MAX:
                raise FastPathMisuse(f"more than {_CACHE_MAX} fast-path plans: parameter names built per call?") from None
            plan, self._why[key] = self._compile(stmt, keys)
            self._plans[key] = plan
        if plan is None:
            self._refuse(stmt, self._why[key])
            return None
        reason = plan.refusal(params)
        if reason is not None:
            self._refuse(stmt, reason)
            return None
        return plan

    def _refuse(self, stmt: Any, reason: str) -> None:
        self.refused += 1
        if (id(stmt), reason) not in self._told:
            self._told.add((id(stmt), reason))
            first_line = str(stmt).split("\n", 1)[0][:80]  # SQL with placeholders: no values
            log.info("fast path: %s runs through SQLAlchemy (%s)", first_line, reason)

    def _compile(self, stmt: Any, keys: Sequence[str]) -> tuple[Plan | None, str]:
        if not hasattr(stmt, "compile") or not getattr(stmt, "is_dml", False) and not getattr(stmt, "is_select", False):
            return None, "neither DML nor SELECT"
        try:
            compiled = stmt.compile(dialect=self.dialect, column_keys=list(keys))
        except Exception as exc:  # noqa: BLE001 - what SQLAlchemy compiles only at execution: its path
            return None, f"compiled only at execution ({type(exc).__name__})"
        if compiled.escaped_bind_names or compiled.positiontup is None:
            return None, "escaped bind names"
        consts: dict[str, Any] = {}
        for col in (*compiled.insert_prefetch, *compiled.update_prefetch):
            default = col.default if col in compiled.insert_prefetch else col.onupdate
            if default is None or not default.is_scalar:
                return None, f"a Python-side callable default ({col.key})"
            consts[col.key] = default.arg
        for name, bind in compiled.binds.items():
            if name not in keys and name not in consts:
                if bind.callable is not None or bind.value is None and bind.required:
                    return None, f"parameter {name} missing"
                consts[name] = bind.effective_value
        order = list(compiled.positiontup)
        if any(n not in keys and n not in consts for n in order):
            return None, "a parameter missing"
        sql, arrays = compiled.string, frozenset[str]()
        if self.pg and _EXPANDING.search(sql):
            sql, arrays = _pg_in_as_any(sql, order, compiled.binds, self.dialect)
        if self.pg and {int(n) for n in _PG_NUMBER.findall(sql)} != set(range(1, len(order) + 1)):
            return None, "placeholders not $1…$n in order"
        # The bind and result processors the compiler caches, through the types' public API.
        procs: dict[str, Any] = {}
        for name, bind in compiled.binds.items():
            p = bind.type.dialect_impl(self.dialect).bind_processor(self.dialect)
            # a type's own one-step SQLite conversion, where it has one
            fast_bind = None if self.pg else getattr(bind.type, "sqlite_bind", None)
            if p is not None:
                procs[name] = fast_bind or p
        row_type = result_procs = None
        cols = result_columns(compiled)
        if cols:
            names = [k for k, _ in cols]
            if len(set(names)) != len(names):
                return None, "duplicate result column names"
            row_type = type("Row", (FastRow,), {"__slots__": (), "_index": {n: i for i, n in enumerate(names)}})
            result_procs = [
                (None if self.pg else getattr(ty, "sqlite_result", None))
                or ty.dialect_impl(self.dialect).result_processor(self.dialect, None)
                for _, ty in cols
            ]
        return Plan(stmt, sql, order, consts, procs, row_type, result_procs, isinstance(stmt, Insert), self.pg, arrays), ""
