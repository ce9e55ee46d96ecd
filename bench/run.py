"""Measure Koolle the way an operator would judge it, against raw JetStream on the same server.

    python -m bench.run                 # full run (several minutes); writes bench/results.md + PNG
    python -m bench.run --quick         # a small smoke version (seconds)
    python -m bench.run --postgres      # also the same with PostgreSQL instead of SQLite
    python -m bench.run --cluster       # also PostgreSQL on a 3-node nats-server cluster, R3 streams
    python -m bench.run --cluster-only --quick   # only the cluster run, small (a smoke test)
    python -m bench.growth              # intake and staff queries at 0 / 100k / 1M cases (bench/growth.py)

Absolute numbers vary between machines; the ratios are what count, so every run first measures the
raw limit on the same nats-server (JetStream on disk, ``sync_interval: always``), or on the same
cluster with R3 streams: publish rate, pull-consume rate, and publish → consume latency at the
offered load the latency run uses (3% of that raw publish rate unless ``--rate`` is given).

Each system first handles a warm-up of referrals (``--warmup``, 3,000), and on PostgreSQL its
tables are analysed, so that the throughput run starts from tables that hold cases and have
statistics, as a county's do; the latency run follows the throughput run, on the tables it grew
(analysed again on PostgreSQL).
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import os
import re
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import nats
import psutil
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import ServiceUnavailableError

from infra.natscluster import ensure_replicated_streams, start_cluster
from infra.natsserver import EmbeddedNats, free_port
from infra.run import SERVICES, start_service, stop_services, wait_ready
from services.referral.hetu import make_test_hetu
from services.referral.projections import ReferralStatistics
from shared.contracts import INTAKE_SUBJECT, STREAMS, NotificationSent, ReferralReceived, published_subject
from shared.messaging.replay import replay
from shared.messaging.streams import ensure_streams
from shared.settings import Settings

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NOT_PROJECT = re.compile(r"/(\.venv|var|\.git|tests|bench|docs)/")  # compiled: shared, services, infra
PAYLOAD = 600  # bytes: about the size of a referral.received event


_serial = iter(range(10**9))


def submission(i: int) -> bytes:
    """A valid referral about a child nobody has referred before in this run (so none is linked)."""
    k = next(_serial)
    born = date(2009, 1, 1) + timedelta(days=k % 6000)
    return json.dumps(
        {
            "submission_id": f"bench-{uuid.uuid4().hex}",
            "channel": "concern_with_family",
            "municipality": ["Porvoo", "Loviisa", "Sipoo", "Askola"][i % 4],
            "submitted_at": datetime.now(UTC).isoformat(),
            "children": [
                {"given_name": "Testi", "family_name": "Lapsinen", "personal_id": make_test_hetu(born, 900 + (k // 6000) % 100)}
            ],
            "guardians": [{"name": "Testi Huoltaja", "email": f"g{k}@example.com", "language": "fi"}],
            "concern": "Arki on kuormittunut.",
            "referrer": {
                "organisation_type": "school_pupil_welfare",
                "organisation": "Testikoulu",
                "email": "school@example.com",
            },
            "consent_to_convene": True,
        }
    ).encode()


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


LOAD_SHARE = 0.03  # the latency run's offered load: 3% of the same servers' raw publish rate
LATENCY_RATIO_TARGET = 10.0  # p99 publish → referral.received ≤ 10 × raw publish → consume p99


@dataclass
class Results:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)  # what, value, ratio/target, verdict
    # per run label: raw publish → consume, publish → referral.received, publish → notification sent (ms)
    latencies: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, what: str, value: str, target: str = "", ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("met" if ok else "NOT met")
        self.rows.append((what, value, target, verdict))
        print(f"  {what:<58} {value:>16}  {target:<22} {verdict}", flush=True)


def fsync_ms(directory: Path, writes: int = 300) -> tuple[float, float]:
    """p50 and p99 of one ``PAYLOAD``-byte append and its ``fsync`` in ``directory`` (ms). With
    ``sync_interval: always`` nats-server syncs every stored write, so the raw publish limit follows
    the disk's sync time, while the pipeline's rate follows the CPU: the same code's ratio moves
    between machines with it (bench/README.md, twenty-second session)."""
    path = directory / "fsync.probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    times = []
    try:
        for _ in range(writes):
            t0 = time.perf_counter()
            os.write(fd, b"x" * PAYLOAD)
            os.fsync(fd)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    return pct(times, 50), pct(times, 99)


# -- 1. the raw limit --------------------------------------------------------------------------------
async def raw_limit(nc: nats.NATS, n: int, window: int = 1000, replicas: int = 1) -> tuple[float, float]:
    js = nc.jetstream(timeout=10)
    name = f"RAW{uuid.uuid4().hex[:6]}"
    await js.add_stream(StreamConfig(name=name, subjects=[f"raw.{name}"], storage=StorageType.FILE, num_replicas=replicas))
    body = b"x" * PAYLOAD
    sem = asyncio.Semaphore(window)

    async def pub(i: int) -> None:
        async with sem:
            await js.publish(f"raw.{name}", body, headers={"Nats-Msg-Id": f"{name}-{i}"})

    t0 = time.perf_counter()
    await asyncio.gather(*(pub(i) for i in range(n)))
    pub_rate = n / (time.perf_counter() - t0)
    psub = await js.pull_subscribe(
        f"raw.{name}", durable="drain", stream=name, config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=-1)
    )
    t0 = time.perf_counter()
    got = 0
    while got < n:
        try:
            msgs = await psub.fetch(256, timeout=5)
        except ServiceUnavailableError:
            # An R3 consumer answers 503 until its replicas have elected a leader (seen on a loaded
            # machine right after the create): asked again, as a client would.
            if time.perf_counter() - t0 > 30:
                raise
            await asyncio.sleep(0.2)
            continue
        for m in msgs:
            await m.ack()
        got += len(msgs)
    drain_rate = n / (time.perf_counter() - t0)
    await js.delete_stream(name)
    return pub_rate, drain_rate


async def raw_latency(nc: nats.NATS, rate: float, seconds: float, replicas: int = 1) -> list[float]:
    """Raw publish → consume on the same servers, paced as the latency run paces referrals: each
    message published with ack to a file stream, consumed by a durable consumer with explicit
    acks, timed from just before the publish to its delivery (ms)."""
    js = nc.jetstream(timeout=10)
    name = f"RAWLAT{uuid.uuid4().hex[:6]}"
    subject = f"rawlat.{name}"
    await js.add_stream(StreamConfig(name=name, subjects=[subject], storage=StorageType.FILE, num_replicas=replicas))
    sent: dict[int, float] = {}
    seen: dict[int, float] = {}

    async def on_msg(msg: Any) -> None:
        seen.setdefault(int(msg.data[:10]), time.perf_counter())
        await msg.ack()

    sub = await js.subscribe(
        subject, stream=name, durable="lat", cb=on_msg, manual_ack=True, config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT)
    )
    pad = b"x" * (PAYLOAD - 10)
    n = max(1, int(rate * seconds))
    t_start = time.perf_counter()
    for i in range(n):
        delay = t_start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent[i] = time.perf_counter()
        await js.publish(subject, b"%010d" % i + pad, headers={"Nats-Msg-Id": f"{name}-{i}"})
    deadline = time.monotonic() + 30
    while len(seen) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    await sub.unsubscribe()
    await js.delete_stream(name)
    return [(seen[i] - t) * 1000 for i, t in sent.items() if i in seen]


# -- the system under test ---------------------------------------------------------------------------
class System:
    def __init__(
        self, nats_url: str, data_dir: Path, extra_env: dict[str, str] | None = None, nats_pids: list[int] | None = None
    ) -> None:
        self.nats_pids = nats_pids or []
        self.postgres = any(k.endswith("_DATABASE_URL") for k in (extra_env or {}))
        self.settings = Settings(nats_url=nats_url, data_dir=data_dir)
        self.env = dict(
            os.environ,
            KOOLLE_NATS_URL=nats_url,
            KOOLLE_DATA_DIR=str(data_dir),
            KOOLLE_LOG_LEVEL="WARNING",
            KOOLLE_HTTP_PORT_BASE="0",
        )
        self.env.update(extra_env or {})
        self.procs: dict[str, Any] = {}

    async def start(self, nc: nats.NATS, timeout: float = 60.0) -> float:
        # As installed (make compiles the project's bytecode, as pip does for a package): a module
        # edited since is compiled here, before the clock starts, not by each service at its start.
        compileall.compile_dir(ROOT, quiet=1, rx=NOT_PROJECT)
        t0 = time.monotonic()
        self.procs = {n: start_service(n, self.settings, self.env) for n in SERVICES}
        await wait_ready(nc, timeout=timeout)
        return time.monotonic() - t0

    def rss_mb(self) -> dict[str, float]:
        out = {}
        for n, p in self.procs.items():
            try:
                out[n] = psutil.Process(p.pid).memory_info().rss / 1e6
            except psutil.Error:
                out[n] = float("nan")
        return out

    def cpu_seconds(self) -> dict[str, float]:
        out = {}
        for n, p in self.procs.items():
            try:
                t = psutil.Process(p.pid).cpu_times()
                out[n] = t.user + t.system
            except psutil.Error:
                out[n] = float("nan")
        return out

    def server_cpu_seconds(self) -> dict[str, float]:
        """CPU of the servers the services use on the same cores: nats-server, and PostgreSQL's
        processes when the services run on it."""

        def cpu(p: psutil.Process) -> float:
            try:
                t = p.cpu_times()
                return t.user + t.system
            except psutil.Error:
                return 0.0

        out = {}
        if self.nats_pids:
            out["nats-server"] = sum(cpu(psutil.Process(pid)) for pid in self.nats_pids)
        if self.postgres:
            out["postgres"] = sum(cpu(p) for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("postgres"))
        return out

    async def backend_cpu_seconds(self) -> dict[int, tuple[str, float]]:
        """Per PostgreSQL backend connected to a service's database now: the service and its CPU."""
        import asyncpg

        from bench.postgres import POSTGRES_URL

        databases = {
            url.rsplit("/", 1)[1]: k.removeprefix("KOOLLE_").removesuffix("_DATABASE_URL").lower()
            for k, url in self.env.items()
            if k.endswith("_DATABASE_URL") and url
        }
        conn = await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""))
        try:
            rows = await conn.fetch("SELECT pid, datname FROM pg_stat_activity WHERE datname = any($1::text[])", list(databases))
        finally:
            await conn.close()
        out = {}
        for r in rows:
            try:
                t = psutil.Process(r["pid"]).cpu_times()
            except psutil.Error:
                continue
            out[r["pid"]] = (databases[r["datname"]], t.user + t.system)
        return out

    def stop(self) -> None:
        stop_services(self.procs)


