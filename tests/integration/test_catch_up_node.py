"""Issue 19 end to end on a real nats-server with every identity's permissions (infra/auth.py): the
four services run under their own users, the demo flow (infra/demo.py: a referral, a convening,
the meeting held, a plan, the follow-up due, and a child-protection notification) runs in Porvoo
and a referral arrives in Testilä.

- A staff app of Porvoo's teams, written in Node.js with the npm ``nats`` package, is away while
  it all happens; back, it reads through its own durable consumers every event of its teams
  exactly once and nothing of Testilä's.
- Afterwards no stream but the notifications service's private ``DIRECTORY`` holds an e-mail
  address or a phone number.

Needs node and npm (tests/node is installed once into a cache directory with ``npm ci``); skipped
only when either is missing.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from infra.auth import catch_up_durable, readable_subjects
from shared.client import submit_referral
from shared.contracts import STREAMS, stream_for_subject
from shared.messaging.streams import ensure_streams
from tests.support.data import submission
from tests.support.identities import PASSWORDS, connect_as, secured_server, service_settings
from tests.support.system import BUILDERS

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "tests" / "node"
APP = "staffapp-porvoo"  # infra/staff_apps.json: routes porvoo.*
SERVICES = ("referral", "meetings", "plans", "notifications")

EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
PHONE = re.compile(rb"\+[1-9][0-9]{6,14}|\b0[0-9]{1,3}[ -]?[0-9]{5,8}\b")
# Ids are not phone numbers: a UUID's last group of 12 hex digits is all decimal, starting with 0,
# about once in 300 random ids, and the phone pattern then matched it.
UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NEED_NODE = pytest.mark.skipif(not (shutil.which("node") and shutil.which("npm")), reason="node and npm are needed")


def _client() -> Path:
    """The Node client with its pinned ``nats`` package, installed once per lock file version."""
    lock = (CLIENT / "package-lock.json").read_bytes()
    cache = (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        / "koolle"
        / f"node-{hashlib.sha256(lock).hexdigest()[:12]}"
    )
    if not (cache / "node_modules" / "nats").is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copy(CLIENT / name, cache / name)
        subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], cwd=cache, check=True, timeout=600
        )
    shutil.copy(CLIENT / "catch_up.mjs", cache / "catch_up.mjs")
    return cache


async def node_catch_up(client: Path, url: str) -> list[dict[str, str]]:
    consumers = [
        {"stream": stream_for_subject(s), "subject": s, "durable": catch_up_durable(APP, s)} for s in readable_subjects(APP)
    ]
    env = {
        **os.environ,
        "KOOLLE_CATCH_UP": json.dumps({"url": url, "user": APP, "password": PASSWORDS[APP], "consumers": consumers}),
    }
    proc = await asyncio.create_subprocess_exec(
        "node", str(client / "catch_up.mjs"), cwd=client, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    result: list[dict[str, str]] = json.loads(out.decode().strip().splitlines()[-1])
    return result


async def stored(ops: nats.NATS, stream: str) -> list[Any]:
    """Every message of ``stream``, read by ops with an ephemeral consumer."""
    js = ops.jetstream()
    total = (await js.stream_info(stream)).state.messages
    if not total:
        return []
    sub = await js.pull_subscribe(
        ">", stream=stream, config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL)
    )
    msgs: list[Any] = []
    while len(msgs) < total:
        msgs += await sub.fetch(min(500, total - len(msgs)), timeout=5)
    await sub.unsubscribe()
    return msgs


@pytest.fixture
async def system(tmp_path, staff_settings):  # type: ignore[no-untyped-def]
    server = secured_server(tmp_path / "nats")
    ops = await connect_as(server, "ops")
    await ensure_streams(ops.jetstream())
    services = [BUILDERS[s](service_settings(staff_settings, server, s)) for s in SERVICES]
    for svc in services:
        await svc.start()
    try:
        yield server, ops
    finally:
        for svc in services:
            await svc.stop()
        await ops.close()
        server.stop()


async def run_flow(server: Any, ops: nats.NATS, identity: Any) -> None:
    """The demo in Porvoo (front door and staff app on their own identities), a referral in Testilä."""
    from infra.demo import print_events, run_demo

    frontdoor, staff = await connect_as(server, "frontdoor"), await connect_as(server, "staffapp")
    try:
        await print_events(ops)
        await submit_referral(frontdoor, submission())  # Testilä: testila-family-centre
        await asyncio.wait_for(run_demo(ops, identity.issuer, followup_after=2.0, frontdoor=frontdoor, staff=staff), 90)
    finally:
        await frontdoor.close()
        await staff.close()
    await asyncio.sleep(1.0)  # the last notifications of the flow reach their streams


@NEED_NODE
async def test_a_staff_app_back_from_away_reads_every_missed_event_of_its_teams_once_and_none_of_other_teams(  # type: ignore[no-untyped-def]
    system, identity
):
    server, ops = system
    client = _client()
    assert await node_catch_up(client, server.url) == []  # its consumers exist; nothing has happened yet
    await run_flow(server, ops, identity)

    read = await node_catch_up(client, server.url)
    again = await node_catch_up(client, server.url)

    mine = {
        (m.subject, json.loads(m.data)["event_id"])
        for name in STREAMS
        if name != "DIRECTORY"
        for m in await stored(ops, name)
        if any(nats_match(p, m.subject) for p in readable_subjects(APP))
    }
    assert {s.split(".")[-2] for s, _ in mine} == {"porvoo"}
    assert {s.split(".")[0] for s, _ in mine} >= {"meeting", "plan", "followup", "notification", "referral"}
    assert len(read) == len({(r["subject"], r["event_id"]) for r in read}), "an event was read twice"
    assert {(r["subject"], r["event_id"]) for r in read} == mine
    assert again == []
    testila = [m for name in ("REFERRAL", "NOTIFICATIONS") for m in await stored(ops, name) if ".testila." in m.subject]
    assert testila, "the other team's events exist, and the app read none of them"


async def test_after_the_demo_flow_no_stream_but_the_private_directory_holds_an_address_or_a_phone_number(system, identity):  # type: ignore[no-untyped-def]
    server, ops = system
    await run_flow(server, ops, identity)
    found = []
    for name in STREAMS:
        # DIRECTORY: the notifications service's private copies; INTAKE: the front door's submissions
        # as sent, read by the referral service only and kept for their retention (docs/operations.md).
        if name in ("DIRECTORY", "INTAKE"):
            continue
        for m in await stored(ops, name):
            if EMAIL.search(m.data) or PHONE.search(UUID.sub(b"<id>", m.data)):
                found.append(m.subject)
    assert found == []
    directory = await stored(ops, "DIRECTORY")
    assert any(EMAIL.search(m.data) for m in directory), "the contacts went to the directory"
    assert {m.subject.split(".")[0] for m in directory} == {"directory"}


def nats_match(pattern: str, subject: str) -> bool:
    p, s = pattern.split("."), subject.split(".")
    if p[-1] == ">":
        return len(s) >= len(p) and all(a in ("*", b) for a, b in zip(p[:-1], s, strict=False))
    return len(p) == len(s) and all(a in ("*", b) for a, b in zip(p, s, strict=True))
