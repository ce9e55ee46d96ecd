"""Growth: does the referral service stay as fast when years of cases have piled up?

Intake handling and the staff queries (case, team cases, deadlines due, access log, statutory
statistics) are measured in process, on PostgreSQL, with 0, 100,000 and 1,000,000 existing (closed) cases and ten
audit-log rows per case (10,000,000 at a million cases). Every scale also holds today's open
workload, 1,000 open cases (20 teams of 50, deadlines over the next 20 days), so that each query
returns the same amount at every scale and only the history grows, as in a county where closed
cases accumulate. The rows are bulk-loaded with ``generate_series`` (no referral goes through
NATS), shaped like the service's own rows: one real intake gives the stored JSON states; each scale
is then vacuumed, analysed and flushed (CHECKPOINT), so that its load is not still being written
while it is measured. All scales
are loaded first, each in a database of its own; then each operation runs ``--ops`` times on every
scale, the scales taking turns, so that a change in the machine's speed meets every scale alike. p50
and p99 per operation and scale go to growth.md, the curve to growth.png.

    python -m bench.growth                                # 0, 100k, 1M cases (loading 1M takes minutes)
    python -m bench.growth --scales 0 10000 --ops 50      # a small check
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
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import asyncpg

from bench.run import pct, submission
from services.referral import handlers
from services.referral.adapters import STATUTORY_COUNTS_MIGRATION, ReferralUnitOfWork, metadata
from services.referral.bootstrap import uow_factory
from services.referral.config import ReferralConfig
from shared.contracts.referral import AccessLogQuery, CaseQuery, DeadlinesDueQuery, StatutoryStatisticsQuery, TeamCasesQuery
from shared.storage.database import Database

HERE = Path(__file__).resolve().parent
OPEN_CASES = 1000
TEAMS = 20
AUDIT_PER_CASE = 10
OPERATIONS = ("intake", "case", "team cases", "deadlines due", "access log", "statistics")


# Case ids are time-ordered like the service's own (version 7, services/referral/domain.py): case i
# was opened i minutes before this instant, so the open cases (1 … OPEN_CASES) are the newest ids,
# as they are in a service; the random bits come from md5(i), so every id is a function of i alone.
BULK_EPOCH_MS = 1_764_547_200_000  # 2025-12-01 00:00 UTC: older than any case the service opens now


def case_id_sql(expr: str) -> str:
    rand = f"md5('case' || ({expr}))"
    millis = f"lpad(to_hex({BULK_EPOCH_MS}::bigint - ({expr})::bigint * 60000), 12, '0')"
    return f"({millis} || '7' || substr({rand}, 1, 3) || '8' || substr({rand}, 4, 15))::uuid::text"


async def bulk_load(raw_url: str, cases: int, audit_rows: int, progress: Callable[[str], None] = print) -> float:
    """Add ``cases`` cases (each with one referral, one child, one consent and statistics facts) and ``audit_rows`` audit records,
    shaped like the rows the service writes itself (the newest referral and case are the templates).
    Returns seconds taken."""
    t0 = time.perf_counter()
    conn = await asyncpg.connect(raw_url)
    try:
        ref = await conn.fetchrow("SELECT channel, status, municipality, state FROM referrals ORDER BY received_at DESC LIMIT 1")
        case = await conn.fetchrow("SELECT state FROM cases ORDER BY opened_at DESC LIMIT 1")
        if ref is None or case is None:
            raise RuntimeError("bulk_load needs one real intake first (the row templates)")
        chunk = 200_000
        for start in range(1, cases + 1, chunk):
            end = min(cases, start + chunk - 1)
            await conn.execute(
                f"""INSERT INTO cases (case_id, municipality, team_id, status, opened_at, next_due, state)
                SELECT {case_id_sql("i")}, $3, 'bench-team-' || (i % {TEAMS}),
                       CASE WHEN i <= {OPEN_CASES} THEN 'open' ELSE 'closed' END,
                       now() - make_interval(mins => i),
                       CASE WHEN i <= {OPEN_CASES} THEN current_date + (i % 20) END, $4
                FROM generate_series($1::int, $2::int) i""",
                start,
                end,
                ref["municipality"],
                case["state"],
            )
            await conn.execute(
                f"""INSERT INTO referrals (referral_id, case_id, submission_id, channel, municipality, received_at, status, urgent, state)
                SELECT md5('ref' || i)::uuid::text, {case_id_sql("i")}, 'bulk-' || i, $3, $4, now() - make_interval(mins => i), $5, false, $6
                FROM generate_series($1::int, $2::int) i""",
                start,
                end,
                ref["channel"],
                ref["municipality"],
                ref["status"],
                ref["state"],
            )
            await conn.execute(
                f"""INSERT INTO referral_children (child_key, referral_id, case_id)
                SELECT md5('child' || i) || md5('kid' || i), md5('ref' || i)::uuid::text, {case_id_sql("i")}
                FROM generate_series($1::int, $2::int) i""",
                start,
                end,
            )
            await conn.execute(
                f"""INSERT INTO consents (consent_id, case_id, purpose, recipient, given_by, recorded_by, given_at)
                SELECT md5('consent' || i)::uuid::text, {case_id_sql("i")}, 'convene', NULL, 'guardian', 'intake',
                       now() - make_interval(mins => i)
                FROM generate_series($1::int, $2::int) i""",
                start,
                end,
            )
            # The statutory statistics' facts of each case (services/referral/statistics.py): decided
            # three days after opening, four in five in time; every third assessed within 60 days.
            await conn.execute(
                f"""INSERT INTO statistics_facts (case_id, facts)
                SELECT {case_id_sql("i")}, json_build_object(
                    'municipality', $3::text,
                    'decided_on', to_char(now() - make_interval(mins => i) + interval '3 days', 'YYYY-MM-DD'),
                    'decided_in_time', i % 5 <> 0,
                    'complete_by', to_char(now() - make_interval(mins => i) + interval '90 days', 'YYYY-MM-DD'),
                    'completed_on', CASE WHEN i % 3 = 0
                        THEN to_char(now() - make_interval(mins => i) + interval '60 days', 'YYYY-MM-DD') END
                )::text
                FROM generate_series($1::int, $2::int) i""",
                start,
                end,
                ref["municipality"],
            )
            progress(f"    cases {end:,}/{cases:,} ({time.perf_counter() - t0:.0f}s)")
        # Their counters, counted by the service's own start-up step (as in an upgraded database).
        await conn.execute("DELETE FROM data_migrations WHERE name = $1", STATUTORY_COUNTS_MIGRATION)
        counting = Database(raw_url.replace("postgresql://", "postgresql+asyncpg://", 1), metadata)
        try:
            await counting.create_all()
        finally:
            await counting.dispose()
        chunk = 1_000_000
        for start in range(1, audit_rows + 1, chunk):
            end = min(audit_rows, start + chunk - 1)
            await conn.execute(
                f"""INSERT INTO audit_log (at, actor, case_id, action, purpose, result, scope)
                SELECT now() - make_interval(secs => i), 'staff-' || (i % 300), {case_id_sql(f"i % {max(cases, 1)} + 1")},
                       'read_case', 'case work', 'found', 'case:' || {case_id_sql(f"i % {max(cases, 1)} + 1")}
                FROM generate_series($1::int, $2::int) i""",
                start,
                end,
            )
            progress(f"    audit rows {end:,}/{audit_rows:,} ({time.perf_counter() - t0:.0f}s)")
        # As a county's database is between its loads: vacuumed (visibility map set, so that the
        # autovacuum of 10 million fresh rows does not run during the measurement) and analysed.
        await conn.execute("VACUUM (ANALYZE)")
        # And flushed: without it the server's spread checkpoint was still writing the load's
        # gigabyte while its scale was measured (the 1,000,000 scale's case p99 2.08× in one run,
        # 1.0× in the next).
        try:
            await conn.execute("CHECKPOINT")
        except asyncpg.InsufficientPrivilegeError:
            progress("    (not flushed: CHECKPOINT needs a superuser or pg_checkpoint; the first scales may be disturbed)")
    finally:
        await conn.close()
    return time.perf_counter() - t0


class Referral:
    """The referral service's database and use cases, in process."""

    def __init__(self, url: str) -> None:
        self.db = Database(url, metadata)
        self.serial = 0
        # The service's own factory: its configuration read once. Read per unit of work (the
        # environment and the routing file each time), it had added ≈ 0.2 ms to every operation.
        self._uow = uow_factory(ReferralConfig())

    def uow(self) -> ReferralUnitOfWork:
        return self._uow(self.db)

    async def intake(self) -> None:
        self.serial += 1
        async with self.uow() as uow:
            await handlers.receive_submission(
                handlers.ReceiveSubmission(data=submission(self.serial), stream_seq=self.serial), uow
            )
            await uow.commit()

    async def case(self, case_id: str) -> None:
        async with self.uow() as uow:
            reply = await handlers.get_case(CaseQuery(case_id=uuid.UUID(case_id), requested_by="sw-bench"), uow)
        assert reply.ok

    async def team_cases(self, team: str) -> None:
        async with self.uow() as uow:
            await handlers.team_cases(TeamCasesQuery(team_id=team, requested_by="sw-bench"), uow)

    async def deadlines_due(self, team: str) -> None:
        async with self.uow() as uow:
            await handlers.deadlines_due(DeadlinesDueQuery(working_days=10, team_id=team, requested_by="sw-bench"), uow)

    async def access_log(self, case_id: str) -> None:
        async with self.uow() as uow:
            await handlers.access_log(AccessLogQuery(case_id=uuid.UUID(case_id), requested_by="sw-bench"), uow)

    async def statistics(self) -> None:
        """THL's statutory figures, every municipality and month (a statistician's query)."""
        async with self.uow() as uow:
            reply = await handlers.statutory_statistics(StatutoryStatisticsQuery(), uow)
        assert reply.ok and reply.data["rows"] is not None


