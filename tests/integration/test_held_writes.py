"""Held writes on real databases: a transaction reads its own held writes, commits them with its
events, drops them on rollback, and on PostgreSQL sends a batch's writes of one table as one
statement, with the outbox rows in the last one (shared/storage/deferred.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from shared.case_access import CaseAccess, case_access_table
from shared.storage.database import Database
from shared.storage.engine import dialect_insert
from shared.storage.fastpath.declare import hot, hot_once
from shared.storage.tables import messaging_tables
from shared.storage.uow import UnitOfWork
from tests.support.data import consent_given
from tests.support.databases import KINDS, fresh_database, statements_sent

pytestmark = pytest.mark.integration

md = MetaData()
messaging_tables(md)
access = Table(
    "held_access",
    md,
    Column("case_id", String(36), primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("value", String(100), primary_key=True),
)
case_access = case_access_table(md)
counters = Table("held_counters", md, Column("name", String(20), primary_key=True), Column("n", Integer, nullable=False))
UNROUTE = hot(delete(access).where(access.c.case_id == bindparam("case_id"), access.c.kind == "team"))
_upsert = pg_insert(counters)
# Keeps the larger count: an upsert that reads the row it meets, as the contact directory's does.
RAISE_COUNTER = hot(
    _upsert.on_conflict_do_update(index_elements=[counters.c.name], set_={"n": func.greatest(counters.c.n, _upsert.excluded.n)})
)
VALUES_OF = hot(select(access.c.value).where(access.c.case_id == bindparam("case_id")).order_by(access.c.value))


@pytest.fixture(params=KINDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path):
    async with fresh_database(request.param, md, tmp_path, "held") as d:
        yield d


@pytest.fixture
def sent() -> Iterator[list[str]]:
    with statements_sent() as log:
        yield log


async def test_a_transaction_reads_its_held_writes_and_commits_them(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        uow.insert_later(
            access, [{"case_id": "c1", "kind": "team", "value": "t1"}, {"case_id": "c1", "kind": "guardian", "value": "g"}]
        )
        uow.later(UNROUTE, {"case_id": "c1"}, scope={"case_id": "c1"})
        uow.insert_later(access, {"case_id": "c1", "kind": "team", "value": "t2"})
        uow.insert_new_later(access, {"case_id": "c1", "kind": "guardian", "value": "g"})  # already there: kept once
        assert await uow.scalars(VALUES_OF, {"case_id": "c1"}) == ["g", "t2"]  # declared: sends its table's writes
        uow.insert_later(access, {"case_id": "c2", "kind": "team", "value": "t3"})
        uow.insert_later(counters, {"name": "a", "n": 1})
        uow.update_later(counters, {"name": "a"}, {"n": 2})
        assert (await uow.row(counters, name="a")).n == 2
        # A statement not declared for the fast path sends everything held first.
        assert await uow.scalar(select(func.count()).select_from(access)) == 3
        await uow.commit()
    async with UnitOfWork(db) as uow:
        assert await uow.scalars(VALUES_OF, {"case_id": "c2"}) == ["t3"]


async def test_held_writes_are_dropped_on_rollback(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        uow.insert_later(access, {"case_id": "c1", "kind": "team", "value": "t1"})
        await uow.rollback()
    async with UnitOfWork(db) as uow:
        uow.insert_later(access, {"case_id": "c1", "kind": "team", "value": "t1"})
    # Left without commit: nothing was sent, nothing stored.
    async with UnitOfWork(db) as uow:
        assert await uow.scalars(VALUES_OF, {"case_id": "c1"}) == []


async def test_a_held_duplicate_fails_the_commit_and_stores_nothing(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        uow.insert_later(access, {"case_id": "c1", "kind": "team", "value": "t1"})
        await uow.commit()
    with pytest.raises(IntegrityError):
        async with UnitOfWork(db) as uow:
            uow.insert_later(access, {"case_id": "c9", "kind": "team", "value": "t9"})
            uow.insert_later(access, {"case_id": "c1", "kind": "team", "value": "t1"})
            await uow.commit()
    async with UnitOfWork(db) as uow:
        assert await uow.scalars(VALUES_OF, {"case_id": "c9"}) == []


@pytest.mark.postgres
@pytest.mark.parametrize("db", [KINDS[1]], indirect=True)
async def test_routing_a_batch_of_cases_costs_two_statements_on_postgresql(db: Database, sent: list[str]) -> None:
    async with UnitOfWork(db) as uow:
        await uow.row(counters, name="warm")  # a plain read: no transaction begun for it
        sent.clear()
        for i in range(50):
            case = f"c{i}"
            uow.later(UNROUTE, {"case_id": case}, scope={"case_id": case})
            uow.insert_later(
                access, [{"case_id": case, "kind": "team", "value": "t"}, {"case_id": case, "kind": "municipality", "value": "m"}]
            )
        assert await uow.row(counters, name="other") is None  # another table: sends nothing held
        assert sent == ["SELECT held_counters.name, held_counters.n"]
        await uow.send_held()  # writes, and more to come: the transaction begins
        # The 50 deletes: one pipelined executemany (a DELETE per case); the 100 inserts: one statement.
        assert sent[1:] == ["BEGIN;", "executemany DELETE FROM held_access", "INSERT INTO held_access"]
        await uow.commit()
    async with UnitOfWork(db) as uow:
        assert await uow.scalar(select(func.count()).select_from(access)) == 100


@pytest.mark.postgres
@pytest.mark.parametrize("db", [KINDS[1]], indirect=True)
async def test_a_batch_of_routes_commits_its_deletes_as_one_statement_with_the_rest_on_postgresql(
    db: Database, sent: list[str]
) -> None:
    async with UnitOfWork(db) as uow:
        for i in range(20):
            await CaseAccess(uow).route(f"c{i}", "t-old", "m1")
        await uow.commit()
    async with UnitOfWork(db) as uow:
        await uow.row(counters, name="warm")  # a plain read: no transaction begun for it
        sent.clear()
        for i in range(20):  # half move team, half stay; every municipality stays
            await CaseAccess(uow).route(f"c{i}", "t-new" if i % 2 else "t-old", "m1")
        await uow.commit()
    # The 20 deletes (each sparing its case's new team and municipality) and the inserts unless
    # there: one statement, no executemany of a DELETE per case.
    assert sent == ["WITH w0 AS"]
    async with UnitOfWork(db) as uow:
        rows = (await uow.execute(select(case_access.c.case_id, case_access.c.kind, case_access.c.value))).all()
    assert sorted(tuple(r) for r in rows) == sorted(
        [(f"c{i}", "team", "t-new" if i % 2 else "t-old") for i in range(20)]
        + [(f"c{i}", "municipality", "m1") for i in range(20)]
    )


async def test_a_route_replaces_the_old_team_and_keeps_an_unchanged_municipality_in_one_statement(
    db: Database, sent: list[str]
) -> None:
    async with UnitOfWork(db) as uow:
        await CaseAccess(uow).route("c1", "t1", "m1")
        await CaseAccess(uow).route("c2", "t1", "m1")
        await uow.commit()
    async with UnitOfWork(db) as uow:
        await uow.row(counters, name="warm")  # a plain read: no transaction begun for it
        sent.clear()
        await CaseAccess(uow).route("c1", "t2", "m1")
        await uow.send_held()
        if db.engine.dialect.name == "postgresql":
            # The delete of the old team and the insert of the new one touch different rows: one round.
            assert sent == ["BEGIN;", "WITH w0 AS"]
        await CaseAccess(uow).route("c2", "t1", "")  # no municipality any more
        await CaseAccess(uow).route("c2", "t3", "m3")
        await CaseAccess(uow).route("c2", "t3", "m3")
        await uow.commit()
    async with UnitOfWork(db) as uow:
        rows = (await uow.execute(select(case_access.c.case_id, case_access.c.kind, case_access.c.value))).all()
    assert sorted(tuple(r) for r in rows) == [
        ("c1", "municipality", "m1"),
        ("c1", "team", "t2"),
        ("c2", "municipality", "m3"),
        ("c2", "team", "t3"),
    ]


@pytest.mark.postgres
@pytest.mark.parametrize("db", [KINDS[1]], indirect=True)
async def test_held_writes_of_several_tables_go_in_one_statement_on_postgresql(db: Database, sent: list[str]) -> None:
    async with UnitOfWork(db) as uow:
        await uow.row(counters, name="warm")
        uow.insert_later(counters, {"name": "a", "n": 1})
        uow.later(UNROUTE, {"case_id": "c1"}, scope={"case_id": "c1"})
        uow.insert_later(access, {"case_id": "c1", "kind": "team", "value": "t1"})
        uow.update_later(counters, {"name": "a"}, {"n": 2})
        sent.clear()
        await uow.send_held()
        # Round one: the counter's insert and the access rows' delete, together; round two: the
        # counter's update and the access rows' insert, which each follow their table's first.
        # The first write begins the transaction (the read before it needed none).
        assert sent == ["BEGIN;", "WITH w0 AS", "WITH w0 AS"]
        await uow.commit()
    async with UnitOfWork(db) as uow:
        assert (await uow.row(counters, name="a")).n == 2
        assert await uow.scalars(VALUES_OF, {"case_id": "c1"}) == ["t1"]


@pytest.mark.postgres
@pytest.mark.parametrize("db", [KINDS[1]], indirect=True)
async def test_a_round_of_inserts_is_the_same_statement_whatever_its_row_counts_on_postgresql(db: Database) -> None:
    # Rows go as one array per column: asyncpg prepares the round's statement once and keeps it,
    # where a multi-row VALUES was a new statement (a prepare and a plan) for every row count.
    rounds = []
    with statements_sent(words=None) as texts:
        for batch, rows in enumerate((1, 3, 40)):
            async with UnitOfWork(db) as uow:
                for i in range(rows):
                    uow.insert_later(counters, {"name": f"b{batch}-{i}", "n": i})
                    uow.insert_later(access, {"case_id": f"c{batch}", "kind": "team", "value": f"t{i}"})
                texts.clear()
                await uow.commit()
            rounds.append([t for t in texts if "held_" in t])
    assert rounds[0] == rounds[1] == rounds[2] and len(rounds[0]) == 1
    assert "unnest(" in rounds[0][0] and "VALUES" not in rounds[0][0]
    async with UnitOfWork(db) as uow:
        assert await uow.scalars(select(func.count()).select_from(counters)) == [44]
        assert await uow.scalars(VALUES_OF, {"case_id": "c1"}) == ["t0", "t1", "t2"]
        assert (await uow.row(counters, name="b2-39")).n == 39


@pytest.mark.postgres
@pytest.mark.parametrize("db", [KINDS[1]], indirect=True)
async def test_a_duplicate_among_writes_sent_together_fails_as_an_integrity_error(db: Database) -> None:
    await _counter_stored(db, "a")
    with pytest.raises(IntegrityError):
        async with UnitOfWork(db) as uow:
            uow.insert_later(access, {"case_id": "c1", "kind": "team", "value": "t1"})
            uow.insert_later(counters, {"name": "a", "n": 1})
            await uow.commit()
    async with UnitOfWork(db) as uow:
        assert await uow.scalars(VALUES_OF, {"case_id": "c1"}) == []


@pytest.mark.postgres
@pytest.mark.parametrize("db", [KINDS[1]], indirect=True)
async def test_the_outbox_rows_go_in_the_statement_of_the_last_round_of_held_writes_on_postgresql(
    db: Database, sent: list[str]
) -> None:
    async with UnitOfWork(db) as uow:
        await uow.row(counters, name="warm")
        uow.insert_later(counters, {"name": "a", "n": 1})
        uow.later(UNROUTE, {"case_id": "c1"}, scope={"case_id": "c1"})
        uow.insert_later(access, {"case_id": "c1", "kind": "team", "value": "t1"})
        uow.emit(consent_given())
        uow.emit(consent_given())
        sent.clear()
        await uow.commit()
        # Round one: the counter's insert and the access rows' delete; round two: the access rows'
        # insert with the two outbox rows (INSERT … RETURNING their seqs), then the commit. Two
        # statements of writes need a transaction: the first begins it.
        assert sent == ["BEGIN;", "WITH w0 AS", "WITH w0 AS", "COMMIT;"]
    async with UnitOfWork(db) as uow:
        assert await uow.scalars(VALUES_OF, {"case_id": "c1"}) == ["t1"]
        assert (await uow.row(counters, name="a")).n == 1
        assert await uow.scalar(select(func.count()).select_from(db.outbox)) == 2


@pytest.mark.postgres
@pytest.mark.parametrize("db", [KINDS[1]], indirect=True)
async def test_a_commit_of_one_round_after_plain_reads_is_one_statement_without_begin_on_postgresql(
    db: Database, sent: list[str]
) -> None:
    async with UnitOfWork(db) as uow:
        await uow.row(counters, name="warm")
        uow.insert_later(counters, {"name": "a", "n": 1})
        uow.insert_later(access, {"case_id": "c1", "kind": "team", "value": "t1"})
        uow.emit(consent_given())
        sent.clear()
        await uow.commit()
        assert sent == ["WITH w0 AS"]  # the writes and the outbox row: one statement, its own transaction
    async with UnitOfWork(db) as uow:
        await uow.row(counters, name="a", for_update=True)  # a locking read begins the transaction
        uow.update_later(counters, {"name": "a"}, {"n": 2})
        sent.clear()
        await uow.commit()
        assert sent == ["UPDATE held_counters SET", "COMMIT;"]
    async with UnitOfWork(db) as uow:
        assert (await uow.row(counters, name="a")).n == 2
        assert await uow.scalar(select(func.count()).select_from(db.outbox)) == 1


@pytest.mark.postgres
@pytest.mark.parametrize("db", [KINDS[1]], indirect=True)
async def test_upserts_on_the_primary_key_of_distinct_keys_go_as_one_statement_on_postgresql(
    db: Database, sent: list[str]
) -> None:
    await _counter_stored(db, "a")  # n = 1
    async with UnitOfWork(db) as uow:
        for name, n in (("a", 5), ("b", 2), ("c", 3)):
            uow.later(RAISE_COUNTER, {"name": name, "n": n})
        uow.later(RAISE_COUNTER, {"name": "b", "n": 1})  # b again: after the first, never beside it
        sent.clear()
        await uow.commit()
        # Two rounds (b's second upsert follows its first); the first is one multi-row statement,
        # no longer an executemany of a statement per row.
        assert sent == ["BEGIN;", "INSERT INTO held_counters", "INSERT INTO held_counters", "COMMIT;"]
    async with UnitOfWork(db) as uow:
        assert {r.name: r.n for r in await uow.execute(select(counters))} == {"a": 5, "b": 2, "c": 3}
    plan = db.fast.plan(RAISE_COUNTER, {"name": "x", "n": 1})  # type: ignore[union-attr]
    assert plan is not None and plan.upsert_key == ("name",)
    assert plan.pg_part([{"name": "x", "n": 1}, {"name": "x", "n": 2}], 0) is None  # one key twice: one by one


def _adding_counter(dialect: str) -> Any:
    stmt = dialect_insert(dialect)(counters)
    return stmt.on_conflict_do_update(index_elements=[counters.c.name], set_={"n": counters.c.n + stmt.excluded.n})


async def test_counter_upserts_of_one_row_in_a_transaction_are_sent_as_one_with_their_sum(db: Database, sent: list[str]) -> None:
    # As the referral service counts a batch's referrals per municipality, month and channel: each
    # had been a statement of its own, and on PostgreSQL a round trip of its own.
    dialect = db.engine.dialect.name
    add = hot_once(("test_held_writes.adding_counter", dialect), lambda: _adding_counter(dialect))
    await _counter_stored(db, "a")  # n = 1
    async with UnitOfWork(db) as uow:
        for name in ("a", "b", "a", "a", "b", "c"):
            uow.later(add, {"name": name, "n": 1}, adds=("n",))
        sent.clear()
        await uow.commit()
        if dialect == "postgresql":
            assert sent == ["INSERT INTO held_counters"]  # one statement, three rows, its own transaction
    async with UnitOfWork(db) as uow:
        assert {r.name: r.n for r in await uow.execute(select(counters))} == {"a": 4, "b": 2, "c": 1}


async def test_a_commit_hands_its_outbox_rows_to_the_relay_with_their_seqs(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        uow.insert_later(counters, {"name": "a", "n": 1})
        events = [uow.emit(consent_given()) for _ in range(3)]
        await uow.commit()
    stored = {r.message_id: r.seq for r in await _outbox_rows(db)}
    assert {m["message_id"]: m["seq"] for m in db.handoff} == stored
    assert set(stored) == {str(e.event_id) for e in events}


async def _counter_stored(db: Database, name: str) -> None:
    """A committed counter row, for a later transaction's duplicate of it."""
    async with UnitOfWork(db) as uow:
        uow.insert_later(counters, {"name": name, "n": 1})
        await uow.commit()


async def _outbox_rows(db: Database) -> list[Any]:
    async with UnitOfWork(db) as uow:
        return list(await uow.execute(select(db.outbox.c.message_id, db.outbox.c.seq)))


@pytest.mark.postgres
@pytest.mark.parametrize("db", [KINDS[1]], indirect=True)
async def test_a_duplicate_sent_with_the_outbox_rows_stores_neither(db: Database) -> None:
    await _counter_stored(db, "a")
    with pytest.raises(IntegrityError):
        async with UnitOfWork(db) as uow:
            uow.insert_later(counters, {"name": "a", "n": 1})
            uow.emit(consent_given())
            await uow.commit()
    assert await _outbox_rows(db) == []
