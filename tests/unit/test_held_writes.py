"""Held writes (shared/storage/deferred.py): grouped into as few statements as the order allows."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, delete, insert, select, update

from shared.storage.deferred import DELETE, INSERT, UPDATE, Held, tables_of
from shared.storage.fastpath.declare import hot, hot_once

md = MetaData()
access = Table(
    "access",
    md,
    Column("case_id", String, primary_key=True),
    Column("kind", String, primary_key=True),
    Column("value", String, primary_key=True),
)
counts = Table("counts", md, Column("month", String, primary_key=True), Column("n", Integer))
other = Table("other", md, Column("id", String, primary_key=True))

INS = insert(access)
INS_NEW = insert(access).prefix_with("OR IGNORE")
DEL = delete(access).where(access.c.case_id == bindparam("case_id"))
UPD = update(counts).where(counts.c.month == bindparam("w_month")).values(n=bindparam("v_n"))
JOINED = hot(select(access.c.value).join_from(access, other, access.c.value == other.c.id))


def rounds(held: Held, table: str = "access") -> list[list[tuple[object, list[dict[str, object]]]]]:
    (writes,) = held.take(frozenset({table}))
    return writes.groups()


def groups(held: Held, table: str = "access") -> list[tuple[object, list[dict[str, object]]]]:
    """The groups in the order they are sent (round by round)."""
    return [g for r in rounds(held, table) for g in r]


def row(case: str, value: str, kind: str = "team") -> dict[str, str]:
    return {"case_id": case, "kind": kind, "value": value}


def test_replacing_the_access_of_many_cases_takes_one_delete_and_one_insert() -> None:
    held = Held()
    for case in ("c1", "c2", "c3"):
        held.add(access, DEL, {"case_id": case}, DELETE, {"case_id": case})
        held.add(access, INS, row(case, "t1"), INSERT)
        held.add(access, INS, row(case, "m1", "municipality"), INSERT)
    out = groups(held)
    assert [stmt for stmt, _ in out] == [DEL, INS]
    assert [p["case_id"] for p in out[0][1]] == ["c1", "c2", "c3"]
    assert [(p["case_id"], p["value"]) for p in out[1][1]] == [
        ("c1", "t1"),
        ("c1", "m1"),
        ("c2", "t1"),
        ("c2", "m1"),
        ("c3", "t1"),
        ("c3", "m1"),
    ]


def test_a_delete_after_an_insert_of_its_rows_is_sent_after_it() -> None:
    held = Held()
    held.add(access, INS, row("c1", "t1"), INSERT)
    held.add(access, DEL, {"case_id": "c1"}, DELETE, {"case_id": "c1"})
    held.add(access, INS, row("c1", "t2"), INSERT)
    out = groups(held)
    assert [(stmt, [p.get("value") for p in ps]) for stmt, ps in out] == [(INS, ["t1"]), (DEL, [None]), (INS, ["t2"])]


UNROUTE = delete(access).where(access.c.case_id == bindparam("case_id"), access.c.value != bindparam("keep"))


def route(held: Held, case: str, team: str) -> None:
    """As shared/case_access.py routes a case: delete its other teams, insert this one unless there."""
    held.add(access, UNROUTE, {"case_id": case, "keep": team}, DELETE, {"case_id": case}, ({"kind": "team", "value": team},))
    held.add(access, INS_NEW, row(case, team), INSERT)


def applied(table: set[tuple[str, str, str]], out: list[list[tuple[object, list[dict[str, object]]]]], reverse: bool) -> set:
    """The rows after sending the rounds, each round's groups in the given or the reversed order."""
    rows = set(table)
    for groups_of_round in out:
        for stmt, params in reversed(groups_of_round) if reverse else groups_of_round:
            for p in params:
                key = (p["case_id"], p.get("kind", "team"), p.get("value"))
                if stmt is INS_NEW:
                    rows.add(key)  # type: ignore[arg-type]
                elif stmt is UNROUTE:
                    rows = {r for r in rows if not (r[0] == p["case_id"] and r[2] != p["keep"])}
                else:
                    raise AssertionError(stmt)
    return rows


def test_a_route_that_spares_the_new_team_goes_with_its_insert_in_one_round() -> None:
    held = Held()
    for case in ("c1", "c2"):
        route(held, case, "t1")
    out = rounds(held)
    assert [[stmt for stmt, _ in r] for r in out] == [[UNROUTE, INS_NEW]]
    assert applied({("c1", "team", "t0"), ("c2", "team", "t1")}, out, reverse=False) == {
        ("c1", "team", "t1"),
        ("c2", "team", "t1"),
    }


