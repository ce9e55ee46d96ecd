"""Every operations command in the README, run as the README prints it (``.venv/bin/python -m
infra.ops ...``, here this interpreter) in a subprocess, against ``python -m infra.run`` (what
``make up`` runs) started with a private data dir and ports. The CLI is given only KOOLLE_DATA_DIR
and KOOLLE_NATS_URL: it finds the ops identity in the data dir by itself.

The tests run in file order: the empty dead-letter stream is looked at before the seeding puts a
poison message on the bus."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest

from infra.auth import credentials_path, inbox_prefix, load_passwords
from infra.natsserver import free_port
from shared.contracts import INTAKE_SUBJECT
from tests.support.data import submission
from tests.support.processes import ROOT

pytestmark = [pytest.mark.e2e]

UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@dataclass
class System:
    data_dir: Path
    url: str
    env: dict[str, str]
    seeded: dict[str, Any]


def _env(data_dir: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOOLLE_")}
    return {**env, "KOOLLE_DATA_DIR": str(data_dir), "KOOLLE_NATS_URL": url}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    data_dir = tmp_path_factory.mktemp("make-up")
    url = f"nats://127.0.0.1:{free_port()}"
    env = {**_env(data_dir, url), "KOOLLE_HTTP_PORT_BASE": "0", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "infra.run"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()], daemon=True).start()
    try:
        seen = []
        while not any("services ready" in line for line in seen):
            try:
                seen.append(lines.get(timeout=120))
            except queue.Empty:
                pytest.fail("infra.run did not get ready:\n" + "".join(seen))
        yield System(data_dir, url, _env(data_dir, url), {})
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C: infra.run stops the services and the server
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ops(
    system: System, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "infra.ops", *args],
        cwd=ROOT,
        env=env or system.env,
        input=stdin.encode() if stdin is not None else None,
        capture_output=True,
        timeout=120,
    )


def ok(result: subprocess.CompletedProcess[bytes]) -> str:
    assert result.returncode == 0, result.stderr.decode()
    assert b"Traceback" not in result.stderr
    return result.stdout.decode()


async def _as(system: System, identity: str) -> nats.NATS:
    passwords = load_passwords(credentials_path(system.data_dir))
    assert passwords is not None
    return await nats.connect(system.url, user=identity, password=passwords[identity], inbox_prefix=inbox_prefix(identity))


async def _seed(system: System) -> dict[str, Any]:
    """One referral, one submission the intake rejects, and one poison event (dead-lettered)."""
    good = submission(municipality="Opsala")
    bad = json.dumps({"submission_id": "fd-ops-bad", "channel": "phone"}).encode()
    frontdoor, admin, producer = await _as(system, "frontdoor"), await _as(system, "ops"), await _as(system, "referral")
    try:
        js = frontdoor.jetstream()
        await js.publish(INTAKE_SUBJECT, json.dumps(good).encode(), headers={"Nats-Msg-Id": good["submission_id"]})
        await js.publish(INTAKE_SUBJECT, bad, headers={"Nats-Msg-Id": "fd-ops-bad"})
        # A broken event from its producer's identity (ops publishes no events).
        await producer.jetstream().publish("referral.received.v1", b'{"not": "an event"}', headers={"Nats-Msg-Id": "ops-poison"})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while True:
            referral = json.loads((await admin.request("ops.health.referral", b"{}", timeout=5)).data)
            dead = (await admin.jetstream().stream_info("DEADLETTER")).state.messages
            if sum(referral["consumers"].values()) >= 2 and dead >= 2:  # meetings and notifications consume it
                break
            assert loop.time() < deadline, (referral, dead)
            await asyncio.sleep(0.1)
    finally:
        await frontdoor.close()
        await producer.close()
        await admin.close()
    return {"good": good, "bad": bad}


@pytest.fixture(scope="module")
def seeded(system: System) -> System:
    if not system.seeded:
        system.seeded.update(asyncio.run(_seed(system)))
    return system


def test_status_names_every_consumer_by_service_and_subject(system: System) -> None:
    out = ok(ops(system, "status"))
    for service in ("referral", "meetings", "plans", "notifications"):
        assert service in out
    assert "intake.referral.v1" in out and "referral.received.v1" in out
    table = out.split("Consumers", 1)[1]
    rows = [line.split() for line in table.splitlines() if line.strip() and not line.strip().startswith(("─", "service"))]
    rows = [r for r in rows if len(r) == 7]  # service, consumes and five counts
    assert rows and all(r[0] in ("referral", "meetings", "plans", "notifications", "(ephemeral)") for r in rows), rows
    assert {"yes"} == {line.split()[1] for line in out.split("Streams")[0].splitlines() if line.split()[:1] == ["plans"]}


def test_deadletters_on_an_empty_stream_says_so(system: System) -> None:
    assert "no dead letters" in ok(ops(system, "deadletters"))


def test_deadletters_lists_reasons_and_replay_sends_one_back(seeded: System) -> None:
    out = ok(ops(seeded, "deadletters"))
    assert "Dead letters (2)" in out and "contract_violation" in out and "referral.received.v1" in out
    assert "not" not in out.split("Dead letters", 1)[1].replace("notifications", "")  # never the payload
    seq = next(line.split()[1] for line in out.splitlines() if "contract_violation" in line)
    # Sent back to its consumer, the poison still breaks the contract: refused, and it stays listed.
    replay = ops(seeded, "replay-deadletter", seq)
    assert replay.returncode == 1 and b"contract_violation" in replay.stdout and b"Traceback" not in replay.stderr
    assert "Dead letters (2)" in ok(ops(seeded, "deadletters"))


def test_rebuild_shows_its_progress(seeded: System) -> None:
    out = ok(ops(seeded, "rebuild", "referral-statistics"))
    assert "rebuilding referral-statistics" in out  # the progress bar
    assert "rebuilt from 1 events" in out and "unreadable skipped" in out  # the poison (and its replay) do not stop it
    assert "Opsala" in out


def test_rejected_lists_reasons_and_shows_raw_bytes_only_when_asked_and_audited(seeded: System) -> None:
    out = ok(ops(seeded, "rejected"))
    assert "fd-ops-bad" in out and "municipality: missing" in out and "children: missing" in out
    assert "phone" not in out  # the payload is not shown
    rejection_id = next(re.search(UUID_RE, line)[0] for line in out.splitlines() if "fd-ops-bad" in line)  # type: ignore[index]

    refused = ops(seeded, "rejected", "--raw", rejection_id)  # no purpose given: nothing read
    assert refused.returncode == 2 and refused.stdout == b""

    raw = ops(seeded, "rejected", "--raw", rejection_id, "--purpose", "fix the front door mapping")
    assert raw.returncode == 0, raw.stderr.decode()
    assert raw.stdout == seeded.seeded["bad"]  # exactly as received
    assert b"audit" in raw.stderr
    with sqlite3.connect(seeded.data_dir / "referral.db") as db:
        audited = db.execute("SELECT actor, action, purpose, result, scope FROM audit_log").fetchall()
    assert len(audited) == 1  # the listing showed no payload and is not a read of personal data
    actor, action, purpose, result, scope = audited[0]
    assert actor.startswith("ops:") and action == "read_rejected_submission" and result == "found"
    assert purpose == "fix the front door mapping" and scope == f"rejection:{rejection_id}"


def test_access_log_answers_for_a_person(seeded: System) -> None:
    hetu = seeded.seeded["good"]["children"][0]["personal_id"]
    out = ok(ops(seeded, "access-log", "-", "--requested-by", "staff-ops-test", stdin=hetu + "\n"))
    assert "Access log: 1 case(s)" in out
    assert hetu not in out
    answer = json.loads(ok(ops(seeded, "access-log", "-", "--requested-by", "staff-ops-test", "--json", stdin=hetu + "\n")))
    case_id = answer["cases"][0]
    out = ok(ops(seeded, "access-log", case_id, "--requested-by", "staff-ops-test"))  # as the README prints it
    assert "Access log: 1 case(s)" in out and "read_access_log" in out


def test_a_wrong_data_dir_is_one_clear_line_and_no_traceback(system: System, tmp_path: Path) -> None:
    result = ops(system, "status", env=_env(tmp_path, system.url))
    assert result.returncode == 2
    err = result.stderr.decode().strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert "Authorization Violation" in err and "KOOLLE_DATA_DIR" in err
