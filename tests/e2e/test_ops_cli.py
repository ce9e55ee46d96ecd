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
from infra.identity_provider import LocalIssuer
from infra.natsserver import free_port
from shared.contracts import INTAKE_SUBJECT, STREAMS
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
    """One referral (routed to testila-family-centre, staff-1's team), one submission the intake
    rejects, and one poison event (dead-lettered)."""
    good = submission(municipality="Testilä")
    bad = json.dumps({"submission_id": "fd-ops-bad", "channel": "phone"}).encode()
    frontdoor, admin, producer = await _as(system, "frontdoor"), await _as(system, "ops"), await _as(system, "referral")
    try:
        js = frontdoor.jetstream()
        await js.publish(INTAKE_SUBJECT, json.dumps(good).encode(), headers={"Nats-Msg-Id": good["submission_id"]})
        await js.publish(INTAKE_SUBJECT, bad, headers={"Nats-Msg-Id": "fd-ops-bad"})
        # A broken event from its producer's identity (ops publishes no events).
        await producer.jetstream().publish("referral.received.v2", b'{"not": "an event"}', headers={"Nats-Msg-Id": "ops-poison"})
        # ... and its private copy, which the notifications service reads instead (directory.>)
        poison = b'{"not": "an event"}'
        await producer.jetstream().publish("directory.referral.received.v1", poison, headers={"Nats-Msg-Id": "ops-poison-copy"})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while True:
            referral = json.loads((await admin.request("ops.health.referral", b"{}", timeout=5)).data)
            dead = (await admin.jetstream().stream_info("DEADLETTER")).state.messages
            if sum(referral["consumers"].values()) >= 2 and dead >= 3 and await _case_known_everywhere(system):
                break  # meetings and plans consume referral.received.v2, notifications its copy: three dead
                # letters (the referral service applies its own events in their transaction, it reads none)
            assert loop.time() < deadline, (referral, dead)
            await asyncio.sleep(0.1)
    finally:
        await frontdoor.close()
        await producer.close()
        await admin.close()
    return {"good": good, "bad": bad}


async def _case_known_everywhere(system: System) -> bool:
    """The case exists and every service's case-access read model knows its team (what the policy
    decides a staff request from)."""
    for service in ("referral", "meetings", "plans", "notifications"):
        path = system.data_dir / f"{service}.db"
        if not path.exists():
            return False
        with sqlite3.connect(path) as db:
            try:
                if not db.execute("SELECT 1 FROM case_access WHERE kind = 'team'").fetchall():
                    return False
            except sqlite3.OperationalError:  # not created yet
                return False
    return True


def _case_id(system: System) -> str:
    with sqlite3.connect(system.data_dir / "referral.db") as db:
        (case_id,) = db.execute("SELECT DISTINCT case_id FROM case_access WHERE kind = 'team'").fetchone()
    return str(case_id)


def _audit(system: System, service: str) -> list[tuple[str, str, str, str, str]]:
    with sqlite3.connect(system.data_dir / f"{service}.db") as db:
        return db.execute("SELECT actor, action, purpose, result, scope FROM audit_log").fetchall()


@pytest.fixture(scope="module")
def seeded(system: System) -> System:
    if not system.seeded:
        system.seeded.update(asyncio.run(_seed(system)))
    return system


def test_declare_streams_brings_every_stream_to_the_settings_and_lists_them(system: System) -> None:
    out = ok(ops(system, "declare-streams"))  # the running system's streams: declared again, unchanged
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip() and line.split()[0].isupper()}
    assert set(STREAMS) <= set(rows), out
    assert rows["INTAKE"][:2] == ["1", "7"] and rows["DEADLETTER"][:2] == ["1", "30"] and rows["REFERRAL"][:2] == ["1", "kept"]


def test_status_names_every_consumer_by_service_and_subject(system: System) -> None:
    out = ok(ops(system, "status"))
    for service in ("referral", "meetings", "plans", "notifications"):
        assert service in out
    assert "intake.referral.v1" in out and "referral.received.v2" in out
    table = out.split("Consumers", 1)[1]
    rows = [line.split() for line in table.splitlines() if line.strip() and not line.strip().startswith(("─", "service"))]
    rows = [r for r in rows if len(r) == 7]  # service, consumes and five counts
    assert rows and all(r[0] in ("referral", "meetings", "plans", "notifications", "(ephemeral)") for r in rows), rows
    assert {"yes"} == {line.split()[1] for line in out.split("Streams")[0].splitlines() if line.split()[:1] == ["plans"]}


def test_unused_consumers_on_a_fresh_system_says_there_are_none(system: System) -> None:
    assert "no unused consumers" in ok(ops(system, "unused-consumers"))  # as the README prints it


