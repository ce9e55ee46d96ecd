"""The driver fast path gives what SQLAlchemy gives: same rows, same types, same transaction, same
errors. On SQLite and on PostgreSQL (asyncpg), where reachable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, bindparam, func, insert, select, update

from shared.storage.columns import JSONText, UTCDateTime
from shared.storage.database import Database
from shared.storage.fastpath.declare import FastPathMisuse, hot, hot_all, hot_once
from shared.storage.fastpath.plan import FastResult
from shared.storage.tables import messaging_tables
from shared.storage.uow import UnitOfWork
from tests.support.databases import KINDS, fresh_database

pytestmark = pytest.mark.integration

md = MetaData()
messaging_tables(md)
things = Table(
    "things",
    md,
    Column("id", String(36), primary_key=True),
    Column("at", UTCDateTime, nullable=True),
    Column("doc", JSONText, nullable=True),
    Column("flag", Boolean, nullable=False, default=False),
    Column("n", Integer, nullable=False, default=7),
)
INSERT = insert(things)
BY_ID = select(things).where(things.c.id == bindparam("id"))
BY_IDS = select(things.c.id, things.c.n).where(things.c.id.in_(bindparam("ids", expanding=True))).order_by(things.c.id)
PENDING = (
    select(things.c.id)
    .where(things.c.flag.is_(False), things.c.n == 7)
    .order_by(things.c.id)
    .limit(bindparam("limit", type_=Integer))
)
SET_N = update(things).where(things.c.id == bindparam("w_id")).values(n=bindparam("v_n"))
hot_all(INSERT, BY_ID, BY_IDS, PENDING, SET_N)
AT = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)


@pytest.fixture(params=KINDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path):
    async with fresh_database(request.param, md, tmp_path, "fast") as d:
        yield d


async def twice(uow: UnitOfWork, stmt, params):  # noqa: ANN001, ANN201
    """The statement through SQLAlchemy's own path, then through the unit of work (the fast path
    for a declared statement)."""
    await uow.session.execute(stmt, params)
    return await uow.execute(stmt, params)


async def test_rows_and_types_match_sqlalchemy(db: Database) -> None:
    rows = [{"id": f"t{i}", "at": AT + timedelta(minutes=i), "doc": {"k": [i, "ä"]}} for i in range(5)]
    async with UnitOfWork(db) as uow:
        await uow.session.execute(INSERT, rows[:2])  # SQLAlchemy
        await uow.insert(things, rows[2:])  # driver
        await uow.commit()
    async with UnitOfWork(db) as uow:
        slow = (await uow.session.execute(BY_ID, {"id": "t3"})).first()
        fast = await uow.execute(BY_ID, {"id": "t3"})
        assert isinstance(fast, FastResult)
        row = fast.first()
        assert tuple(row) == tuple(slow)
        assert row.at == AT + timedelta(minutes=3) and row.at.tzinfo is not None  # UTC, aware
        assert row.doc == {"k": [3, "ä"]} and row.flag is False and row.n == 7  # JSON, scalar defaults
        assert dict(row._mapping) == dict(slow._mapping)
        ids = await twice(uow, BY_IDS, {"ids": ["t4", "t0", "nope"]})
        assert [tuple(r) for r in ids] == [("t0", 7), ("t4", 7)]
        assert (await twice(uow, BY_IDS, {"ids": []})).all() == []  # empty IN: SQLAlchemy's rendering
        assert await uow.scalars(PENDING, {"limit": 2}) == ["t0", "t1"]
        assert await uow.scalars(PENDING, {"limit": 2}) == ["t0", "t1"]
        assert (await twice(uow, BY_ID, {"id": "nope"})).first() is None


async def test_rowcount_returning_and_rollback(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        await uow.insert(things, [{"id": "a"}, {"id": "b"}])
        await uow.commit()
    async with UnitOfWork(db) as uow:
        assert (await twice(uow, SET_N, {"w_id": "a", "v_n": 1})).rowcount == 1
        many = await uow.execute(SET_N, [{"w_id": "a", "v_n": 2}, {"w_id": "b", "v_n": 2}, {"w_id": "x", "v_n": 2}])
        if db.engine.dialect.name == "sqlite":  # (asyncpg's executemany reports no row count)
            assert many.rowcount == 2
        # the inbox claim: one multi-row INSERT … RETURNING; repeats are not new
        assert await uow.claim_many("c", ["e1", "e2"]) == {"e1", "e2"}
        assert await uow.claim_many("c", ["e2", "e3", "e3"]) == {"e3"}
        await uow.rollback()  # the fast statements were in the transaction
    async with UnitOfWork(db) as uow:
        assert await uow.scalars(select(things.c.n).order_by(things.c.id)) == [7, 7]
        assert await uow.claim_many("c", ["e1"]) == {"e1"}


async def test_outbox_seqs_follow_emit_order(db: Database) -> None:
    class Ev:
        event_type = "x.happened"
        case_id = None

        def __init__(self, i: int) -> None:
            self.event_id = f"ev-{i:05d}"

        def subject(self) -> str:
            return "x.happened"

        def to_json(self) -> bytes:
            return b"{}"

    # 40 rows, twice, and 1,100 (more than one multi-row INSERT holds)
    for round_, count in enumerate((40, 40, 1100)):
        async with UnitOfWork(db) as uow:
            for i in range(count):
                uow.emit(Ev(round_ * 10000 + i))
            await uow.commit()
    handed = [(m["seq"], m["message_id"]) for m in db.handoff]
    async with UnitOfWork(db) as uow:
        stored = [tuple(r) for r in await uow.execute(select(db.outbox.c.seq, db.outbox.c.message_id).order_by(db.outbox.c.seq))]
    assert handed == stored and len(stored) == 1180
    assert [m for _, m in stored] == sorted(m for _, m in stored)  # seq order is emit order


async def test_datetimes_round_trip_exactly_as_sqlalchemy_stores_them(db: Database) -> None:
    from datetime import timezone as tz

    helsinki = tz(timedelta(hours=2))
    values = [AT, AT.replace(microsecond=123), datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=helsinki)]
    async with UnitOfWork(db) as uow:
        await uow.session.execute(INSERT, [{"id": f"s{i}", "at": v} for i, v in enumerate(values)])  # SQLAlchemy
        await uow.insert(things, [{"id": f"x{i}", "at": v} for i, v in enumerate(values)])
        await uow.insert(things, [{"id": f"f{i}", "at": v} for i, v in enumerate(values)])  # driver
        await uow.commit()
    async with UnitOfWork(db) as uow:
        raw = dict((await uow.session.execute(select(things.c.id, func.cast(things.c.at, String)))).all())
        for i in range(3):
            assert raw[f"f{i}"] == raw[f"s{i}"]  # the same text in the file
        await uow.execute(BY_ID, {"id": "f2"})
        row = (await uow.execute(BY_ID, {"id": "f2"})).first()
        assert row.at == values[2] and row.at.tzinfo == UTC


async def test_sqlalchemy_statements_join_the_driver_transaction(db: Database) -> None:
    """BEGIN and COMMIT go to the driver; a SQLAlchemy statement in between is in the same transaction."""
    for commit in (False, True):
        async with UnitOfWork(db) as uow:
            await uow.insert(things, [{"id": f"fast-{commit}"}])
            await uow.insert(things, [{"id": f"fast2-{commit}"}])  # the driver path
            await uow.session.execute(INSERT, {"id": f"slow-{commit}"})  # SQLAlchemy's own path
            assert uow.session.in_transaction()
            await (uow.commit() if commit else uow.rollback())
        async with UnitOfWork(db) as uow:
            got = set(await uow.scalars(select(things.c.id)))
        assert ({"fast-True", "fast2-True", "slow-True"} <= got) is commit
        assert not {"fast-False", "fast2-False", "slow-False"} & got
    async with UnitOfWork(db) as uow:  # a unit of work left without commit rolls back
        await uow.insert(things, [{"id": "left"}])
    async with UnitOfWork(db) as uow:
        await uow.insert(things, [{"id": "c1"}])
        await uow.commit()
        await uow.insert(things, [{"id": "c2"}])  # a second transaction in the same unit of work
        await uow.commit()
        assert set(await uow.scalars(select(things.c.id))) >= {"c1", "c2"}
        assert "left" not in set(await uow.scalars(select(things.c.id)))


async def test_errors_are_sqlalchemys_with_parameters_hidden(db: Database) -> None:
    """A refused statement on the fast path raises what SQLAlchemy's own path raises
    (``IntegrityError`` here), without the parameter values in the message; the unit of work
    rolls back and the connection serves the next one."""
    from sqlalchemy.exc import IntegrityError

    async with UnitOfWork(db) as uow:
        await uow.insert(things, {"id": "secret-henkilotunnus"})
        await uow.insert(things, {"id": "other"})  # the driver path from here on
        await uow.commit()
    async with UnitOfWork(db) as uow:
        with pytest.raises(IntegrityError) as caught:
            await uow.insert(things, {"id": "secret-henkilotunnus"})
        assert "secret-henkilotunnus" not in str(caught.value)
        assert isinstance(caught.value.orig, db.engine.dialect.loaded_dbapi.Error)  # the dialect's DBAPI error
    async with UnitOfWork(db) as uow:
        assert sorted(await uow.scalars(select(things.c.id))) == ["other", "secret-henkilotunnus"]


async def test_a_statement_declared_inside_a_function_is_refused_loudly() -> None:
    """The rule "only statements built once take the fast path" is enforced: declaring one per call fails."""
    with pytest.raises(FastPathMisuse, match="module level"):
        hot(select(things.c.id))
    with pytest.raises(FastPathMisuse, match="module level"):
        hot_all(select(things.c.id))


async def test_an_undeclared_statement_runs_through_sqlalchemy(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        await uow.insert(things, {"id": "u1"})
        result = await uow.execute(select(things.c.id).where(things.c.id == bindparam("id")), {"id": "u1"})
        assert not isinstance(result, FastResult) and result.scalar() == "u1"


async def test_a_declared_statement_the_fast_path_cannot_run_is_logged_once_and_runs_through_sqlalchemy(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """No silent fallback: a Python-side callable default is not covered; the reason is logged once."""
    calls = Table("calls", MetaData(), Column("id", String(36), primary_key=True), Column("n", Integer, default=lambda: 5))
    async with db.engine.begin() as conn:
        await conn.run_sync(calls.metadata.create_all)
    stmt = hot_once(("test calls", calls), lambda: insert(calls))
    assert db.fast is not None
    before = db.fast.refused
    with caplog.at_level("INFO", logger="koolle.fastsql"):
        async with UnitOfWork(db) as uow:
            for i in range(3):
                assert not isinstance(await uow.execute(stmt, {"id": f"c{i}"}), FastResult)
            await uow.commit()
    told = [r.getMessage() for r in caplog.records if r.name == "koolle.fastsql"]
    assert len(told) == 1 and "callable default (n)" in told[0]
    assert db.fast.refused - before == 3
    async with UnitOfWork(db) as uow:
        assert await uow.scalars(select(calls.c.n)) == [5, 5, 5]


NOT_IN = (
    select(things.c.id)
    .where(things.c.id.not_in(bindparam("ids", expanding=True)), things.c.n == bindparam("n"))
    .order_by(things.c.id)
)
hot_all(NOT_IN)


async def test_in_lists_take_the_fast_path_with_the_rows_sqlalchemy_gives(db: Database) -> None:
    async with UnitOfWork(db) as uow:
        await uow.insert(things, [{"id": f"t{i}"} for i in range(4)])
        for ids in (["t3", "t1", "nope"], ["t2"]):
            slow = (await uow.session.execute(BY_IDS, {"ids": ids})).all()
            fast = await uow.execute(BY_IDS, {"ids": ids})
            assert isinstance(fast, FastResult)  # on PostgreSQL too: one array parameter
            assert [tuple(r) for r in fast] == [tuple(r) for r in slow]
            assert await uow.scalars(NOT_IN, {"ids": ids, "n": 7}) == list(
                await uow.session.scalars(NOT_IN, {"ids": ids, "n": 7})
            )
        assert (await uow.execute(BY_IDS, {"ids": []})).all() == []
        assert await uow.scalars(NOT_IN, {"ids": [], "n": 7}) == ["t0", "t1", "t2", "t3"]
        if db.fast is not None and db.fast.pg:
            assert "= ANY($1::VARCHAR(36)[])" in db.fast.plan(BY_IDS, {"ids": ["x"]}).sql