def test_an_insert_the_delete_does_not_spare_waits_for_it() -> None:
    held = Held()
    held.add(access, UNROUTE, {"case_id": "c1", "keep": "t1"}, DELETE, {"case_id": "c1"}, ({"kind": "team", "value": "t1"},))
    held.add(access, INS_NEW, row("c1", "t2"), INSERT)
    assert [[stmt for stmt, _ in r] for r in rounds(held)] == [[UNROUTE], [INS_NEW]]


def test_routes_of_one_case_in_one_batch_leave_its_latest_team_in_any_order_within_a_round() -> None:
    for teams in (["t1", "t2"], ["t1", "t2", "t1"], ["t1", "t1"], ["t2", "t1", "t3", "t3"]):
        held = Held()
        for team in teams:
            route(held, "c1", team)
        route(held, "c2", "t9")
        out = rounds(held)
        for start in (set(), {("c1", "team", "t1")}, {("c1", "team", "t0"), ("c1", "team", "t2")}):
            for reverse in (False, True):
                assert applied(start, out, reverse) == {("c1", "team", teams[-1]), ("c2", "team", "t9")}, (teams, start)


def test_only_a_delete_spares_rows() -> None:
    import pytest

    with pytest.raises(ValueError):
        Held().add(access, INS, row("c1", "t1"), INSERT, None, ({"value": "t1"},))


def test_two_inserts_of_one_key_keep_their_order_and_other_keys_share_a_statement() -> None:
    held = Held()
    held.add(access, INS_NEW, row("c1", "g1"), INSERT)
    held.add(access, INS, row("c1", "g1"), INSERT)  # same key, other statement: after the first
    held.add(access, INS_NEW, row("c1", "g2"), INSERT)  # other key: joins the first group
    out = groups(held)
    assert [(stmt, [p["value"] for p in ps]) for stmt, ps in out] == [(INS_NEW, ["g1", "g2"]), (INS, ["g1"])]


def test_updates_of_one_row_keep_their_order_and_a_table_without_case_id_is_split_by_its_key() -> None:
    held = Held()
    held.add(counts, UPD, {"w_month": "2026-12", "v_n": 1}, UPDATE, {"month": "2026-12"})
    held.add(counts, UPD, {"w_month": "2026-11", "v_n": 5}, UPDATE, {"month": "2026-11"})
    held.add(counts, UPD, {"w_month": "2026-12", "v_n": 2}, UPDATE, {"month": "2026-12"})
    out = groups(held, "counts")
    assert [[p["v_n"] for p in ps] for _, ps in out] == [[1, 5], [2]]


def test_a_read_is_affected_only_by_held_writes_of_the_rows_it_reads() -> None:
    held = Held()
    held.add(access, INS, row("c1", "t1"), INSERT)
    held.add(counts, UPD, {"w_month": "2026-12", "v_n": 1}, UPDATE, {"month": "2026-12"})
    assert held.affects("access", {"case_id": "c1"})
    assert not held.affects("access", {"case_id": "c2"})
    assert held.affects("counts", {"month": "2026-12"})
    assert not held.affects("counts", {"month": "2026-10"})
    assert not held.affects("other", {"id": "x"})


def test_taking_some_tables_leaves_the_others_held() -> None:
    held = Held()
    held.add(access, INS, row("c1", "t1"), INSERT)
    held.add(counts, UPD, {"w_month": "2026-12", "v_n": 1}, UPDATE, {"month": "2026-12"})
    assert [w.writes[0].params for w in held.take(frozenset({"counts", "nothing"}))] == [{"w_month": "2026-12", "v_n": 1}]
    assert held
    assert len(held.take(None)) == 1
    assert not held


def test_a_statement_names_every_table_it_reads_and_an_undeclared_one_names_none() -> None:
    assert tables_of(JOINED) == frozenset({"access", "other"})
    declared = hot_once(("test_held_writes.delete", access), lambda: delete(access).where(access.c.case_id == bindparam("c")))
    assert tables_of(declared) == frozenset({"access"})
    assert tables_of(select(access)) is None  # not declared: everything held is sent first


def test_a_read_by_a_column_some_held_inserts_leave_out_is_still_told_it_may_be_affected() -> None:
    held = Held()
    held.add(access, INS, {"case_id": "c1", "kind": "team"}, INSERT)  # value left to a default
    held.add(access, INS, row("c2", "v2"), INSERT)
    assert held.affects("access", {"value": "anything"})
    assert held.affects("access", {"case_id": "c1", "value": "x"})
    assert not held.affects("access", {"case_id": "c3"})


