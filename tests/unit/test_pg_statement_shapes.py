"""The shapes of the statements the fast path sends to PostgreSQL, from SQLAlchemy's compiler alone
(no server): an INSERT's rows as arrays per column, so its text does not change with their number,
and several deletes as one statement of arrays."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, delete, insert
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.types import NullType

from shared.storage.fastpath.declare import hot
from shared.storage.fastpath.plan import FastSQL, _pg_delete_many

md = MetaData()
typed = Table("shapes_typed", md, Column("id", String(36), primary_key=True), Column("n", Integer, nullable=False))
# NullType renders no cast: PostgreSQL could not type an array of it
untyped = Table("shapes_untyped", md, Column("id", String(36), primary_key=True), Column("x", NullType))
TYPED = hot(insert(typed))
UNTYPED = hot(insert(untyped))


def _plan(stmt: object, row: dict[str, object]):  # noqa: ANN202
    plan = FastSQL(asyncpg_dialect()).plan(stmt, row)
    assert plan is not None
    return plan


def test_rows_of_an_insert_go_as_one_array_per_column_whatever_their_number() -> None:
    plan = _plan(TYPED, {"id": "a", "n": 1})
    one = plan.pg_part([{"id": "a", "n": 1}], 0)
    three = plan.pg_part([{"id": f"r{i}", "n": i} for i in range(3)], 0)
    assert one is not None and three is not None
    assert one[0] == three[0] == "INSERT INTO shapes_typed (id, n) SELECT * FROM unnest($1::VARCHAR[], $2::INTEGER[])"
    assert three[1] == [["r0", "r1", "r2"], [0, 1, 2]]


def test_placeholders_after_an_offset_keep_the_same_text_for_any_number_of_rows() -> None:
    plan = _plan(TYPED, {"id": "a", "n": 1})
    two = plan.pg_part([{"id": "a", "n": 1}, {"id": "b", "n": 2}], 5)
    forty = plan.pg_part([{"id": f"r{i}", "n": i} for i in range(40)], 5)
    assert two is not None and forty is not None
    assert two[0] == forty[0] and "$6::VARCHAR[], $7::INTEGER[]" in two[0]


def test_an_insert_with_an_untyped_placeholder_keeps_a_multi_row_values() -> None:
    plan = _plan(UNTYPED, {"id": "a", "x": None})
    part = plan.pg_part([{"id": "a", "x": None}, {"id": "b", "x": None}], 0)
    assert part is not None
    assert part[0] == "INSERT INTO shapes_untyped (id, x) VALUES ($1::VARCHAR, $2), ($3::VARCHAR, $4)"
    assert part[1] == ["a", None, "b", None]


DELETE_BY_KEY = hot(delete(typed).where(typed.c.id == bindparam("id"), typed.c.n != bindparam("n")))
DELETE_IN_LIST = hot(delete(typed).where(typed.c.id.in_(bindparam("ids", expanding=True))))


def test_several_deletes_go_as_one_statement_with_an_array_per_parameter() -> None:
    plan = _plan(DELETE_BY_KEY, {"id": "a", "n": 1})
    three = plan.pg_part([{"id": f"r{i}", "n": i} for i in range(3)], 2)
    assert three is not None
    assert three[0] == (
        "DELETE FROM shapes_typed USING unnest($3::VARCHAR[], $4::INTEGER[]) AS _held(p1, p2) "
        "WHERE shapes_typed.id = _held.p1 AND shapes_typed.n != _held.p2"
    )
    assert three[1] == [["r0", "r1", "r2"], [0, 1, 2]]


def test_one_delete_keeps_its_own_text() -> None:
    plan = _plan(DELETE_BY_KEY, {"id": "a", "n": 1})
    assert plan.pg_part([{"id": "a", "n": 1}], 0) == (
        "DELETE FROM shapes_typed WHERE shapes_typed.id = $1::VARCHAR AND shapes_typed.n != $2::INTEGER",
        ["a", 1],
    )


def test_a_delete_with_an_in_list_is_not_made_one_statement() -> None:
    plan = _plan(DELETE_IN_LIST, {"ids": ["a"]})
    assert plan.pg_part([{"ids": ["a"]}, {"ids": ["b"]}], 0) is None


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM t WHERE t.a = ANY($1::VARCHAR[])",  # an array parameter
        "DELETE FROM t WHERE t.a = $1",  # a placeholder without its cast
        "DELETE FROM t WHERE t.a = $1::VARCHAR OR t.b = $1::VARCHAR",  # one placeholder used twice
        "DELETE FROM t WHERE t.a = $1::NUMERIC(10, 2)",  # a cast the pattern does not know
        "DELETE FROM t WHERE t.a = $1::VARCHAR RETURNING t.a",
    ],
)
def test_a_delete_the_array_form_cannot_express_exactly_keeps_its_executemany(sql: str) -> None:
    assert _pg_delete_many(sql, 1) is None
