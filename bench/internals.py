"""Micro-benchmarks: each private-attribute touch (shared/internals/) against the public API that
could replace it. The rule (bench/README.md): where the public API reaches at least 90% of the
private path's speed, the public API is used.

    python -m bench.internals            # a few seconds; prints one row per comparison
    python -m bench.internals --postgres # also the asyncpg adapter, on the server at 127.0.0.1:5432
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import nats
from sqlalchemy import Column, Integer, MetaData, String, Table, bindparam, select

from infra.natsserver import EmbeddedNats, free_port
from shared.internals.natspy import PullInbox
from shared.storage.database import Database
from shared.storage.fastpath.declare import hot_once
from shared.storage.tables import messaging_tables
from shared.storage.uow import UnitOfWork


def row(what: str, private: float, public: float, unit: str = "µs/op") -> None:
    ratio = private / public if public else float("nan")
    verdict = "public API used" if ratio >= 0.9 else "private kept"
    print(f"  {what:<58} private {private:8.2f} {unit}  public {public:8.2f} {unit}  public speed {ratio:5.2f}×  → {verdict}")


async def nats_take(n: int) -> None:
    """Taking a delivered message: the pull subscription's queue (PullInbox) against nats-py's
    public ``Subscription.next_msg()``, both on messages already in the process."""
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedNats(Path(tmp), free_port()).start()
        try:
            nc = await nats.connect(server.url)
            js = nc.jetstream()
            await js.add_stream(name="MB", subjects=["mb.>"])
            times = {}
            for how in ("private", "public"):
                durable = f"mb-{how}"
                psub = await js.pull_subscribe("mb.x", durable=durable, stream="MB")
                for i in range(n):
                    await js.publish("mb.x", b"x" * 600, headers={"Nats-Msg-Id": f"{how}-{i}"})
                inbox = PullInbox(psub)
                await nc.publish(inbox.next_subject, f'{{"batch": {n}}}'.encode(), reply=inbox.deliver)
                while inbox.waiting() < n:
                    await asyncio.sleep(0.01)
                sub = psub._sub  # the public method lives on the inner subscription
                t0 = time.perf_counter()
                if how == "private":
                    for _ in range(n):
                        inbox.get_nowait()
                else:
                    for _ in range(n):
                        await sub.next_msg(timeout=1.0)
                times[how] = (time.perf_counter() - t0) / n * 1e6
                await js.delete_consumer("MB", durable)
                await js.purge_stream("MB")
            row("nats-py: take a delivered message", times["private"], times["public"])
            await nc.close()
        finally:
            server.stop()


async def statement(url: str, label: str, n: int) -> None:
    """A hot statement (primary-key lookup): the driver fast path, which needs SQLAlchemy's
    compiler internals (and on PostgreSQL its asyncpg adapter's), against SQLAlchemy's public
    ``execute``."""
    md = MetaData()
    messaging_tables(md)
    t = Table("mb", md, Column("id", String(36), primary_key=True), Column("n", Integer))
    db = Database(url, md)
    await db.create_all()
    stmt = hot_once(("bench mb", t, label), lambda: select(t.c.n).where(t.c.id == bindparam("id")))
    async with UnitOfWork(db) as uow:
        await uow.insert(t, [{"id": str(i), "n": i} for i in range(100)])
        await uow.commit()

    async def timed(run: Callable[[UnitOfWork], Awaitable[object]]) -> float:
        async with UnitOfWork(db) as uow:
            for _ in range(200):  # warm
                await run(uow)
            t0 = time.perf_counter()
            for _ in range(n):
                await run(uow)
            took = time.perf_counter() - t0
            await uow.rollback()
        return took / n * 1e6

    private = await timed(lambda uow: uow.execute(stmt, {"id": "42"}))
    public = await timed(lambda uow: uow.session.execute(stmt, {"id": "42"}))
    row(f"{label}: run a hot statement (driver fast path vs SQLAlchemy)", private, public)
    await db.dispose()


def tracing(n: int) -> None:
    """'Is anything exported?' per consumed event: the SDK's private processor list against
    Koolle's own record of the processors it attached (public API only)."""
    from opentelemetry.sdk.trace import TracerProvider

    from shared import telemetry

    def private_check(provider: TracerProvider | None) -> bool:  # what shared/telemetry.py did before
        return provider is not None and bool(provider._active_span_processor._span_processors)  # type: ignore[attr-defined]

    provider = TracerProvider()
    t0 = time.perf_counter()
    for _ in range(n):
        private_check(provider)
    private = (time.perf_counter() - t0) / n * 1e6
    t0 = time.perf_counter()
    for _ in range(n):
        telemetry._exporting(provider)
    public = (time.perf_counter() - t0) / n * 1e6
    row("opentelemetry: is a span exporter attached", private, public)


async def main_async(args: argparse.Namespace) -> None:
    print("Private attribute vs public API (one process, this machine)")
    tracing(200_000)
    await nats_take(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        await statement(f"sqlite+aiosqlite:///{tmp}/mb.db", "SQLite", args.n)
    if args.postgres:
        import asyncpg

        from bench.postgres import POSTGRES_URL

        name = f"koolle_mb_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""))
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            await statement(POSTGRES_URL.rsplit("/", 1)[0] + "/" + name, "PostgreSQL", args.n)
        finally:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            await admin.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=5000, help="operations per measurement")
    p.add_argument("--postgres", action="store_true")
    asyncio.run(main_async(p.parse_args()))


if __name__ == "__main__":
    main()
