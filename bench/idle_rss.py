"""Idle memory of the four services, the way bench/run.py measures it, without the rest of the run.

    python -m bench.idle_rss                  # SQLite, one round
    python -m bench.idle_rss --rounds 3       # three fresh starts, each service's median
    python -m bench.idle_rss --postgres       # also on PostgreSQL at 127.0.0.1:5432 (trust auth)
    python -m bench.idle_rss --floor          # what the imports alone hold, before a service runs

``--floor`` reads, each in a fresh interpreter (RSS after ``gc.collect()``): Python alone; the
design card's packages (FastStream's NATS broker, nats-py, pydantic, SQLAlchemy with its asyncio
extension and a driver, the OpenTelemetry SDK); every third-party module a service imports, without
any of the project's own; and the service's modules on top of those (its ``bootstrap``).

Each round starts an embedded nats-server and the four services (``infra.run.start_service``, as
``bench.run`` does), waits until all report ready, sleeps 2 s and reads each process's RSS, and its
USS and PSS (``memory_full_info``): RSS counts shared library pages in every process, USS only what
the process alone holds, PSS shares what several hold between them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import nats
import psutil

from bench.run import System, drop_pg_databases, make_pg_databases
from infra.natsserver import EmbeddedNats, free_port
from infra.run import SERVICES

MEASURES = ("rss", "uss", "pss")

# The design card's packages, as a service imports them (SQLite's driver, or PostgreSQL's).
DESIGN_CARD = (
    "asyncio",
    "faststream.nats",
    "nats",
    "pydantic",
    "pydantic_settings",
    "sqlalchemy",
    "sqlalchemy.ext.asyncio",
    "opentelemetry.sdk.trace",
    "opentelemetry.sdk.trace.export",
)
DRIVERS = {"SQLite": ("aiosqlite",), "PostgreSQL": ("asyncpg", "sqlalchemy.dialects.postgresql.asyncpg")}
OWN = ("services", "shared", "infra", "bench")

_READ_RSS = """
import gc, importlib, json, sys
def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024
for name in json.loads(sys.argv[1]):
    importlib.import_module(name)
gc.collect()
print(json.dumps({"rss": rss(), "modules": len(sys.modules)}))
"""


def _imported(modules: list[str]) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _READ_RSS, json.dumps(modules)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _third_party_of(service: str) -> list[str]:
    """Every module outside the project that importing the service's bootstrap loads, in import order.

    Only modules importable under the name they are listed by: an extension also registers names no
    finder knows (cryptography's ``_openssl``, Cython's ``cython_runtime``) and aliases (``typing.io``).
    Importing their owner registers them again, so the fresh interpreter ends with the same modules.
    """
    code = (
        f"import json, sys; import services.{service}.bootstrap; "
        "print(json.dumps([n for n, m in sys.modules.items() "
        "if getattr(getattr(m, '__spec__', None), 'name', None) == n]))"
    )
    names = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout)
    return [n for n in names if n.split(".")[0] not in OWN and not n.startswith("__")]


def floor() -> None:
    """RSS in MB of what is imported before a service does anything (module docstring)."""
    print(f"{'what':<70}{'RSS':>8}{'modules':>9}")
    python = _imported([])
    print(f"{'Python alone':<70}{python['rss']:>8.1f}{python['modules']:>9}")
    for db, drivers in DRIVERS.items():
        card = _imported([*DESIGN_CARD, *drivers])
        print(f"{f'the design card packages ({db})':<70}{card['rss']:>8.1f}{card['modules']:>9}")
    for name in SERVICES:
        third = _third_party_of(name)
        alone = _imported(third)
        whole = _imported([*third, f"services.{name}.bootstrap"])
        print(f"{f'{name}: its third-party imports, none of its own':<70}{alone['rss']:>8.1f}{alone['modules']:>9}")
        print(f"{f'{name}: with its own modules (services.{name}.bootstrap)':<70}{whole['rss']:>8.1f}{whole['modules']:>9}")


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
    if args.floor:
        floor()
        return
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
    p.add_argument("--floor", action="store_true", help="only what the imports hold (no service started)")
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
