"""Secrets and personal data are readable by their owner only (issue 18, finding 4).

``python -m infra.run --demo`` (what ``make run`` does) on a private data dir that an older version
left world-readable; after the demo, every directory in it is 0700 and every file 0600 (databases
with their -wal/-shm, logs, the delivery spool, the JetStream store, the passwords), and the
nats-server configuration holds no password in plaintext, only bcrypt hashes."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from infra.auth import IDENTITIES
from infra.natsserver import free_port
from tests.support.processes import ROOT

pytestmark = [pytest.mark.e2e]


def modes(root: Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(root.stat().st_mode)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = stat.S_IMODE(p.lstat().st_mode)
    return out


def test_make_run_leaves_nothing_readable_by_other_users(tmp_path: Path) -> None:
    data = tmp_path / "var"
    # What an earlier version left behind: a world-readable data dir, database and password file.
    (data / "nats").mkdir(parents=True)
    data.chmod(0o755)
    (data / "referral.db").write_bytes(b"")
    (data / "referral.db").chmod(0o644)
    env = dict(
        os.environ,
        KOOLLE_DATA_DIR=str(data),
        KOOLLE_NATS_URL=f"nats://127.0.0.1:{free_port()}",
        KOOLLE_HTTP_PORT_BASE="0",
        KOOLLE_LOG_LEVEL="INFO",
        PYTHONPATH=str(ROOT),
    )
    out = tmp_path / "run.out"
    with open(out, "wb") as f:
        proc = subprocess.Popen(
            [sys.executable, "-m", "infra.run", "--demo"], env=env, stdout=f, stderr=subprocess.STDOUT, cwd=tmp_path
        )
    try:
        deadline = time.monotonic() + 120
        while "Demo complete" not in out.read_text(errors="replace"):
            assert proc.poll() is None, out.read_text(errors="replace")
            assert time.monotonic() < deadline, out.read_text(errors="replace")
            time.sleep(0.2)
        found = modes(data)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert proc.returncode == 0, out.read_text(errors="replace")
    found_after = modes(data)  # and after a clean stop
    assert any(name.endswith(".db-wal") for name in found), "the databases were running"
    for seen in (found, found_after):
        assert any("jetstream" in name for name in seen), "the JetStream store is in the data dir"
        assert any(name.endswith(".log") for name in seen)
        wrong = {
            name: oct(mode)
            for name, mode in seen.items()
            if mode != (0o700 if (data / name).is_dir() and not (data / name).is_symlink() else 0o600)
        }
        assert wrong == {}, f"readable by others: {wrong}"
    conf = (data / "nats" / "nats-server.conf").read_text()
    secrets = [p.read_text().strip() for p in (data / "nats" / "identities").glob("*.password")]
    assert len(secrets) == len(IDENTITIES)
    assert not any(s in conf for s in secrets), "a plaintext password in the server configuration"
    assert conf.count('"password": "$2') == len(IDENTITIES), "every identity's password is a bcrypt hash"
    assert not (data / "nats" / "credentials.json").exists() or json.loads((data / "nats" / "credentials.json").read_text()) == {}