class Watch:
    """Sees referral.received and notification.sent as a subscribing staff app would."""

    def __init__(self) -> None:
        self.received: dict[str, float] = {}  # submission_id -> time seen
        self.event_to_submission: dict[str, str] = {}
        self.notified: dict[str, float] = {}  # submission_id -> time seen
        self.subs: list[Any] = []

    async def attach(self, nc: nats.NATS) -> None:
        async def on_received(msg: Any) -> None:
            now = time.perf_counter()
            ev = json.loads(msg.data)
            self.received.setdefault(ev["submission_id"], now)
            self.event_to_submission[ev["event_id"]] = ev["submission_id"]

        async def on_sent(msg: Any) -> None:
            now = time.perf_counter()
            ev = json.loads(msg.data)
            # the notifications service reads the referral from its private directory copy
            if ev.get("source_event_type") not in ("referral.received", "directory.referral.received"):
                return
            sid = self.event_to_submission.get(ev["source_event_id"])
            if sid:
                self.notified.setdefault(sid, now)

        # as published now: referral.received.v2, notification.sent on every route (routes.py)
        self.subs = [
            await nc.subscribe(published_subject(ReferralReceived.event_type), cb=on_received),
            await nc.subscribe(published_subject(NotificationSent.event_type), cb=on_sent),
        ]

    async def detach(self) -> None:
        for sub in self.subs:
            await sub.unsubscribe()


