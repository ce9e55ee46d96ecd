"""The meetings statistics of some months read only what counts in those months (the facts' index
columns: kind, month, last month, case), and answer exactly what the whole history answers for them,
on both databases. A facts table from before the index columns gets them at start, empty, and its
records their values after the start, a page at a time; until then the queries read it whole."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from services.meetings import handlers, stats
from services.meetings.adapters import FACT_TABLES, INDEX_OF, MeetingsUnitOfWork, metadata
from services.meetings.joint_statistics import JointWorkStatistics
from services.meetings.meeting_statistics import MeetingStatisticsModel
from shared.contracts.meetings import JointWorkStatisticsQuery, MeetingStatisticsQueryV2
from tests.support.databases import KINDS, fresh_database

pytestmark = pytest.mark.integration

MODELS = {"meetings": MeetingStatisticsModel, "joint": JointWorkStatistics}
RANGES = [
    (None, None),
    ("2026-02", "2026-02"),
    ("2026-01", "2026-03"),
    ("2026-04", None),
    (None, "2026-01"),
    ("2027-01", "2027-01"),
]


@pytest.fixture(params=KINDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path):
    async with fresh_database(request.param, metadata, tmp_path, "bymonth") as d:
        yield d


def _at(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def history(seed: int = 7) -> list[tuple[str, dict[str, Any]]]:
    """Six months of cases in two municipalities, with what makes months hard: meetings just before a
    Helsinki midnight at a month's end (the next month in Helsinki), cases met again months after
    their first meeting, cancelled and never-held meetings, services overdue in one month and started
    in a later one, follow-ups on time and overdue, a roster change and adoption stages."""
    rnd = random.Random(seed)
    pros = [f"s-{i}" for i in range(6)]
    evs: list[tuple[str, dict[str, Any]]] = []
    for i, p in enumerate(pros):
        evs.append(
            (
                "roster.professional_changed",
                {
                    "professional_id": p,
                    "unit": f"unit-{i % 3}",
                    "team": f"t-{i % 2}",
                    "occurred_at": "2025-12-01T00:00:00Z",
                    "event_id": f"r{i}",
                },
            )
        )
    evs.append(
        (
            "roster.professional_changed",
            {"professional_id": "s-0", "unit": "unit-new", "team": None, "occurred_at": "2026-03-01T00:00:00Z", "event_id": "r9"},
        )
    )
    for n, (muni, stage, at) in enumerate(
        [("Porvoo", "planning", "2026-01-10"), ("Porvoo", "trial", "2026-03-31T21:30:00"), ("Loviisa", "rooted", "2026-02-02")]
    ):
        evs.append(
            (
                "meeting.adoption_stage_recorded",
                {
                    "municipality": muni,
                    "stage": stage,
                    "occurred_at": f"{at}Z" if "T" in at else f"{at}T08:00:00Z",
                    "event_id": f"st{n}",
                },
            )
        )
    for c in range(60):
        case = f"00000000-0000-4000-8000-{c:012d}"
        muni = ("Porvoo", "Loviisa")[c % 2]
        received = datetime(2026, 1, 1, 8, tzinfo=UTC) + timedelta(days=rnd.randint(0, 150), hours=rnd.randint(0, 12))
        evs.append(
            (
                "referral.received",
                {
                    "case_id": case,
                    "municipality": muni,
                    "received_at": _at(received),
                    "decision_due_by": (received + timedelta(days=7)).date().isoformat(),
                },
            )
        )
        if c % 5 == 0:
            evs.append(
                (
                    "assessment.started",
                    {
                        "case_id": case,
                        "complete_by": (received + timedelta(days=90)).date().isoformat(),
                        "occurred_at": _at(received + timedelta(days=2)),
                        "event_id": f"a{c}",
                    },
                )
            )
        if c % 11 == 0:
            evs.append(("referral.case_transferred", {"case_id": case, "municipality": "Sipoo"}))
        starts = received + timedelta(days=rnd.randint(1, 20))
        for m in range(rnd.randint(0, 3)):
            meeting = f"00000000-0000-4000-9000-{c:06d}{m:06d}"
            if m == 0 and c % 4 == 0:  # 23:30 in Helsinki on a month's last day: the next month there
                first = starts.replace(day=1) + timedelta(days=32)
                starts = first.replace(day=1, hour=21, minute=30) - timedelta(days=1)
            parts = [{"participant_id": "g-1", "kind": "family"}] + [
                {"participant_id": p, "kind": "professional"} for p in rnd.sample(pros, 2)
            ]
            evs.append(
                (
                    "meeting.convened",
                    {
                        "case_id": case,
                        "meeting_id": meeting,
                        "starts_at": _at(starts),
                        "participants": parts,
                        "municipality": muni if c % 3 else None,
                    },
                )
            )
            fate = rnd.random()
            if fate < 0.15:
                evs.append(("meeting.cancelled", {"case_id": case, "meeting_id": meeting}))
            elif fate < 0.85:
                if fate < 0.3:
                    starts += timedelta(days=3)
                    evs.append(
                        (
                            "meeting.rescheduled",
                            {
                                "case_id": case,
                                "meeting_id": meeting,
                                "sequence": 1,
                                "starts_at": _at(starts),
                                "participants": parts[:2],
                            },
                        )
                    )
                present = [{"participant_id": p["participant_id"], "present": rnd.random() < 0.8} for p in parts]
                evs.append(
                    (
                        "meeting.held",
                        {
                            "case_id": case,
                            "meeting_id": meeting,
                            "held_at": _at(starts),
                            "attendance": present,
                            "family_present": present[0]["present"],
                            "municipality": muni if c % 3 else None,
                        },
                    )
                )
                evs.append(
                    (
                        "meeting.feedback_recorded",
                        {
                            "case_id": case,
                            "meeting_id": meeting,
                            "given_by": "family",
                            "rating": rnd.randint(1, 5),
                            "felt_heard": rnd.random() < 0.7,
                        },
                    )
                )
            starts += timedelta(days=rnd.randint(20, 70))  # met again months later
        if c % 3 == 0:
            due = received + timedelta(days=40)
            evs.append(("followup.recorded", {"case_id": case, "event_id": f"f{c}", "occurred_at": _at(due)}))
            evs.append(("followup.overdue", {"case_id": case, "plan_id": f"p{c}", "due_at": _at(due + timedelta(days=30))}))
        if c % 4 == 1:
            start_by = (received + timedelta(days=25)).date()
            evs.append(
                ("plan.service_start_overdue", {"case_id": case, "service_id": f"sv{c}", "start_by": start_by.isoformat()})
            )
            if c % 8 == 1:  # started in a later month, late
                evs.append(
                    (
                        "plan.service_status_recorded",
                        {
                            "case_id": case,
                            "service_id": f"sv{c}",
                            "start_by": start_by.isoformat(),
                            "status": "started",
                            "on": (start_by + timedelta(days=35)).isoformat(),
                            "days_late": 35,
                        },
                    )
                )
    for n, (_, ev) in enumerate(evs):
        ev.setdefault("event_id", f"e{n}")
        ev.setdefault("occurred_at", "2026-01-01T00:00:00Z")
    return evs


def folded(model: str, evs: list[tuple[str, dict[str, Any]]]) -> Any:
    m = MODELS[model]()
    for event_type, ev in evs:
        m.apply(event_type, ev)
    return m


def expected(
    model: str, facts: dict[str, dict[str, Any]], municipality: str | None, months: tuple[str | None, str | None]
) -> Any:
    """The figures from the whole history, as the queries computed them before they read by month."""
    first, last = months
    if model == "meetings":
        m = MeetingStatisticsModel(facts)
        return stats.compute(m.meetings(), m.convenings(), m.units(), municipality=municipality, from_month=first, to_month=last)
    rows = JointWorkStatistics(facts).figures(municipality)
    return {"rows": [r for r in rows if (first is None or r["month"] >= first) and (last is None or r["month"] <= last)]}


async def answers(db: Any, municipality: str | None, months: tuple[str | None, str | None]) -> dict[str, Any]:
    first, last = months
    async with MeetingsUnitOfWork(db) as uow:
        v2 = await handlers.statistics(MeetingStatisticsQueryV2(municipality=municipality, from_month=first, to_month=last), uow)
        joint = await handlers.joint_work_statistics(
            JointWorkStatisticsQuery(municipality=municipality, from_month=first, to_month=last), uow
        )
    assert v2.ok and joint.ok
    return {"meetings": v2.data, "joint": joint.data}


async def test_the_statistics_of_some_months_are_those_months_figures_of_the_whole_history(db: Any) -> None:
    evs = history()
    # Kept live as the consumers keep them: first what the first half of the events folds, inserted,
    # then the rest folded into it, updated (a meeting held after it was convened moves into a month).
    half = len(evs) // 2
    for part in (evs[:half], evs):
        async with MeetingsUnitOfWork(db) as uow:
            for model in MODELS:
                for key, facts in folded(model, part).facts.items():
                    known = await uow.meetings.statistics_facts(key, model)
                    if facts != known:
                        await uow.meetings.save_statistics_facts(key, facts, new=known is None, model=model)
            await uow.commit()
    whole = {model: folded(model, evs).facts for model in MODELS}
    assert any(r["first_meetings"] for r in expected("joint", whole["joint"], None, ("2026-03", "2026-03"))["rows"])
    for municipality in (None, "Porvoo", "Sipoo"):
        for months in RANGES:
            got = await answers(db, municipality, months)
            for model in MODELS:
                assert got[model] == expected(model, whole[model], municipality, months), (model, municipality, months)


async def test_a_query_for_one_month_reads_that_months_records_and_not_the_rest(db: Any) -> None:
    evs = history()
    async with MeetingsUnitOfWork(db) as uow:
        for model in MODELS:
            await uow.meetings.replace_statistics_facts(folded(model, evs).facts, model)
        await uow.commit()
    async with MeetingsUnitOfWork(db) as uow:
        read = await handlers._meeting_statistics_facts(uow, ("2026-02", "2026-02"))
        everything = await uow.meetings.all_statistics_facts("meetings")
    held = [k for k, f in read.items() if k.startswith("meeting:")]
    assert held and all(INDEX_OF["meetings"](k, read[k])["month"] == "2026-02" for k in held)
    assert {k for k in read if k.startswith("case:")} == {f"case:{read[k]['case']}" for k in held}
    assert len(read) < len(everything) / 3


async def test_a_facts_table_from_before_the_index_columns_gets_them_and_is_read_whole_until_they_are_filled(db: Any) -> None:
    evs = history()
    whole = {model: folded(model, evs).facts for model in MODELS}
    async with db.engine.begin() as conn:  # the tables as the previous version created them
        for model, t in FACT_TABLES.items():
            await conn.execute(text(f"DROP TABLE {t.name}"))
            await conn.execute(text(f"CREATE TABLE {t.name} (key VARCHAR(200) PRIMARY KEY, facts TEXT NOT NULL)"))
            insert = text(f"INSERT INTO {t.name} (key, facts) VALUES (:k, :f)")
            await conn.execute(insert, [{"k": key, "f": json.dumps(facts)} for key, facts in whole[model].items()])
    await db.create_all()  # the start of this version: the columns, empty, and their indexes
    await db.create_all()  # and the next one: nothing more to do
    for months in RANGES[:3]:  # until the records have their values, the queries read them all
        got = await answers(db, "Porvoo", months)
        for model in MODELS:
            assert got[model] == expected(model, whole[model], "Porvoo", months)
    async with MeetingsUnitOfWork(db) as uow:  # a consumer rewrites one record meanwhile
        key = next(k for k, f in whole["joint"].items() if k.startswith("meeting:") and f.get("held_at"))
        moved = whole["joint"][key] | {"starts_at": "2026-06-30T08:00:00+00:00"}
        await uow.meetings.save_statistics_facts(key, moved, new=False)
        await uow.commit()
    whole["joint"][key] = moved
    pages = 0
    while True:  # what the service's background task does after the start, a page at a time
        async with MeetingsUnitOfWork(db) as uow:
            if not await handlers.index_statistics_facts(uow):
                break
        pages += 1
    assert pages >= 1
    async with db.engine.connect() as conn:
        for model, t in FACT_TABLES.items():
            names = await conn.run_sync(lambda c, n=t.name: {i["name"] for i in inspect(c).get_indexes(n)})
            assert {i.name for i in t.indexes} <= names
            rows = (await conn.execute(text(f"SELECT key, kind, month, last_month, case_id FROM {t.name}"))).all()
            assert len(rows) == len(whole[model]) and all(
                {"kind": r.kind, "month": r.month, "last_month": r.last_month, "case_id": r.case_id}
                == INDEX_OF[model](r.key, whole[model][r.key])
                for r in rows
            )
    for months in RANGES[:3]:
        got = await answers(db, "Porvoo", months)
        for model in MODELS:
            assert got[model] == expected(model, whole[model], "Porvoo", months)
