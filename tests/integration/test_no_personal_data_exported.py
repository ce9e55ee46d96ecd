"""Nothing personal leaves through the operational channels: run the whole flow (referral, meeting,
plan, follow-up, notifications), a rejected submission, a poison message, audited staff reads, the
guardian's own requests (the token's subject is their henkilötunnus) and refused ones; then
scan everything exported to operators for henkilötunnus, phone numbers, e-mail addresses, the test
families' names and their free text. Expected matches: 0.

Scanned: every log record (JSON formatter, DEBUG and up, every logger), every span (name, attributes,
events, status) from an in-memory exporter, every NATS subject seen on the server (core and
JetStream, requests and replies), the dead letters as ``infra.ops list_dead_letters`` shows them,
and any log file in the data directory. Event payloads are not "exported": they are the system's
own data and notifications legitimately carry contact points."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from infra.ops import gather_access_log, list_dead_letters
from services.referral.hetu import make_test_hetu
from shared.client import call, submit_referral
from shared.clock import FixedClock
from shared.observability import JsonFormatter
from shared.service import QUIET_LOGGERS
from shared.telemetry import setup_tracing
from tests.conftest import wait_for
from tests.integration.test_flow import _convene_until_open, convene_cmd, held_cmd, plan_cmd
from tests.support.data import submission
from tests.support.processes import report
from tests.support.staff import TEAM, relation_known
from tests.support.system import EventLog, running

pytestmark = [pytest.mark.integration]

HETU = re.compile(r"\b\d{6}[-+A-FU-Y]\d{3}[0-9A-FHJ-NPR-Y]\b")
PHONE = re.compile(r"(?:\+358|\b0)[\s-]?\d{2}[\s-]?\d{3}[\s-]?\d{3,4}\b")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")

FAMILY = {
    "children": [{"given_name": "Ronja", "family_name": "Vaaralainen", "personal_id": make_test_hetu(date(2018, 3, 14), 977)}],
    "guardians": [
        {
            "name": "Kerttu Vaaralainen",
            "phone": "+358 40 765 4321",
            "email": "kerttu.vaaralainen@example.com",
            "language": "fi",
            "personal_id": make_test_hetu(date(1986, 9, 2), 978),
        }
    ],
    "concern": "Äidin uupumus ja Ronjan unihäiriöt.",
}
NAMES = ("Ronja", "Vaaralainen", "Kerttu", "Lapsinen", "Maija", "Testinen", "Secret Person", "uupumus", "kuormittunut")


def matches(text: str) -> list[str]:
    found = [m.group(0) for rx in (HETU, PHONE, EMAIL) for m in rx.finditer(text)]
    ids = (FAMILY["children"][0]["personal_id"], FAMILY["guardians"][0]["personal_id"])
    return found + [n for n in NAMES if n in text] + [i for i in ids if i in text]


async def test_no_personal_data_in_logs_spans_subjects_or_dead_letters(
    staff_settings, nats_server, nc, clean_streams, identity, worker_token
):  # type: ignore[no-untyped-def]
    settings = staff_settings
    w = worker_token  # the close worker, on the case's team
    guardian = identity.guardian(FAMILY["guardians"][0]["personal_id"])  # the token's subject is the henkilötunnus
    tokens = [w, guardian]
    spans = InMemorySpanExporter()
    provider = setup_tracing("pii-scan", extra_exporter=spans)
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    # The log file a service process writes (infra.run sends its JSON log lines to var/logs/).
    (settings.data_dir / "logs").mkdir(exist_ok=True)
    log_file = open(settings.data_dir / "logs" / "services.log", "w")  # noqa: SIM115 - closed below
    file_handler = logging.StreamHandler(log_file)
    file_handler.setFormatter(JsonFormatter())
    file_handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.addHandler(file_handler)
    root.setLevel(logging.DEBUG)
    quiet = {n: logging.getLogger(n).level for n in QUIET_LOGGERS}
    for n in QUIET_LOGGERS:  # as configure_logging does: drivers at DEBUG would print SQL parameters
        logging.getLogger(n).setLevel(logging.WARNING)
    subjects: list[str] = []

    async def seen(msg) -> None:  # type: ignore[no-untyped-def]
        subjects.append(msg.subject)
        if msg.reply:
            subjects.append(msg.reply)

    sub = await nc.subscribe(">", cb=seen)
    log = await EventLog().attach(nc)
    clock = FixedClock(datetime.now(UTC))
    try:
        async with running(settings, clock=clock) as svcs:
            body = submission(**FAMILY)
            await submit_referral(nc, body)
            await submit_referral(
                nc, submission(guardians=[{"name": "Maija Testinen", "phone": "12", "email": "maija@example.com"}])
            )  # rejected
            await submit_referral(nc, {"submission_id": "fd-bad", "children": "Ronja Vaaralainen 040 765 4321"})  # rejected
            await nc.jetstream().publish(
                "referral.received.v2",
                json.dumps({"name": "Secret Person", "email": "secret@example.com"}).encode(),
                headers={"Nats-Msg-Id": f"poison-{uuid4()}"},
            )
            received = await wait_for(
                lambda: [e for e in log.of("referral.received") if e.get("submission_id") == body["submission_id"]]
            )
            case_id = received[0]["case_id"]
            await relation_known(svcs.values(), case_id, "teams")
            await relation_known(svcs.values(), case_id, "guardians")
            meeting = await wait_for(_convene_until_open(nc, convene_cmd(case_id, clock.now() + timedelta(hours=1)), w))
            assert meeting.ok, meeting.errors
            clock.advance(hours=1, minutes=5)
            held = await call(nc, "cmd.meetings.record_held.v2", held_cmd(case_id, meeting.id), token=w)
            assert held.ok, held.errors
            clock.at = datetime.now(UTC)
            plan = await call(
                nc, "cmd.plans.agree.v2", plan_cmd(case_id, meeting.id, datetime.now(UTC) + timedelta(days=7)), token=w
            )
            assert plan.ok, plan.errors
            sw = identity.social_worker("staff-sw-1", TEAM)
            tokens.append(sw)
            assert (await call(nc, "query.referral.case.v2", {"case_id": case_id, "purpose": "case_work"}, token=sw)).ok
            # "Who has seen my data", gathered from all four services' audit logs: by a worker of the
            # case, and by the guardian themself.
            registry = identity.worker("staff-registry-1", TEAM)
            tokens.append(registry)
            who = await gather_access_log(nc, token=registry, case_id=case_id)
            assert who["complete"], who["services"]
            own = await gather_access_log(nc, token=guardian, case_id=case_id, purpose="own_data")
            assert own["complete"], own["services"]
            # Refused requests: another child's guardian, a worker of another team, an expired token.
            other = identity.guardian(make_test_hetu(date(1979, 1, 30), 979))
            expired = identity.expired("staff-sw-1")
            tokens += [other, expired]
            refusals = ((other, "own_data", "forbidden"), (identity.worker("staff-else", "else"), "case_work", "forbidden"))
            for token, purpose, code in (*refusals, (expired, "case_work", "unauthenticated")):
                r = await call(nc, "query.plans.case.v2", {"case_id": case_id, "purpose": purpose}, token=token)
                assert not r.ok and r.errors[0].code == code
            await wait_for(lambda: any(e["template"] == "plan_agreed" for e in log.of("notification.sent")), timeout=15)
            await wait_for(lambda: log.of("deadletter."), timeout=10)
            dead = await list_dead_letters(nc)
    finally:
        await sub.unsubscribe()
        root.removeHandler(handler)
        root.removeHandler(file_handler)
        log_file.close()
        root.setLevel(old_level)
        for n, lvl in quiet.items():
            logging.getLogger(n).setLevel(lvl)
    provider.force_flush()
    exported_spans = [
        json.dumps(
            {
                "name": s.name,
                "attributes": dict(s.attributes or {}),
                "status": str(s.status.description),
                "events": [(e.name, dict(e.attributes or {})) for e in s.events],
            },
            ensure_ascii=False,
            default=str,
        )
        for s in spans.get_finished_spans()
    ]
    # Every log file in the data dir, and the nats-server's own log (connections, refusals).
    files = [p.read_text(errors="replace") for p in [*settings.data_dir.rglob("*.log"), nats_server.data_dir / "nats-server.log"]]
    channels = {
        "logs": buf.getvalue(),
        "spans": "\n".join(exported_spans),
        "subjects": "\n".join(subjects),
        "dead_letters": json.dumps(dead, ensure_ascii=False),
        "log_files": "\n".join(files),
    }
    figures = {k: len(v.splitlines()) for k, v in channels.items()}
    leaks = {k: matches(v) for k, v in channels.items()}
    report(
        "no-personal-data-exported",
        **{f"{k}_lines_scanned": v for k, v in figures.items()},
        matches=sum(map(len, leaks.values())),
    )
    assert figures["logs"] > 10 and figures["spans"] > 10 and figures["subjects"] > 50 and dead, "the scan saw real traffic"
    assert figures["log_files"] > 10, "the scan read real log files"
    assert leaks == {k: [] for k in channels}
    assert not [k for k, v in channels.items() if any(t in v for t in tokens)], "no access token is exported"


def test_the_scanner_finds_what_it_looks_for() -> None:
    text = json.dumps(FAMILY, ensure_ascii=False) + " 040 123 4567 maija@example.com Maija Testinen"
    found = matches(text)
    assert FAMILY["children"][0]["personal_id"] in found and "+358 40 765 4321" in found and "040 123 4567" in found
    assert "kerttu.vaaralainen@example.com" in found and "Vaaralainen" in found and "Maija" in found
    assert matches("case 5f0c2a4e-8b1d-4c7e-9a3b-1d2e3f4a5b6c seq 0123 at 2026-11-23T08:00:00Z took 0.0123456s") == []