async def pipeline(nc: nats.NATS, system: System, n: int, res: Results, raw_pub: float, label: str) -> None:
    watch = Watch()
    await watch.attach(nc)
    js = nc.jetstream()
    bodies = [submission(i) for i in range(n)]
    ids = [json.loads(b)["submission_id"] for b in bodies]
    sem = asyncio.Semaphore(1000)
    peak: dict[str, float] = {}

    async def pub(i: int) -> None:
        async with sem:
            await js.publish(INTAKE_SUBJECT, bodies[i], headers={"Nats-Msg-Id": ids[i]})

    async def sample() -> None:
        while True:
            for k, v in system.rss_mb().items():
                peak[k] = max(peak.get(k, 0.0), v)
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample())
    me = psutil.Process()
    backends0 = await system.backend_cpu_seconds() if system.postgres else {}
    cpu0, srv0, gen0, machine0 = system.cpu_seconds(), system.server_cpu_seconds(), me.cpu_times(), psutil.cpu_times()
    t0 = time.perf_counter()
    await asyncio.gather(*(pub(i) for i in range(n)))
    t_pub = time.perf_counter() - t0
    deadline = time.monotonic() + max(120.0, n / 20)
    while len(watch.notified) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    elapsed = (max(watch.notified.values()) if watch.notified else time.perf_counter()) - t0
    sampler.cancel()
    cpu1, srv1, gen1, machine1 = system.cpu_seconds(), system.server_cpu_seconds(), me.cpu_times(), psutil.cpu_times()
    backends1 = await system.backend_cpu_seconds() if system.postgres else {}
    done = len(watch.notified)
    rate = done / elapsed
    target = 0.25 if label == "sqlite" else 0.20
    res.add(
        f"[{label}] pipeline: {n} referrals, received+notified",
        f"{rate:,.0f}/s",
        f"ratio {rate / raw_pub:.2f} (target ≥{target:.2f})",
        rate / raw_pub >= target,
    )
    t_rec = (max(watch.received.values()) - t0) if watch.received else float("nan")
    res.add(
        f"[{label}]   completed / front-door publish time",
        f"{done}/{n}",
        f"publish took {t_pub:.1f}s, all received after {t_rec:.1f}s",
    )
    per = {k: (cpu1[k] - cpu0[k]) / max(done, 1) * 1000 for k in cpu0}
    res.add(
        f"[{label}]   CPU per referral, all services",
        f"{sum(per.values()):.2f} ms",
        ", ".join(f"{k} {v:.2f}" for k, v in per.items()),
    )
    servers = {k: (srv1[k] - srv0[k]) / max(done, 1) * 1000 for k in srv0}
    if servers:
        res.add(
            f"[{label}]   CPU per referral, servers on the same cores",
            f"{sum(servers.values()):.2f} ms",
            ", ".join(f"{k} {v:.2f}" for k, v in servers.items()),
        )
    if backends1:
        # PostgreSQL's share by the service whose database it serves: the backends connected at the
        # end, less what each had spent at the start (one that closed meanwhile is not counted).
        by_service = dict.fromkeys(system.procs, 0.0)
        for pid, (service, spent_s) in backends1.items():
            by_service[service] += (spent_s - backends0.get(pid, (service, 0.0))[1]) / max(done, 1) * 1000
        res.add(
            f"[{label}]     PostgreSQL by the service it serves",
            f"{sum(by_service.values()):.2f} ms",
            ", ".join(f"{k} {v:.2f}" for k, v in by_service.items()),
        )
    # What the cores allow at this run's CPU per referral: the pipeline's ceiling when it is CPU-bound
    # (the machine busy nearly all the time), whatever the raw limit. The load generator (this
    # process: publishing, and watching the events) shares the cores too.
    gen = (gen1.user + gen1.system - gen0.user - gen0.system) / max(done, 1) * 1000
    total = sum(per.values()) + sum(servers.values()) + gen
    spent = sum(machine1) - sum(machine0)
    busy = 1 - (machine1.idle - machine0.idle) / spent if spent > 0 else float("nan")
    cores = os.cpu_count() or 1
    ceiling = cores * 1000 / total if total > 0 else float("nan")
    res.add(
        f"[{label}]   what {cores} cores allow at this CPU per referral",
        f"{ceiling:,.0f}/s",
        f"ratio {ceiling / raw_pub:.2f} · {total:.2f} ms per referral with the load generator's {gen:.2f} · machine busy {busy:.0%}",
    )
    res.add(
        f"[{label}]   peak RSS under load (max of services)",
        f"{max(peak.values()):.0f} MB",
        ", ".join(f"{k} {v:.0f}" for k, v in peak.items()),
    )
    await watch.detach()