def test_deadletters_on_an_empty_stream_says_so(system: System) -> None:
    assert "no dead letters" in ok(ops(system, "deadletters"))


def test_deadletters_lists_reasons_and_replay_sends_one_back(seeded: System) -> None:
    out = ok(ops(seeded, "deadletters"))
    assert "Dead letters (3)" in out and "contract_violation" in out and "referral.received.v2" in out
    for service in ("meetings", "plans"):  # each service's own: --service
        assert "Dead letters (1)" in ok(ops(seeded, "deadletters", "--service", service))
    assert "not" not in out.split("Dead letters", 1)[1].replace("notifications", "")  # never the payload
    seq = next(line.split()[1] for line in out.splitlines() if "contract_violation" in line)
    # Sent back to its consumer, the poison still breaks the contract: refused, and it stays listed.
    replay = ops(seeded, "replay-deadletter", seq)
    assert replay.returncode == 1 and b"contract_violation" in replay.stdout and b"Traceback" not in replay.stderr
    assert "Dead letters (3)" in ok(ops(seeded, "deadletters"))
    # A sequence that holds no dead letter (never there, or replayed already): one line, exit 1.
    missing = ops(seeded, "replay-deadletter", "999999")
    assert missing.returncode == 1 and b"no_such_dead_letter" in missing.stdout and b"Traceback" not in missing.stderr


def test_rebuild_shows_its_progress(seeded: System) -> None:
    out = ok(ops(seeded, "rebuild", "referral-statistics"))
    assert "rebuilding referral-statistics" in out  # the progress bar
    assert "rebuilt from 1 events" in out and "unreadable skipped" in out  # the poison (and its replay) do not stop it
    assert "Testilä" in out


def test_stored_rebuilds_say_where_they_wrote_their_result(seeded: System) -> None:
    for model, owner in (
        ("referral-statistics", "referral"),
        ("statutory-statistics", "referral"),
        ("joint-work-statistics", "meetings"),
        ("meeting-statistics", "meetings"),
        ("wellbeing", "plans"),
    ):
        out = ok(ops(seeded, "rebuild", model))
        assert f"stored in the {owner} database" in out, out


def test_rejected_lists_reasons_and_shows_raw_bytes_only_when_asked_and_audited(seeded: System) -> None:
    out = ok(ops(seeded, "rejected"))
    assert "fd-ops-bad" in out and "municipality: missing" in out and "children: missing" in out
    assert "phone" not in out  # the payload is not shown
    rejection_id = next(re.search(UUID_RE, line)[0] for line in out.splitlines() if "fd-ops-bad" in line)  # type: ignore[index]

    refused = ops(seeded, "rejected", "--raw", rejection_id)  # no purpose given: nothing read
    assert refused.returncode == 2 and refused.stdout == b""
    free_text = ops(seeded, "rejected", "--raw", rejection_id, "--purpose", "curiosity")  # not a documented purpose
    assert free_text.returncode == 1 and free_text.stdout == b""
    assert b"purpose_required" in free_text.stderr and b"purpose_unknown" in free_text.stderr
    assert _audit(seeded, "referral") == []  # nothing was read

    raw = ops(seeded, "rejected", "--raw", rejection_id, "--purpose", "operations_review")  # as the README prints it
    assert raw.returncode == 0, raw.stderr.decode()
    assert raw.stdout == seeded.seeded["bad"]  # exactly as received
    assert b"audit" in raw.stderr
    audited = _audit(seeded, "referral")
    assert len(audited) == 1  # the listing showed no payload and is not a read of personal data
    actor, action, purpose, result, scope = audited[0]
    assert (
        actor.startswith("ops:") and action == "read_rejected_submission" and result == "found"
    )  # the minted ops token's person
    assert purpose == "operations_review" and scope == f"rejection:{rejection_id}"


def test_rejected_is_refused_to_a_token_without_the_ops_role(seeded: System) -> None:
    worker = LocalIssuer.load_or_create(seeded.data_dir).mint_staff("staff-1", roles={"worker"}, teams={"testila-family-centre"})
    refused = ops(seeded, "rejected", env={**seeded.env, "KOOLLE_TOKEN": worker})
    assert refused.returncode == 1 and b"forbidden" in refused.stderr and b"not_ops" in refused.stderr
    assert b"fd-ops-bad" not in refused.stdout
    untrusted = LocalIssuer.generate().mint_staff("ops:someone", roles={"ops"})  # signed by a key the services do not trust
    refused = ops(seeded, "rejected", "--token", untrusted)
    assert refused.returncode == 1 and b"unauthenticated" in refused.stderr


