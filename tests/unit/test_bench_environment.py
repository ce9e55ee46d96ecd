"""The benchmark's services run with the settings a county runs, not the tests' ones."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_benchmark_never_imports_the_tests_conftest() -> None:
    # tests/conftest.py shortens the consumer linger for the tests in the environment (0.02 s
    # instead of 0.2 s). The benchmark's PostgreSQL and cluster runs once imported their server's
    # address from there, and their services inherited the tests' linger.
    importing = [
        p.name
        for p in sorted((ROOT / "bench").glob("*.py"))
        if "tests.conftest" in p.read_text().replace("``tests/conftest.py``", "")
    ]
    assert importing == []


def test_finding_the_postgresql_server_leaves_the_consumer_linger_at_its_default() -> None:
    env = {k: v for k, v in os.environ.items() if k != "KOOLLE_FETCH_LINGER_SECONDS"}
    code = "import os; from bench.postgres import POSTGRES_URL, postgres_reachable; print(os.environ.get('KOOLLE_FETCH_LINGER_SECONDS'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"