async def warm_up(nc: nats.NATS, system: System, n: int, res: Results, raw_pub: float, label: str, env: dict[str, str]) -> None:
    """Before the throughput run, ``n`` referrals through the whole system and, on PostgreSQL,
    ``ANALYZE``: the run then starts from tables that hold cases and have statistics, as a county's
    do (its server's autovacuum analyses a table within a minute of its growing; this machine's
    runs with autovacuum off). From empty, unanalysed tables PostgreSQL plans every statement for
    empty tables (sequential scans) while the run grows them to tens of thousands of rows:
    bench/README.md, thirteenth session."""
    t0 = time.perf_counter()
    await pipeline(nc, system, n, Results(), raw_pub, f"{label} warm-up")
    await settle(nc)
    if system.postgres:
        await analyze_pg_databases(env)
    res.add(
        f"[{label}]   warm-up before the throughput run",
        f"{n:,} referrals",
        f"{time.perf_counter() - t0:.0f} s" + (", then ANALYZE" if system.postgres else ""),
    )


async def settle(nc: nats.NATS, quiet: float = 2.0, timeout: float = 300.0) -> float:
    """Wait until every durable consumer has nothing pending or unacknowledged for ``quiet`` seconds:
    the latency run measures a fixed load on a system at rest, not the tail of the throughput run
    (the events the pipeline does not wait for: team notifications, consent, meetings)."""
    js = nc.jetstream()
    t0 = time.monotonic()
    calm_since: float | None = None
    while time.monotonic() - t0 < timeout:
        busy = 0
        for stream in await js.streams_info():
            for c in await js.consumers_info(stream.config.name):
                busy += (c.num_pending or 0) + (c.num_ack_pending or 0)
        now = time.monotonic()
        if busy:
            calm_since = None
        elif calm_since is None:
            calm_since = now
        elif now - calm_since >= quiet:
            break
        await asyncio.sleep(0.2)
    return time.monotonic() - t0