WARM = 20  # unmeasured operations of each kind first, on every scale


async def interleaved(ops: int, runs: dict[int, Callable[[int], Awaitable[None]]], warm: int = WARM) -> dict[int, list[float]]:
    """``ops`` timed runs (ms) of one operation on every scale, taken in turns (the i-th run of each
    scale, their order rotated each turn), after ``warm`` untimed runs of index ``ops`` (a draw of
    its own) on each. Taken one scale after the other, minutes apart, the scales had measured the
    machine's phase as much as the data: the same code gave a p99 growth of 0.54× in one run and
    1.70× in the next."""
    for run in runs.values():
        for _ in range(warm):
            await run(ops)
    out: dict[int, list[float]] = {scale: [] for scale in runs}
    scales = list(runs)
    for i in range(ops):
        k = i % len(scales)
        for scale in scales[k:] + scales[:k]:
            t0 = time.perf_counter()
            await runs[scale](i)
            out[scale].append((time.perf_counter() - t0) * 1000)
    return out


async def measure(refs: dict[int, Referral], ops: int) -> dict[int, dict[str, list[float]]]:
    """Every operation on every scale, in turns (:func:`interleaved`). Each draw list has one entry
    more than is timed: the warm-up's, so that it does not bring the measured cases' rows into the
    cache."""
    picks: dict[int, list[str]] = {}
    for cases, ref in refs.items():
        rnd = random.Random(cases)
        conn = await asyncpg.connect(ref.db.url.replace("+asyncpg", ""))
        try:  # any case, open or closed
            picks[cases] = [
                str(await conn.fetchval(f"SELECT {case_id_sql('$1::int')}", rnd.randint(1, OPEN_CASES + cases)))
                for _ in range(ops + 1)
            ]
        finally:
            await conn.close()
    rnd = random.Random(0)
    teams = [f"bench-team-{rnd.randrange(TEAMS)}" for _ in range(ops + 1)]
    operations: dict[str, Callable[[Referral, int, int], Awaitable[None]]] = {
        "intake": lambda ref, cases, i: ref.intake(),
        "case": lambda ref, cases, i: ref.case(picks[cases][i]),
        "team cases": lambda ref, cases, i: ref.team_cases(teams[i]),
        "deadlines due": lambda ref, cases, i: ref.deadlines_due(teams[i]),
        "access log": lambda ref, cases, i: ref.access_log(picks[cases][i]),
        "statistics": lambda ref, cases, i: ref.statistics(),
    }
    by_op = {op: await interleaved(ops, {c: partial(operations[op], ref, c) for c, ref in refs.items()}) for op in OPERATIONS}
    return {cases: {op: by_op[op][cases] for op in OPERATIONS} for cases in refs}


