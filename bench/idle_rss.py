"""Idle memory of the four services, the way bench/run.py measures it, without the rest of the run.

    python -m bench.idle_rss                  # SQLite, one round
    python -m bench.idle_rss --rounds 3       # three fresh starts, each service's median
    python -m bench.idle_rss --postgres       # also on PostgreSQL at 127.0.0.1:5432 (trust auth)

Each round starts an embedded nats-server and the four services (``infra.run.start_service``, as
``bench.run`` does), waits until all report ready, sleeps 2 s and reads each process's RSS, and its
USS and PSS (``memory_full_info``): RSS counts shared library pages in every process, USS only what
the process alone holds, PSS shares what several hold between them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

import nats
import psutil

from bench.run import System, drop_pg_databases, make_pg_databases
from infra.natsserver import EmbeddedNats, free_port
from infra.run import SERVICES

MEASURES = ("rss", "uss", "pss")


def memory_mb(pid: int) -> dict[str, float]:
    info = psutil.Process(pid).memory_full_info()
    return {m: getattr(info, m) / 1e6 for m in MEASURES}


async def one_round(tmp: Path, extra_env: dict[str, str] | None, settle: float) -> dict[str, dict[str, float]]:
    server = EmbeddedNats(tmp / "nats", free_port()).start()
    system = System(server.url, tmp / "system", extra_env)
    try:
        nc = await nats.connect(server.url)
        try:
            await system.start(nc)
            await asyncio.sleep(settle)
            return {name: memory_mb(p.pid) for name, p in system.procs.items()}
        finally:
            await nc.close()
    finally:
        system.stop()
        server.stop()


async def measure(label: str, rounds: int, settle: float, postgres_url: str | None) -> dict[str, dict[str, float]]:
    results: list[dict[str, dict[str, float]]] = []
    for i in range(rounds):
        with tempfile.TemporaryDirectory(prefix="koolle-idle-") as tmp:
            env = await make_pg_databases(postgres_url) if postgres_url else None
            try:
                results.append(await one_round(Path(tmp), env, settle))
            finally:
                if postgres_url and env:
                    await drop_pg_databases(postgres_url, env)
        print(f"  [{label}] round {i + 1}: " + ", ".join(f"{n} {r['rss']:.1f}" for n, r in results[-1].items()), flush=True)
    return {n: {m: statistics.median(r[n][m] for r in results) for m in MEASURES} for n in SERVICES}


def report(label: str, rounds: int, table: dict[str, dict[str, float]]) -> None:
    print(f"\n{label} (median of {rounds}), MB")
    print(f"{'service':<14}{'RSS':>8}{'USS':>8}{'PSS':>8}")
    for name, r in table.items():
        print(f"{name:<14}{r['rss']:>8.1f}{r['uss']:>8.1f}{r['pss']:>8.1f}")
    print(f"{'max':<14}{max(r['rss'] for r in table.values()):>8.1f}")


async def main_async(args: argparse.Namespace) -> None:
    report("SQLite", args.rounds, await measure("sqlite", args.rounds, args.settle, None))
    if args.postgres:
        from bench.postgres import POSTGRES_URL, postgres_reachable

        if not postgres_reachable():
            print("\nPostgreSQL: skipped, no server at 127.0.0.1:5432")
            return
        report("PostgreSQL", args.rounds, await measure("postgres", args.rounds, args.settle, POSTGRES_URL))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=1, help="fresh starts per database (median reported)")
    p.add_argument("--settle", type=float, default=2.0, help="seconds after ready before reading (bench.run: 2)")
    p.add_argument("--postgres", action="store_true", help="also measure on PostgreSQL at 127.0.0.1:5432")
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
