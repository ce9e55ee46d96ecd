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
    for measure in ("raw JetStream publish", "pipeline", "latency", "replay", "idle RSS", "ready"):
        assert measure in results, measure
    assert "100/100" in results, "every referral of the smoke run was received and notified"
    assert (tmp_path / "latency.png").stat().st_size > 1000