async def latency(nc: nats.NATS, rate: float, seconds: float, res: Results, label: str, raw: list[float]) -> None:
    """A fixed offered load on the system at rest; reported against ``raw``, the raw publish →
    consume latencies measured at the same load on the same servers."""
    watch = Watch()
    await watch.attach(nc)
    js = nc.jetstream()
    sent: dict[str, float] = {}
    n = int(rate * seconds)
    t_start = time.perf_counter()
    for i in range(n):
        target = t_start + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        body = submission(i)
        sid = json.loads(body)["submission_id"]
        sent[sid] = time.perf_counter()
        await js.publish(INTAKE_SUBJECT, body, headers={"Nats-Msg-Id": sid})
    deadline = time.monotonic() + 30
    while len(watch.notified) < n and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    rec = [(watch.received[s] - t) * 1000 for s, t in sent.items() if s in watch.received]
    notif = [(watch.notified[s] - t) * 1000 for s, t in sent.items() if s in watch.notified]
    res.latencies[label] = {"raw": raw, "received": rec, "notified": notif}
    raw99 = pct(raw, 99)
    res.add(
        f"[{label}] raw publish → consume at {rate:.0f}/s for {seconds:.0f}s",
        f"p50 {pct(raw, 50):.1f} ms",
        f"p99 {raw99:.1f} · seen {len(raw)}/{max(1, int(rate * seconds))}",
    )
    for what, vals in (("publish → referral.received", rec), ("publish → notification sent", notif)):
        p99 = pct(vals, 99)
        received = what.endswith("received")
        res.add(
            f"[{label}] latency at {rate:.0f}/s for {seconds:.0f}s: {what}",
            f"p50 {pct(vals, 50):.1f} ms",
            f"p95 {pct(vals, 95):.1f} p99 {p99:.1f} max {max(vals, default=float('nan')):.1f}"
            + (f" · p99 ratio to raw {p99 / raw99:.1f} (target ≤{LATENCY_RATIO_TARGET:.0f})" if received else ""),
            (p99 / raw99 <= LATENCY_RATIO_TARGET) if received else None,
        )
    res.add(f"[{label}]   seen / published", f"{len(rec)}/{n} · {len(notif)}/{n}")


