"""A small smoke version of the benchmark: it runs end to end and reports every measure."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e]


def test_benchmark_smoke(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.run",
            "--quick",
            "--n",
            "100",
            "--seconds",
            "1",
            "--replay",
            "2000",
            "--out",
            str(tmp_path),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    results = (tmp_path / "results.md").read_text()
    for measure in ("fsync", "raw JetStream publish", "pipeline", "cores allow", "latency", "replay", "idle RSS", "ready"):
        assert measure in results, measure
    assert "100/100" in results, "every referral of the smoke run was received and notified"
    assert (tmp_path / "latency.png").stat().st_size > 1000


@pytest.mark.postgres
def test_benchmark_cluster_smoke(tmp_path: Path) -> None:
    """The county's shape, briefly: PostgreSQL and a 3-node cluster with R3 streams, its raw limit
    and raw latency measured on the same cluster, the pipeline's latency reported as a ratio."""
    from tests.conftest import postgres_reachable

    if not postgres_reachable():
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-m", "bench.run", "--cluster-only", "--quick", "--n", "50", "--seconds", "1", "--out", str(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    results = (tmp_path / "results.md").read_text()
    for measure in ("[cluster] raw JetStream publish with ack, R3", "[cluster] raw publish → consume", "p99 ratio to raw"):
        assert measure in results, measure
    by_service = next(line for line in results.splitlines() if "PostgreSQL by the service it serves" in line)
    assert all(f"{s} " in by_service for s in ("referral", "meetings", "plans", "notifications")), by_service
    assert "| [cluster] pipeline: 50 referrals" in results and "50/50" in results, "every referral was received and notified"
    assert (tmp_path / "latency.png").stat().st_size > 1000


@pytest.mark.postgres
def test_the_meetings_statistics_growth_run_reports_every_query_on_every_scale(tmp_path: Path) -> None:
    from tests.conftest import postgres_reachable

    if not postgres_reachable():
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    root = Path(__file__).resolve().parents[2]
    argv = ["--years", "1", "2", "--per-month", "20", "--ops", "2", "--out", str(tmp_path)]
    out = subprocess.run(
        [sys.executable, "-m", "bench.meetings_growth", *argv], cwd=root, capture_output=True, text=True, timeout=240
    )
    assert out.returncode == 0, out.stderr[-2000:]
    table = (tmp_path / "meetings_growth.md").read_text()
    for query in ("statistics.v2, last month", "joint work, last 12 months", "joint work, every month"):
        assert query in table, query
    assert "1 year (240 meetings)" in table and "2 years (480 meetings)" in table


def test_the_memory_floor_reads_every_service_s_imports_in_a_fresh_interpreter() -> None:
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-m", "bench.idle_rss", "--floor"], cwd=root, capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rows = {line[:70].strip(): line[70:].split() for line in out.stdout.splitlines()[1:] if line.strip()}
    rss = {what: float(cells[0]) for what, cells in rows.items()}
    python = rss["Python alone"]
    for name in ("referral", "meetings", "plans", "notifications"):
        libraries = rss[f"{name}: its third-party imports, none of its own"]
        whole = rss[f"{name}: with its own modules (services.{name}.bootstrap)"]
        assert python < rss["the design card packages (SQLite)"] < libraries < whole, (name, rss)
        module_count = subprocess.run(
            [sys.executable, "-c", f"import sys, services.{name}.bootstrap; print(len(sys.modules))"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        # The fresh interpreter holds what a service imports, no more and no less.
        assert rows[f"{name}: with its own modules (services.{name}.bootstrap)"][1] == module_count.strip()
