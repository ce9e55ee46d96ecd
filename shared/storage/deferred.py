"""Writes whose result nobody reads, held until the transaction needs them, then sent in groups.

Why: on PostgreSQL every statement is a round trip to the server, and a consumer's batch runs its
handlers one after the other in one transaction. An intake batch of 200 referrals made about nine
round trips per referral, most of them inserts into the same few tables (bench/README.md). Held
here, the inserts of one table go as one multi-row INSERT (an upsert of distinct keys too; deletes
and updates as one pipelined ``executemany``, except that on PostgreSQL a round's deletes go as one
statement of arrays, ``DELETE … USING unnest(…)``) when the transaction next reads that table, and
at commit.

What stays exact:

- a statement that reads or writes a table first sends what is held for that table, so a
  transaction always sees its own writes (:func:`tables_of`: the tables a statement names; a
  statement not declared for the fast path sends everything held);
- the held writes of one table are regrouped only where the order cannot matter: writes that
  name different whole keys, two deletes, writes to different cases, or a delete and the rows it spares
  (:meth:`TableWrites.groups`); everything else keeps its order. Groups that touch different
  rows share a round, and a round goes as one statement on PostgreSQL;
- counter upserts that add to the row they find (``adds``) of one key become one write with their
  sums while nothing else is written to that row: adding is done in any order;
- they are sent before the commit, the last round together with the outbox rows (on PostgreSQL
  in the same statement, routing.py), so the state change and its events still commit together. An error (a duplicate key …) then fails the transaction as it would have
  failed at the statement itself: a consumer's batch is retried one event at a time.

This module plans; the unit of work sends (shared/storage/fastpath/routing.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table
from sqlalchemy.sql import visitors

from shared.storage.fastpath.declare import declared

INSERT, DELETE, UPDATE = "insert", "delete", "update"

# The column that tells two writes apart for certain: writes of different cases never touch the
# same row. A table without it is partitioned by the first column of its primary key.
PARTITION_COLUMN = "case_id"


@dataclass(slots=True)
class HeldWrite:
    stmt: Any
    params: dict[str, Any]
    kind: str  # insert: params are the row; delete/update: ``scope`` names the rows touched
    scope: dict[str, Any]  # column -> value: the rows a delete or update may touch (equality)
    # Rows a delete leaves for certain (every column named equal): the route's delete keeps a case's
    # current team, so the insert of that team need not wait for it (case_access.py).
    spares: tuple[dict[str, Any], ...] = ()
    # Columns an upsert adds to its row (``SET c = c + excluded.c``, a counter): a later write of the
    # same statement and key adds its values to this one's while it is held (TableWrites.add).
    adds: tuple[str, ...] = ()
    level: int = -1  # the round its group is sent in
    key: tuple[Any, ...] | None = None  # the whole primary key it names, if it names one (TableWrites.add)


@dataclass
class TableWrites:
    """The held writes of one table, in the order they were made."""

    partition: str | None
    key: tuple[str, ...]  # the primary key's columns
    writes: list[HeldWrite] = field(default_factory=list)
    # For reads by equality (``affects``) without a scan of a batch's hundreds of rows: the held
    # inserts by each (column, value) they write, and the deletes and updates (few) apart.
    _inserts_by_value: dict[tuple[str, Any], list[HeldWrite]] = field(default_factory=dict)
    _scoped: list[HeldWrite] = field(default_factory=list)
    _unindexed: list[HeldWrite] = field(default_factory=list)  # a value that is no dict key (JSON)
    _columns: frozenset[str] | None = None  # the columns every held insert names
    _unread: list[HeldWrite] = field(default_factory=list)  # inserts not yet indexed (``_index``)
    # While every write is an insert of one statement with a key of its own (a batch's inbox rows,
    # hundreds of one consumer): they need no order among them, so ``groups`` makes them one group
    # without comparing each with those before it.
    _distinct_keys: set[tuple[Any, ...]] | None = field(default_factory=set)
    # The held counter upserts (``adds``) that a later one of the same key may still add to: none
    # written since to their key, and nothing written since that names no key.
    _adding: dict[tuple[Any, ...], HeldWrite] = field(default_factory=dict)

    def add(self, write: HeldWrite) -> None:
        key = write.key = self._key_of(write)
        if write.adds and key is not None:
            into = self._adding.get(key)
            if into is not None and into.stmt is write.stmt:
                # One row per key and statement: a batch's referrals of one municipality and month
                # had gone as that many statements, each in a round of its own (ordered by key).
                for c in write.adds:
                    into.params[c] += write.params[c]
                return
            write.params = dict(write.params)  # it may absorb later ones: the caller's dict stays
            self._adding[key] = write
        elif self._adding:
            if key is not None:
                self._adding.pop(key, None)
            else:
                self._adding.clear()
        self.writes.append(write)
        self._track_keys(write)
        if write.adds and key is not None:
            # Its other columns change as later ones are added, and the row it leaves is the stored
            # one plus these: a read is told only by its key (``affects``, as for an update).
            write.scope = dict(zip(self.key, key, strict=True))
            self._scoped.append(write)
            return
        if write.kind != INSERT:
            self._scoped.append(write)
            return
        self._unread.append(write)

    def _index(self) -> None:
        """Index the inserts held since the last read: only a read needs the index, and most
        tables are not read again in the transaction that writes them (an intake batch's)."""
        for write in self._unread:
            names = frozenset(write.params)
            self._columns = names if self._columns is None else self._columns & names
            try:
                for item in write.params.items():
                    self._inserts_by_value.setdefault(item, []).append(write)
            except TypeError:
                self._unindexed.append(write)
        self._unread.clear()

    def _track_keys(self, write: HeldWrite) -> None:
        keys = self._distinct_keys
        if keys is None:
            return
        if write.kind != INSERT or write.key is None or write.stmt is not self.writes[0].stmt or write.key in keys:
            self._distinct_keys = None
        else:
            keys.add(write.key)

    def affects(self, equals: dict[str, Any]) -> bool:
        """Could a held write change the rows where these columns equal these values?"""
        if self._unread:
            self._index()
        if any(_overlap(w.scope, equals) for w in self._scoped):
            return True
        if any(_matches(w.params, equals) for w in self._unindexed):
            return True
        # An insert that names the column is found by its value; one that does not might match.
        column = next((c for c in equals if self._columns is not None and c in self._columns), None)
        if column is None:
            return any(_matches(w.params, equals) for w in self.writes if w.kind == INSERT)
        try:
            found = self._inserts_by_value.get((column, equals[column]), ())
        except TypeError:
            return any(_matches(w.params, equals) for w in self.writes if w.kind == INSERT)
        return any(_matches(w.params, equals) for w in found)

    def groups(self) -> list[list[tuple[Any, list[dict[str, Any]]]]]:
        """The writes as (statement, parameter list) groups, by round: the groups of one round touch
        rows no other group of it touches, so they may go in any order or together; each round goes
        after the one before.

        A write joins the earliest group of its own statement whose round comes after that of
        every group holding a write it must follow (``_ordered``); otherwise it opens a new group in
        the round after those. A write that names its row's whole key is compared only with the
        writes of that key and those that name none; another only within its partition (one case).
        So a batch of hundreds stays linear (a dispatcher's updates by notification id had been
        compared each with every one before it); inserts of one statement, each of its own key, are
        one group at once (``_distinct_keys``)."""
        if self._distinct_keys is not None and self.writes:
            for w in self.writes:
                w.level = 0
            return [[(self.writes[0].stmt, [w.params for w in self.writes])]]
        out: list[tuple[Any, list[dict[str, Any]]]] = []
        levels: list[int] = []  # each group's round
        of_stmt: dict[int, list[int]] = {}  # id(stmt) -> its groups' indexes, ascending
        by_part: dict[Any, list[HeldWrite]] = {}
        unpartitioned: list[HeldWrite] = []
        everything: list[HeldWrite] = []
        # Writes that each name a whole key touch that row alone: two of different keys are never
        # ordered (what ``_ordered`` finds when it compares them), so they need not be compared.
        by_key: dict[tuple[Any, ...], list[HeldWrite]] = {}
        keyless: list[HeldWrite] = []
        keyless_by_part: dict[Any, list[HeldWrite]] = {}
        keyless_unpartitioned: list[HeldWrite] = []
        for w in self.writes:
            p = self._partition_of(w)
            k = w.key
            before: list[HeldWrite]
            if k is not None:
                if p is None:
                    before = keyless
                else:
                    before = keyless_by_part.get(p, [])
                    before = before + keyless_unpartitioned if keyless_unpartitioned else before
                same = by_key.get(k)
                before = before + same if same else before
            elif p is None:
                before = everything  # no case to tell it apart: compared with every write
            else:
                before = by_part.get(p, [])
                before = before + unpartitioned if unpartitioned else before
            floor = max((o.level for o in before if _ordered(o, w, self.key)), default=-1)
            slots = of_stmt.setdefault(id(w.stmt), [])
            g = next((i for i in slots if levels[i] > floor), None)
            if g is None:
                g = len(out)
                out.append((w.stmt, []))
                levels.append(floor + 1)
                slots.append(g)
            out[g][1].append(w.params)
            w.level = levels[g]
            everything.append(w)
            if p is None:
                unpartitioned.append(w)
            else:
                by_part.setdefault(p, []).append(w)
            if k is not None:
                by_key.setdefault(k, []).append(w)
            else:
                keyless.append(w)
                if p is None:
                    keyless_unpartitioned.append(w)
                else:
                    keyless_by_part.setdefault(p, []).append(w)
        rounds: list[list[tuple[Any, list[dict[str, Any]]]]] = [[] for _ in range(max(levels, default=-1) + 1)]
        for g, level in enumerate(levels):
            rounds[level].append(out[g])
        return rounds

    def _key_of(self, w: HeldWrite) -> tuple[Any, ...] | None:
        """The whole primary key the write names (an insert's row, an update's or delete's scope), or
        None when it leaves a key column out or a value is no dict key."""
        if not self.key:
            return None
        values = w.params if w.kind == INSERT else w.scope
        try:
            key = tuple([values[c] for c in self.key])
            hash(key)
        except (KeyError, TypeError):
            return None
        return key

    def _partition_of(self, w: HeldWrite) -> Any:
        if self.partition is None:
            return None
        values = w.params if w.kind == INSERT else w.scope
        return values.get(self.partition)


def _ordered(a: HeldWrite, b: HeldWrite, key: tuple[str, ...]) -> bool:
    """Must ``b`` (made later) be sent after ``a``? Only when swapping them could change a row."""
    if a.kind == INSERT and b.kind == INSERT:
        # Two inserts of one key (an upsert's, or "insert unless it exists"): the order decides
        # which row stands. Without the whole key in both, only the same statement is known safe.
        if all(k in a.params and k in b.params for k in key):
            return all(a.params[k] == b.params[k] for k in key)
        return a.stmt is not b.stmt
    if a.kind == DELETE and b.kind == DELETE:
        return False
    if a.kind == INSERT:
        return _matches(a.params, b.scope) and not _spared(a.params, b.spares)
    if b.kind == INSERT:
        return _matches(b.params, a.scope) and not _spared(b.params, a.spares)
    return _overlap(a.scope, b.scope)


def _spared(row: dict[str, Any], spares: tuple[dict[str, Any], ...]) -> bool:
    """Does the delete leave this row for certain? (Every column a spare names is in the row, equal.)"""
    return any(all(k in row and row[k] == v for k, v in spare.items()) for spare in spares)


def _matches(row: dict[str, Any], scope: dict[str, Any]) -> bool:
    """Could the scope's statement touch this row? (A column the row does not name: maybe.)"""
    return all(k not in row or row[k] == v for k, v in scope.items())


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return all(a[k] == b[k] for k in a.keys() & b.keys())


class Held:
    """A unit of work's held writes, by table name."""

    def __init__(self) -> None:
        self.tables: dict[str, TableWrites] = {}

    def __bool__(self) -> bool:
        return bool(self.tables)

    def add(
        self,
        table: Table,
        stmt: Any,
        params: dict[str, Any],
        kind: str,
        scope: dict[str, Any] | None = None,
        spares: tuple[dict[str, Any], ...] = (),
        adds: tuple[str, ...] = (),
    ) -> None:
        if spares and kind != DELETE:
            raise ValueError("only a delete spares rows")
        if adds and kind != INSERT:
            raise ValueError("only an upsert adds to its row")
        t = self.tables.get(table.name)
        if t is None:
            t = self.tables[table.name] = TableWrites(*_shape(table))
        t.add(HeldWrite(stmt, params, kind, scope or {}, spares, adds))

    def affects(self, table: str, equals: dict[str, Any]) -> bool:
        """Could a held write change what a read of ``table`` where these columns equal these values
        returns? (Then the read sends the table's held writes first.)"""
        t = self.tables.get(table)
        if t is None:
            return False
        return t.affects(equals)

    def take(self, names: frozenset[str] | None) -> list[TableWrites]:
        """The held writes of these tables (all when None), no longer held."""
        if names is None:
            out, self.tables = list(self.tables.values()), {}
            return out
        return [self.tables.pop(n) for n in [n for n in self.tables if n in names]]

    def clear(self) -> None:
        self.tables = {}


@functools.cache
def _shape(table: Table) -> tuple[str | None, tuple[str, ...]]:
    """A table's partition column and primary key's columns, found once per table (a unit of work
    holds writes of several tables in every transaction)."""
    return _partition_column(table), tuple(c.name for c in table.primary_key.columns)


def _partition_column(table: Table) -> str | None:
    if PARTITION_COLUMN in table.c:
        return PARTITION_COLUMN
    pk = list(table.primary_key.columns)
    return pk[0].name if pk else None


_TABLES: dict[int, tuple[Any, frozenset[str]]] = {}


def tables_of(stmt: Any) -> frozenset[str] | None:
    """The names of the tables a declared statement reads or writes (found once per statement), or
    None for any other statement: then everything held is sent first."""
    if not declared(stmt):
        return None
    found = _TABLES.get(id(stmt))
    if found is None or found[0] is not stmt:
        names = frozenset(e.name for e in visitors.iterate(stmt) if isinstance(e, Table))
        found = _TABLES[id(stmt)] = (stmt, names)
    return found[1]