async def replay_bench(n: int, tmp: Path, res: Results) -> None:
    # The stream is filled on its own server without per-write fsync (filling is not what is measured);
    # both readers then run on the same data.
    server = EmbeddedNats(tmp / "replay-nats", free_port(), sync_always=False).start()
    try:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="REPLAY", subjects=["replay.>"], storage=StorageType.FILE))
        proto = ReferralReceived(
            producer="bench",
            case_id=uuid.uuid4(),
            referral_id=uuid.uuid4(),
            submission_id="s",
            channel="phone",
            municipality="Porvoo",
            received_at=datetime.now(UTC),
            language="fi",
            interpreter_needed=False,
            urgent=False,
            statutory=True,
            child_count=1,
            consent_to_convene=True,
            referrer_type="police",
            contacts=[{"contact_id": "referrer", "role": "referrer", "email": "r@example.com"}],
        ).model_dump(mode="json")
        t0 = time.perf_counter()
        chunk = 5000
        for start in range(0, n, chunk):
            futs = []
            for i in range(start, min(n, start + chunk)):
                proto["event_id"] = str(uuid.uuid4())
                proto["municipality"] = ("Porvoo", "Loviisa", "Sipoo", "Askola")[i % 4]
                futs.append(
                    js.publish_async("replay.referral.received.v1", json.dumps(proto).encode())
                    if hasattr(js, "publish_async")
                    else js.publish("replay.referral.received.v1", json.dumps(proto).encode())
                )
            await asyncio.gather(*futs)
        fill = time.perf_counter() - t0
        print(f"    (filled {n:,} events in {fill:.0f}s)", flush=True)

        count = 0

        def raw(msgs: list[Any]) -> None:
            nonlocal count
            count += len(msgs)

        t0 = time.perf_counter()
        await replay(js, "REPLAY", "replay.referral.received.v1", raw)
        raw_rate = count / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        stats = await ReferralStatistics.rebuild(js, subject="replay.referral.received.v1", stream="REPLAY")
        rebuild_rate = stats.events / (time.perf_counter() - t0)
        res.add(f"replay: raw drain of {count:,} events", f"{raw_rate:,.0f}/s")
        res.add(
            f"replay: rebuild referral statistics from {stats.events:,}",
            f"{rebuild_rate:,.0f}/s",
            f"ratio {rebuild_rate / raw_rate:.2f} (target ≥0.5)",
            rebuild_rate / raw_rate >= 0.5,
        )
        await nc.close()
    finally:
        server.stop()


