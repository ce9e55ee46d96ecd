"""Growth of the meetings statistics: is a month's answer as fast when years of meetings have piled up?

The two meetings statistics queries (``query.meetings.statistics.v2``,
``query.meetings.joint_work_statistics.v1``) are run in process on PostgreSQL against histories of
the same density (``--per-month`` held meetings a month, each a case of its own with a follow-up and
an onward service) and different length, all ending in the same month: one year and ten by default.
The read models' records are made by folding events through the models themselves
(services/meetings/meeting_statistics.py, joint_statistics.py) and stored as a rebuild stores them.
Each query then runs ``--ops`` times on every scale, the scales taking turns (as ``bench.growth``
does), for the last month, the last twelve months and (fewer runs: it reads everything by
construction) every month. p50 and p99 per query and scale go to ``meetings_growth.md``.

    python -m bench.meetings_growth                              # 1 and 10 years at 1,000 meetings a month
    python -m bench.meetings_growth --years 1 3 --ops 5          # a small check
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench.growth import create_database, drop_databases, interleaved
from bench.run import pct
from services.meetings import handlers
from services.meetings.adapters import MeetingsUnitOfWork, metadata
from services.meetings.joint_statistics import JointWorkStatistics
from services.meetings.meeting_statistics import MeetingStatisticsModel
from shared.contracts.meetings import JointWorkStatisticsQuery, MeetingStatisticsQueryV2
from shared.storage.database import Database

HERE = Path(__file__).resolve().parent
END = datetime(2026, 11, 1, tzinfo=UTC)  # every history ends in October 2026
LAST_MONTH = ("2026-10", "2026-10")
LAST_YEAR = ("2025-11", "2026-10")
PROFESSIONALS = 200
MUNICIPALITIES = ("Porvoo", "Loviisa", "Sipoo")


def at(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def on(t: datetime) -> str:
    return t.date().isoformat()


def events(meetings: int, years: int, seed: int = 1) -> list[tuple[str, dict[str, Any]]]:
    """``meetings`` cases over ``years`` years before END, each referred, assessed, met once (held, with
    the family's feedback), followed up and given an onward service that started a few days late."""
    rnd = random.Random(seed)
    pros = [f"s-{i}" for i in range(PROFESSIONALS)]
    out: list[tuple[str, dict[str, Any]]] = [
        (
            "roster.professional_changed",
            {
                "professional_id": p,
                "unit": f"unit-{i % 12}",
                "team": f"team-{i % 30}",
                "occurred_at": "2015-01-01T00:00:00Z",
                "event_id": f"r{i}",
            },
        )
        for i, p in enumerate(pros)
    ]
    span = (END - timedelta(days=365 * years)).timestamp(), END.timestamp() - 30 * 86400
    for i in range(meetings):
        case, meeting = str(uuid.UUID(int=rnd.getrandbits(128))), str(uuid.UUID(int=rnd.getrandbits(128)))
        received = datetime.fromtimestamp(span[0] + (span[1] - span[0]) * i / meetings, UTC)
        starts = received + timedelta(days=rnd.randint(2, 20), hours=rnd.randint(0, 8))
        muni = MUNICIPALITIES[i % len(MUNICIPALITIES)]
        parts = [{"participant_id": "g-1", "kind": "family"}] + [
            {"participant_id": p, "kind": "professional"} for p in rnd.sample(pros, 3)
        ]
        out += [
            (
                "referral.received",
                {
                    "case_id": case,
                    "municipality": muni,
                    "received_at": at(received),
                    "decision_due_by": on(received + timedelta(days=9)),
                },
            ),
            (
                "assessment.started",
                {
                    "case_id": case,
                    "complete_by": on(received + timedelta(days=90)),
                    "occurred_at": at(received),
                    "event_id": f"a{i}",
                },
            ),
            (
                "meeting.convened",
                {"case_id": case, "meeting_id": meeting, "starts_at": at(starts), "participants": parts, "municipality": muni},
            ),
            (
                "meeting.held",
                {
                    "case_id": case,
                    "meeting_id": meeting,
                    "held_at": at(starts),
                    "attendance": [{"participant_id": p["participant_id"], "present": rnd.random() < 0.9} for p in parts],
                    "family_present": True,
                    "municipality": muni,
                },
            ),
            (
                "meeting.feedback_recorded",
                {
                    "case_id": case,
                    "meeting_id": meeting,
                    "given_by": "family",
                    "rating": rnd.randint(1, 5),
                    "felt_heard": rnd.random() < 0.8,
                },
            ),
            ("followup.recorded", {"case_id": case, "event_id": f"f{i}", "occurred_at": at(starts + timedelta(days=30))}),
            (
                "plan.service_status_recorded",
                {
                    "case_id": case,
                    "service_id": f"sv{i}",
                    "start_by": on(starts + timedelta(days=14)),
                    "status": "started",
                    "on": on(starts + timedelta(days=17)),
                    "days_late": 3,
                },
            ),
        ]
    return out


def folded(evs: list[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
    models: dict[str, Any] = {"meetings": MeetingStatisticsModel(), "joint": JointWorkStatistics()}
    for event_type, ev in evs:
        for m in models.values():
            m.apply(event_type, ev)
    return {name: m.facts for name, m in models.items()}


async def load_scale(admin_url: str, name: str, meetings: int, years: int) -> Database:
    url = await create_database(admin_url, name)
    db = Database(url.replace("postgresql://", "postgresql+asyncpg://", 1), metadata)
    await db.create_all()
    facts = folded(events(meetings, years))
    async with MeetingsUnitOfWork(db) as uow:
        for model, records in facts.items():
            await uow.meetings.replace_statistics_facts(records, model)
        await uow.commit()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()
    return db


QUERIES: dict[str, tuple[str, tuple[str, str] | None]] = {
    "statistics.v2, last month": ("v2", LAST_MONTH),
    "statistics.v2, last 12 months": ("v2", LAST_YEAR),
    "joint work, last month": ("joint", LAST_MONTH),
    "joint work, last 12 months": ("joint", LAST_YEAR),
    "statistics.v2, every month": ("v2", None),
    "joint work, every month": ("joint", None),
}


async def ask(db: Database, query: str, months: tuple[str, str] | None) -> None:
    first, last = months or (None, None)
    async with MeetingsUnitOfWork(db) as uow:
        if query == "v2":
            reply = await handlers.statistics(MeetingStatisticsQueryV2(from_month=first, to_month=last), uow)
        else:
            reply = await handlers.joint_work_statistics(JointWorkStatisticsQuery(from_month=first, to_month=last), uow)
    assert reply.ok


async def main_async(args: argparse.Namespace) -> None:
    from bench.postgres import POSTGRES_URL

    admin_url = POSTGRES_URL.replace("+asyncpg", "")
    dbs: dict[int, Database] = {}
    names: list[str] = []
    results: dict[str, dict[int, list[float]]] = {}
    try:
        for years in args.years:
            meetings = years * 12 * args.per_month
            print(f"{years} years: {meetings:,} meetings", flush=True)
            names.append(f"koolle_meetgrowth_{uuid.uuid4().hex[:8]}")
            t0 = time.perf_counter()
            dbs[years] = await load_scale(admin_url, names[-1], meetings, years)
            print(f"  loaded in {time.perf_counter() - t0:.0f} s", flush=True)
        gc.collect()
        gc.freeze()
        for label, (query, months) in QUERIES.items():
            ops = args.ops if months is not None else max(1, args.ops // 10)
            runs: dict[int, Callable[[int], Awaitable[None]]] = {
                y: (lambda i, d=db, q=query, m=months: ask(d, q, m)) for y, db in dbs.items()
            }
            results[label] = await interleaved(ops, runs, warm=2 if months is not None else 1)
            print(f"  {label}: " + ", ".join(f"{y} y p50 {pct(v, 50):.0f} ms" for y, v in results[label].items()), flush=True)
    finally:
        for db in dbs.values():
            await db.dispose()
        await drop_databases(admin_url, names)
    scales = sorted(dbs)
    lines = [
        "# Growth: the meetings statistics as years of meetings accumulate (PostgreSQL)",
        "",
        f"Run `python -m bench.meetings_growth {' '.join(args.argv)}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores; {args.per_month:,} held meetings a month, every history ending in October 2026; "
        f"{args.ops} runs of each query for some months, {max(1, args.ops // 10)} for every month.",
        "",
        "| query | "
        + " | ".join(f"{y} year{'s' if y != 1 else ''} ({y * 12 * args.per_month:,} meetings) p50 / p99 (ms)" for y in scales)
        + " | p99 growth |",
        "| --- | " + " | ".join("---" for _ in scales) + " | --- |",
    ]
    for label, by_scale in results.items():
        cells = [f"{pct(by_scale[y], 50):,.0f} / {pct(by_scale[y], 99):,.0f}" for y in scales]
        lines.append(
            f"| {label} | " + " | ".join(cells) + f" | {pct(by_scale[scales[-1]], 99) / pct(by_scale[scales[0]], 99):.2f}× |"
        )
    (args.out / "meetings_growth.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    import sys

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--years", type=int, nargs="+", default=[1, 10], help="years of history per scale")
    p.add_argument("--per-month", type=int, default=1000, help="held meetings a month")
    p.add_argument("--ops", type=int, default=20, help="runs of each query for some months per scale")
    p.add_argument("--out", type=Path, default=HERE, help="where meetings_growth.md goes")
    args = p.parse_args()
    args.argv = sys.argv[1:]
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