def test_access_log_answers_for_a_case_as_a_worker_of_its_team(seeded: System) -> None:
    case_id = _case_id(seeded)
    out = ok(ops(seeded, "access-log", case_id, "--as", "staff-1"))  # as the README prints it
    assert "Access log: 1 case(s)" in out and "incomplete" not in out
    assert "when (Helsinki)" in out  # stored in UTC, shown in Helsinki time as the rejections are
    hetu = seeded.seeded["good"]["children"][0]["personal_id"]
    assert hetu not in out
    answer = json.loads(ok(ops(seeded, "access-log", case_id, "--as", "staff-1", "--json")))
    assert answer["complete"] and answer["cases"] == [case_id], answer["services"]
    # the first read is in every service's log now, with the verified reader and the purpose
    seen = {(e["service"], e["actor"], e["action"], e["purpose"]) for e in answer["entries"]}
    for service in ("referral", "meetings", "plans", "notifications"):
        assert (service, "staff-1", "read_access_log", "access_request") in seen, (service, seen)

    # docs/operations.md: KOOLLE_TOKEN=$(.venv/bin/python -m infra.token staff staff-1) ... access-log CASE_ID
    token = subprocess.run(
        [sys.executable, "-m", "infra.token", "staff", "staff-1"], cwd=ROOT, env=seeded.env, capture_output=True, timeout=60
    )
    assert token.returncode == 0, token.stderr.decode()
    out = ok(ops(seeded, "access-log", case_id, env={**seeded.env, "KOOLLE_TOKEN": token.stdout.decode().strip()}))
    assert "Access log: 1 case(s)" in out and "incomplete" not in out


def test_access_log_is_refused_to_a_worker_of_another_team_and_the_refusal_is_audited(seeded: System) -> None:
    case_id = _case_id(seeded)
    refused = ops(seeded, "access-log", case_id, "--as", "pv-sw-1")  # a Porvoo social worker
    assert refused.returncode == 1 and refused.stdout == b""
    assert b"forbidden" in refused.stderr and b"no_relation_to_case" in refused.stderr
    assert ("pv-sw-1", "query.referral.access_log.v2", "refused:no_relation_to_case", "refused", f"case:{case_id}") in _audit(
        seeded, "referral"
    )
    nobody = ops(seeded, "access-log", case_id, "--as", "no-such-person")
    assert nobody.returncode == 2 and b"in no roster" in nobody.stderr and b"Traceback" not in nobody.stderr
    by_hetu = ops(seeded, "access-log", seeded.seeded["good"]["children"][0]["personal_id"], "--as", "staff-1")
    assert by_hetu.returncode == 2 and b"not a case id" in by_hetu.stderr


def test_a_wrong_data_dir_is_one_clear_line_and_no_traceback(system: System, tmp_path: Path) -> None:
    result = ops(system, "status", env=_env(tmp_path, system.url))
    assert result.returncode == 2
    err = result.stderr.decode().strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert "Authorization Violation" in err and "KOOLLE_DATA_DIR" in err


def test_erase_family_destroys_the_case_key_and_every_service_erases_the_family(seeded: System) -> None:
    case_id = _case_id(seeded)
    guardian = seeded.seeded["good"]["guardians"][0]
    with sqlite3.connect(seeded.data_dir / "referral.db") as db:
        assert guardian["name"] in str(db.execute("SELECT state FROM referrals WHERE case_id = ?", (case_id,)).fetchall())

    out = ok(ops(seeded, "erase-family", case_id, "--purpose", "retention_ended", "--reference", "retention-1"))
    assert f"case {case_id} erased: data key destroyed" in out and "referral.case_erased.v1" in out
    erasures = [a for a in _audit(seeded, "referral") if a[1] == "erase_family"]
    assert len(erasures) == 1 and erasures[0][0].startswith("ops:"), erasures  # the token's person, ids only
    assert erasures[0][1:] == ("erase_family", "retention_ended", "erased", "retention:retention-1")

    async def erased_everywhere() -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while True:
            with sqlite3.connect(seeded.data_dir / "referral.db") as db:
                state = str(db.execute("SELECT state FROM referrals WHERE case_id = ?", (case_id,)).fetchall())
            with sqlite3.connect(seeded.data_dir / "notifications.db") as db:
                contacts = db.execute("SELECT count(*) FROM contacts WHERE case_id = ?", (case_id,)).fetchone()[0]
            if guardian["name"] not in state and guardian["email"] not in state and contacts == 0:
                return
            assert loop.time() < deadline, "the services did not erase the family"
            await asyncio.sleep(0.1)

    asyncio.run(erased_everywhere())
    again = ok(ops(seeded, "erase-family", case_id, "--purpose", "retention_ended"))
    assert "data key already gone" in again
    refused = ops(seeded, "erase-family", case_id, "--purpose", "curiosity")
    assert refused.returncode == 2 and b"retention_ended" in refused.stderr