async def create_database(admin_url: str, name: str) -> str:
    """A new database on the server of ``admin_url``; returns its URL."""
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return admin_url.rsplit("/", 1)[0] + "/" + name


async def drop_databases(admin_url: str, names: list[str]) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def load_scale(admin_url: str, cases: int, name: str) -> tuple[Referral, float]:
    """A database of its own with ``cases`` closed cases, the open workload and their audit rows."""
    url = await create_database(admin_url, name)
    ref = Referral(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    await ref.db.create_all()
    await ref.intake()  # the row templates
    total = OPEN_CASES + cases
    return ref, await bulk_load(url, total, total * AUDIT_PER_CASE)


def plot(results: dict[int, dict[str, list[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scales = sorted(results)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for op in OPERATIONS:
        ax.plot(range(len(scales)), [pct(results[s][op], 99) for s in scales], "o-", label=f"{op} p99")
    ax.set_xticks(range(len(scales)), [f"{s:,}" for s in scales])
    ax.set_xlabel(f"existing closed cases (+ {OPEN_CASES:,} open; audit log: {AUDIT_PER_CASE} rows per case)")
    ax.set_ylabel("p99 (ms)")
    ax.set_yscale("log")
    ax.set_title("Referral service on PostgreSQL as cases accumulate (target: p99 grows ≤ 1.5×)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write(results: dict[int, dict[str, list[float]]], loads: dict[int, float], args: argparse.Namespace) -> str:
    scales = sorted(results)
    lines = [
        "# Growth: the referral service as cases accumulate (PostgreSQL)",
        "",
        f"Run `python -m bench.growth {' '.join(f'{k}' for k in args.argv)}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores; {args.ops} operations each. {args.note}",
        "",
        "| operation | " + " | ".join(f"{s:,} cases p50 / p99 (ms)" for s in scales) + " | p99 growth (last ÷ first) |",
        "| --- | " + " | ".join("---" for _ in scales) + " | --- |",
    ]
    for op in OPERATIONS:
        cells = [f"{pct(results[s][op], 50):.1f} / {pct(results[s][op], 99):.1f}" for s in scales]
        growth = pct(results[scales[-1]][op], 99) / pct(results[scales[0]][op], 99)
        lines.append(f"| {op} | " + " | ".join(cells) + f" | {growth:.2f}× {'(met)' if growth <= 1.5 else '(NOT met)'} |")
    lines += [
        "",
        f"Every scale also holds {OPEN_CASES:,} open cases ({TEAMS} teams); audit log {AUDIT_PER_CASE} rows per case.",
        "Bulk load: " + ", ".join(f"{s:,} + {OPEN_CASES:,} cases in {loads[s]:.0f} s" for s in scales),
        "",
        "![growth](growth.png)",
        "",
    ]
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    from bench.postgres import POSTGRES_URL

    admin_url = POSTGRES_URL.replace("+asyncpg", "")
    refs: dict[int, Referral] = {}
    names: list[str] = []
    loads: dict[int, float] = {}
    try:
        for cases in args.scales:  # every scale is loaded first, then all are measured in turns
            total = cases + OPEN_CASES
            print(f"{cases:,} existing cases + {OPEN_CASES:,} open, {total * AUDIT_PER_CASE:,} audit rows", flush=True)
            names.append(f"koolle_growth_{uuid.uuid4().hex[:8]}")
            refs[cases], loads[cases] = await load_scale(admin_url, cases, names[-1])
        print("measuring every scale in turns", flush=True)
        # As a service does once started (shared/service.py): what is built so far is kept out of the
        # collector's sight, or a full collection of it lands on one measured operation (≈ 90 ms).
        gc.collect()
        gc.freeze()
        results = await measure(refs, args.ops)
    finally:
        for ref in refs.values():
            await ref.db.dispose()
        await drop_databases(admin_url, names)
    for cases in args.scales:
        print(f"{cases:,} cases", flush=True)
        for op in OPERATIONS:
            v = results[cases][op]
            print(f"  {op:<16} p50 {pct(v, 50):7.1f} ms  p99 {pct(v, 99):7.1f} ms", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "growth.md").write_text(write(results, loads, args))
    plot(results, args.out / "growth.png")
    print(f"written: {args.out / 'growth.md'}, {args.out / 'growth.png'}")


def main() -> None:
    import sys

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scales", type=int, nargs="+", default=[0, 100_000, 1_000_000], help="existing cases per measurement")
    p.add_argument("--ops", type=int, default=200, help="runs of each operation per scale")
    p.add_argument("--out", type=Path, default=HERE, help="where growth.md and growth.png go")
    p.add_argument("--note", default="", help="a remark for growth.md (e.g. that the machine was busy)")
    args = p.parse_args()
    args.argv = sys.argv[1:]
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