def plot(res: Results, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("  (matplotlib not installed: no plot)")
        return
    fig, ax = plt.subplots(figsize=(9, 5))
    styles = {"raw": ":", "received": "-", "notified": "--"}
    names = {"raw": "raw publish → consume", "received": "→ referral.received", "notified": "→ notification sent"}
    for i, (label, series) in enumerate(res.latencies.items()):
        color = f"C{i}"
        for kind, vals in series.items():
            if vals:
                s = sorted(vals)
                ax.plot(
                    s,
                    [k / len(s) * 100 for k in range(len(s))],
                    styles[kind],
                    color=color,
                    label=f"[{label}] {names[kind]} (p99 {pct(vals, 99):.1f} ms)",
                )
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log scale)")
    ax.set_ylabel("percentile")
    ax.set_title(f"Koolle latency at {LOAD_SHARE:.0%} of each run's raw publish rate (JetStream sync_interval: always)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


async def run_system(
    label: str,
    nc: nats.NATS,
    url: str,
    tmp: Path,
    args: argparse.Namespace,
    res: Results,
    raw_pub: float,
    extra_env: dict[str, str] | None = None,
    nats_pids: list[int] | None = None,
    replicas: int = 1,
) -> None:
    system = System(url, tmp / f"sys-{label}", extra_env, nats_pids)
    rate = args.rate or max(1.0, round(raw_pub * LOAD_SHARE))
    try:
        ready = await system.start(nc)
        res.add(f"[{label}] time from start to all four services ready", f"{ready:.1f} s", "target ≤5 s", ready <= 5.0)
        await asyncio.sleep(2.0)
        idle = system.rss_mb()
        res.add(
            f"[{label}] idle RSS per service (max)",
            f"{max(idle.values()):.0f} MB",
            "target ≤80 MB · " + ", ".join(f"{k} {v:.0f}" for k, v in idle.items()),
            max(idle.values()) <= 80,
        )
        if args.warmup:
            await warm_up(nc, system, args.warmup, res, raw_pub, label, extra_env or {})
        await pipeline(nc, system, args.n, res, raw_pub, label)
        settled = await settle(nc)
        print(f"    (system settled {settled:.1f}s after the throughput run)", flush=True)
        if system.postgres:
            await analyze_pg_databases(extra_env or {})
        raw = await raw_latency(nc, rate, args.seconds, replicas)
        await latency(nc, rate, args.seconds, res, label, raw)
    finally:
        system.stop()


async def run_cluster(args: argparse.Namespace, res: Results, tmp: Path) -> None:
    """What a county runs: PostgreSQL databases and a 3-node nats-server cluster on loopback with R3
    streams. The raw limit and the raw latency are measured on the same cluster in the same run."""
    from bench.postgres import POSTGRES_URL, postgres_reachable

    if not postgres_reachable():
        res.add("[cluster] skipped", "no PostgreSQL at 127.0.0.1:5432")
        return
    nodes = start_cluster(tmp / "cluster")
    urls = [n.url for n in nodes]
    nc = await nats.connect(servers=urls, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    env: dict[str, str] = {}
    try:
        print(f"\ncluster: 3 nats-servers on {', '.join(urls)} (R3 streams, sync_interval: always) + PostgreSQL\n", flush=True)
        await ensure_replicated_streams(nc, timeout=60)
        raw_pub, raw_drain = await raw_limit(nc, args.raw, replicas=3)
        res.add(f"[cluster] raw JetStream publish with ack, R3 ({args.raw:,} msgs)", f"{raw_pub:,.0f}/s", "the limit (1.00)")
        res.add("[cluster] raw JetStream pull-consume with ack, R3", f"{raw_drain:,.0f}/s")
        env = await make_pg_databases(POSTGRES_URL)
        env["KOOLLE_STREAM_REPLICAS"] = "3"
        pids = [n.proc.pid for n in nodes if n.proc]
        await run_system("cluster", nc, ",".join(urls), tmp, args, res, raw_pub, env, pids, replicas=3)
    finally:
        await nc.close()
        if env:
            await drop_pg_databases(POSTGRES_URL, {k: v for k, v in env.items() if k.endswith("_DATABASE_URL")})
        for n in nodes:
            n.stop()


async def main_async(args: argparse.Namespace) -> Results:
    res = Results()
    tmp = Path(tempfile.mkdtemp(prefix="koolle-bench-"))
    if args.cluster_only:
        await run_cluster(args, res, tmp)
        return res
    server = EmbeddedNats(tmp / "nats", free_port()).start()
    nc = await nats.connect(server.url)
    try:
        print(f"Koolle benchmark · {os.cpu_count()} cores · nats-server {server.url} (sync_interval: always)\n", flush=True)
        sync50, sync99 = fsync_ms(tmp)
        res.add("disk: a 600-byte append and its fsync, where nats-server stores", f"p50 {sync50:.2f} ms", f"p99 {sync99:.2f} ms")
        raw_pub, raw_drain = await raw_limit(nc, args.raw)
        res.add(
            f"raw JetStream publish with ack, pipelined ({args.raw:,} msgs, Nats-Msg-Id)", f"{raw_pub:,.0f}/s", "the limit (1.00)"
        )
        res.add("raw JetStream pull-consume with ack", f"{raw_drain:,.0f}/s")
        nats_pids = [server.proc.pid] if server.proc else []
        await run_system("sqlite", nc, server.url, tmp, args, res, raw_pub, nats_pids=nats_pids)
        if args.postgres:
            from bench.postgres import POSTGRES_URL, postgres_reachable

            if postgres_reachable():
                env = await make_pg_databases(POSTGRES_URL)
                # fresh streams so the PostgreSQL run does not inherit the SQLite run's consumers' backlog
                # (the streams refuse purges: deleted and declared again, with the consumers)
                js = nc.jetstream()
                for s in STREAMS:
                    try:
                        await js.delete_stream(s)
                    except Exception:  # noqa: BLE001 - not there
                        pass
                await ensure_streams(js)
                try:
                    await run_system("postgres", nc, server.url, tmp, args, res, raw_pub, env, nats_pids)
                finally:
                    await drop_pg_databases(POSTGRES_URL, env)
            else:
                res.add("[postgres] skipped", "no server at 127.0.0.1:5432")
        await replay_bench(args.replay, tmp, res)
    finally:
        await nc.close()
        server.stop()
    if args.cluster:
        await run_cluster(args, res, tmp)
    return res


async def make_pg_databases(url: str) -> dict[str, str]:
    import asyncpg

    admin = await asyncpg.connect(url.replace("+asyncpg", ""))
    env = {}
    suffix = uuid.uuid4().hex[:8]
    for s in SERVICES:
        name = f"koolle_bench_{suffix}_{s}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        env[f"KOOLLE_{s.upper()}_DATABASE_URL"] = url.rsplit("/", 1)[0] + "/" + name
    await admin.close()
    return env


async def analyze_pg_databases(env: dict[str, str]) -> None:
    """Fresh statistics for the latency run, as autovacuum gathers them within a minute (this
    machine's server runs with autovacuum off). The throughput run has just grown empty tables to
    tens of thousands of rows; until they are analysed, PostgreSQL plans for the empty tables (a
    sequential scan of a table it takes to be small), and a connection that served the burst's
    large batches keeps its generic plans. A county's tables hold years of cases, whose statistics
    one morning's burst does not change (bench/README.md, twelfth session)."""
    import asyncpg

    for key, db_url in env.items():
        if key.endswith("_DATABASE_URL"):
            conn = await asyncpg.connect(db_url.replace("+asyncpg", ""))
            try:
                await conn.execute("ANALYZE")
            finally:
                await conn.close()


async def drop_pg_databases(url: str, env: dict[str, str]) -> None:
    """The run's databases go again: every run makes its own (tens of MB per 1,000 referrals)."""
    import asyncpg

    admin = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        for db_url in env.values():
            await admin.execute(f'DROP DATABASE IF EXISTS "{db_url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await admin.close()


def write_results(res: Results, args: argparse.Namespace, path: Path) -> None:
    lines = [
        "# Koolle benchmark results",
        "",
        f"Run `{' '.join(['python -m bench.run', *sys.argv[1:]])}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; nats-server with JetStream on disk and "
        "`sync_interval: always`; services with SQLite (WAL, synchronous=FULL) unless marked postgres; [cluster]: "
        "PostgreSQL and 3 nats-servers on loopback, R3 streams.",
        "",
        "| measure | value | ratio / detail | target |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in res.rows]
    lines += ["", "![latency distribution](latency.png)", ""]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, help="referrals in the throughput run (20000; quick 300)")
    p.add_argument(
        "--warmup",
        type=int,
        help="referrals through the system before the throughput run, then ANALYZE on PostgreSQL (3000; quick 100; 0: none)",
    )
    p.add_argument("--raw", type=int, help="messages in the raw limit run (20000; quick 1000)")
    p.add_argument(
        "--rate", type=float, help="offered load for the latency run (referrals/s; default 3%% of the raw publish rate)"
    )
    p.add_argument("--seconds", type=float, help="duration of the latency run (30; quick 3)")
    p.add_argument("--replay", type=int, help="events in the replay run (1000000; quick 5000)")
    p.add_argument("--postgres", action="store_true", help="also run with PostgreSQL databases")
    p.add_argument("--cluster", action="store_true", help="also run on PostgreSQL with a 3-node nats-server cluster, R3 streams")
    p.add_argument("--cluster-only", action="store_true", help="only the cluster run (with --quick: its smoke test)")
    p.add_argument("--quick", action="store_true", help="small smoke version")
    p.add_argument("--out", type=Path, default=HERE, help="where results.md and latency.png go")
    args = p.parse_args()
    defaults = (
        {"n": 300, "warmup": 100, "raw": 1000, "seconds": 3.0, "replay": 5000}
        if args.quick
        else {"n": 20000, "warmup": 3000, "raw": 20000, "seconds": 30.0, "replay": 1_000_000}
    )
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    res = asyncio.run(main_async(args))
    args.out.mkdir(parents=True, exist_ok=True)
    write_results(res, args, args.out / "results.md")
    plot(res, args.out / "latency.png")
    print(f"\nwritten: {args.out / 'results.md'}, {args.out / 'latency.png'}")


if __name__ == "__main__":
    main()