def test_a_read_by_a_json_value_compares_without_an_index() -> None:
    held = Held()
    held.add(other, insert(other), {"id": "x", "doc": {"a": 1}}, INSERT)
    assert held.affects("other", {"doc": {"a": 1}})
    assert not held.affects("other", {"doc": {"a": 2}})
    assert held.affects("other", {"id": "x"})


def test_inserts_of_one_statement_each_of_its_own_key_are_one_group_without_comparing_them(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # A batch's inbox rows: hundreds of one consumer, a table without case_id (one partition).
    import shared.storage.deferred as deferred

    compared = []
    real = deferred._ordered
    monkeypatch.setattr(deferred, "_ordered", lambda a, b, key: compared.append(1) or real(a, b, key))
    inbox = Table(
        "claims", MetaData(), Column("consumer", String, primary_key=True), Column("event_id", String, primary_key=True)
    )
    claim = insert(inbox)
    held = Held()
    for i in range(2000):
        held.add(inbox, claim, {"consumer": "c", "event_id": f"e{i}"}, INSERT)
    out = rounds(held, "claims")
    assert [[(stmt, len(ps)) for stmt, ps in r] for r in out] == [[(claim, 2000)]]
    assert compared == []  # the general planner compared each row with every one before it: 2 million calls
    # A key given twice (or another statement) takes the general planner, which keeps their order.
    held.add(inbox, claim, {"consumer": "c", "event_id": "e1"}, INSERT)
    held.add(inbox, claim, {"consumer": "c", "event_id": "e1"}, INSERT)
    assert [len(ps) for _, ps in groups(held, "claims")] == [1, 1]


def test_updates_each_by_its_own_key_on_a_table_with_cases_are_grouped_without_comparing_them(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # The dispatcher's saves: updates by notification id, whose scope names no case.
    import shared.storage.deferred as deferred

    compared = []
    real = deferred._ordered
    monkeypatch.setattr(deferred, "_ordered", lambda a, b, key: compared.append(1) or real(a, b, key))
    held = Held()
    for i in range(2000):
        held.add(notes, NOTE_SAVE, {"w_id": f"n{i}", "v": i}, UPDATE, {"id": f"n{i}"})
    assert [[(stmt, len(ps)) for stmt, ps in r] for r in rounds(held, "notes")] == [[(NOTE_SAVE, 2000)]]
    assert compared == []  # compared each with every one before it: 2 million calls
    # A write that names no whole key is still compared, and keeps its place.
    held = Held()
    held.add(notes, NOTE_SAVE, {"w_id": "n1", "v": 1}, UPDATE, {"id": "n1"})
    held.add(notes, NOTE_DEL_CASE, {"w_case": "c1"}, DELETE, {"case_id": "c1"})
    held.add(notes, NOTE_SAVE, {"w_id": "n2", "v": 2}, UPDATE, {"id": "n2"})
    assert [[stmt for stmt, _ in r] for r in rounds(held, "notes")] == [[NOTE_SAVE], [NOTE_DEL_CASE], [NOTE_SAVE]]


notes = Table("notes", md, Column("id", String, primary_key=True), Column("case_id", String), Column("v", Integer))
NOTE_UPSERT = insert(notes)  # as an upsert on the key: the row stands as given
NOTE_SAVE = update(notes).where(notes.c.id == bindparam("w_id")).values(v=bindparam("v"))
NOTE_DEL = delete(notes).where(notes.c.id == bindparam("w_id"))
NOTE_DEL_CASE = delete(notes).where(notes.c.case_id == bindparam("w_case"))
NOTE_SET_CASE = update(notes).where(notes.c.case_id == bindparam("w_case")).values(v=bindparam("v"))
NOTE_DEL_VALUE = delete(notes).where(notes.c.v == bindparam("w_v"))  # names neither key nor case


def _apply(rows: dict[str, tuple[str, int]], stmt: object, p: dict[str, object]) -> None:
    if stmt is NOTE_UPSERT:
        rows[p["id"]] = (p["case_id"], p["v"])  # type: ignore[index,assignment]
    elif stmt is NOTE_SAVE:
        if p["w_id"] in rows:
            rows[p["w_id"]] = (rows[p["w_id"]][0], p["v"])  # type: ignore[index,assignment]
    elif stmt is NOTE_DEL:
        rows.pop(p["w_id"], None)  # type: ignore[arg-type]
    elif stmt is NOTE_DEL_CASE:
        for k in [k for k, (c, _) in rows.items() if c == p["w_case"]]:
            del rows[k]
    elif stmt is NOTE_SET_CASE:
        for k in [k for k, (c, _) in rows.items() if c == p["w_case"]]:
            rows[k] = (rows[k][0], p["v"])  # type: ignore[assignment]
    elif stmt is NOTE_DEL_VALUE:
        for k in [k for k, (_, v) in rows.items() if v == p["w_v"]]:
            del rows[k]
    else:
        raise AssertionError(stmt)


def test_any_mix_of_keyed_and_unkeyed_writes_ends_as_made_whatever_the_order_within_a_round() -> None:
    import random

    rng = random.Random(22)
    for _ in range(400):
        ids = {f"n{i}": f"c{i % 2}" for i in range(4)}  # a notification belongs to one case
        held, made = Held(), []
        for v in range(rng.randint(1, 25)):
            i = rng.choice(sorted(ids))
            what = rng.randrange(6)
            if what == 0:
                w = (NOTE_UPSERT, {"id": i, "case_id": ids[i], "v": v}, INSERT, None)
            elif what == 1:
                w = (NOTE_SAVE, {"w_id": i, "v": v}, UPDATE, {"id": i})
            elif what == 2:
                w = (NOTE_DEL, {"w_id": i}, DELETE, {"id": i})
            elif what == 3:
                w = (NOTE_DEL_CASE, {"w_case": ids[i]}, DELETE, {"case_id": ids[i]})
            elif what == 4:
                w = (NOTE_SET_CASE, {"w_case": ids[i], "v": v}, UPDATE, {"case_id": ids[i]})
            else:
                w = (NOTE_DEL_VALUE, {"w_v": v - 3}, DELETE, {"v": v - 3})
            held.add(notes, w[0], w[1], w[2], w[3])
            made.append(w)
        start = {i: (c, -1) for i, c in ids.items() if rng.random() < 0.5}
        expected = dict(start)
        for stmt, params, _, _ in made:
            _apply(expected, stmt, params)
        out = rounds(held, "notes")
        for reverse in (False, True):
            rows = dict(start)
            for groups_of_round in out:
                for stmt, ps in reversed(groups_of_round) if reverse else groups_of_round:
                    for p in reversed(ps) if reverse else ps:
                        _apply(rows, stmt, p)
            assert rows == expected, (made, out)
        # no group writes one key twice (PostgreSQL refuses it in one upsert); deleting twice is harmless
        for r in out:
            for stmt, ps in r:
                if stmt in (NOTE_DEL, NOTE_DEL_VALUE):
                    continue
                keys = [p.get("id", p.get("w_id")) for p in ps if "w_case" not in p]
                assert len(keys) == len(set(keys))
        held = Held()


ADD = insert(counts)  # as an upsert that adds ``n`` to the row it finds (SET n = n + excluded.n)


def test_counter_upserts_of_one_key_are_held_as_one_row_with_their_sum() -> None:
    held = Held()
    first = {"month": "2026-12", "n": 1}
    held.add(counts, ADD, first, INSERT, adds=("n",))
    for month in ("2026-11", "2026-12", "2026-12"):
        held.add(counts, ADD, {"month": month, "n": 1}, INSERT, adds=("n",))
    assert first == {"month": "2026-12", "n": 1}  # the caller's values are not changed
    assert held.affects("counts", {"month": "2026-12"}) and not held.affects("counts", {"month": "2026-10"})
    assert held.affects("counts", {"n": 3})  # what the row holds after it is not known here
    assert [(stmt, ps) for stmt, ps in groups(held, "counts")] == [
        (ADD, [{"month": "2026-12", "n": 3}, {"month": "2026-11", "n": 1}])
    ]


def test_a_counter_upsert_after_another_write_of_its_row_is_held_after_that_write() -> None:
    held = Held()
    held.add(counts, ADD, {"month": "2026-12", "n": 1}, INSERT, adds=("n",))
    held.add(counts, UPD, {"w_month": "2026-12", "v_n": 0}, UPDATE, {"month": "2026-12"})  # a reset between
    held.add(counts, ADD, {"month": "2026-12", "n": 1}, INSERT, adds=("n",))
    held.add(counts, ADD, {"month": "2026-12", "n": 1}, INSERT, adds=("n",))
    assert [(stmt, [p.get("n", p.get("v_n")) for p in ps]) for stmt, ps in groups(held, "counts")] == [
        (ADD, [1]),
        (UPD, [0]),
        (ADD, [2]),
    ]
    import pytest

    with pytest.raises(ValueError):
        held.add(counts, UPD, {"w_month": "2026-12", "v_n": 0}, UPDATE, {"month": "2026-12"}, adds=("n",))
