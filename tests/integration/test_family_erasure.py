"""Erasure of one family at the end of its retention (issue 18, finding 8), on a real nats-server and
real SQLite files: two families go through referral → meeting → plan; the first is erased; then no
stream message, database row or log line holds anything of it that can be read, the statistics are
the same as before, and the second family is untouched."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import asyncpg
import pytest
from sqlalchemy import select

from infra.ops import erase_family_request
from services.referral.hetu import make_test_hetu
from shared.client import call, submit_referral
from shared.clock import FixedClock
from shared.contracts import STREAMS, ReferralReceived
from shared.sealing import KEYS_BUCKET, KEYS_STREAM, opened_event
from tests.conftest import POSTGRES_URL, postgres_reachable, wait_for
from tests.integration.test_flow import _convene_until_open, convene_cmd, held_cmd, plan_cmd
from tests.support.data import submission
from tests.support.databases import KINDS
from tests.support.staff import relation_known
from tests.support.system import EventLog, fed, running

pytestmark = [pytest.mark.integration]
SERVICES = ("referral", "meetings", "plans", "notifications")


@pytest.fixture(params=KINDS)
async def database_urls(request):  # type: ignore[no-untyped-def]
    """No URLs (each service's SQLite file in the data dir), or a fresh PostgreSQL database per service."""
    if request.param == "sqlite":
        yield {}
        return
    if not postgres_reachable():
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    admin = await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""))
    names = {s: f"koolle_t_{uuid4().hex[:10]}_erase_{s}" for s in SERVICES}
    for n in names.values():
        await admin.execute(f'CREATE DATABASE "{n}"')
    base = POSTGRES_URL.rsplit("/", 1)[0]
    yield {f"{s}_database_url": f"{base}/{n}" for s, n in names.items()}
    for n in names.values():
        await admin.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')
    await admin.close()


def family(n: int) -> dict[str, Any]:
    """A family with its own, easily found, names, contacts and words."""
    return submission(
        children=[
            {
                "given_name": f"Aapeli{n}x",
                "family_name": f"Erasela{n}x",
                "personal_id": make_test_hetu(datetime(2018, 3, n).date(), 950 + n),
            }
        ],
        guardians=[
            {"name": f"Hilma{n}x Erasela", "phone": f"040 555 00{n}{n}", "email": f"hilma{n}x@example.com", "language": "fi"}
        ],
        concern=f"Huoli{n}x: perheen arki on kuormittunut.",
        referrer={
            "organisation_type": "early_childhood_education",
            "organisation": "Päiväkoti Esimerkki",
            "email": f"ope{n}x@example.com",
        },
    )


def secrets_of(body: dict[str, Any], plan_email: str, meeting_email: str) -> list[str]:
    g, c = body["guardians"][0], body["children"][0]
    return [
        g["name"],
        g["email"],
        g["phone"],
        g["phone"].replace(" ", "")[1:],  # as stored, normalised (+358 40 …)
        c["given_name"],
        c["family_name"],
        c["personal_id"],
        body["concern"],
        body["referrer"]["email"],
        plan_email,
        meeting_email,
    ]


async def walk(nc: Any, log: EventLog, svcs: dict[str, Any], clock: FixedClock, token: str, body: dict[str, Any], n: int) -> str:
    """referral → convened → held → plan agreed; returns the case id."""
    await submit_referral(nc, body)
    received = await wait_for(lambda: [e for e in log.of("referral.received") if e["submission_id"] == body["submission_id"]])
    case_id = received[0]["case_id"]
    await relation_known([svcs["meetings"], svcs["plans"]], case_id)
    convene = convene_cmd(case_id, clock.now() + timedelta(hours=1))
    convene["participants"][0]["contact"] = {"contact_id": "guardian-1", "role": "guardian", "email": f"kutsu{n}x@example.com"}
    reply = await wait_for(_convene_until_open(nc, convene, token))
    assert reply.ok, reply.errors
    meeting_id = reply.id
    clock.advance(hours=1, minutes=5)
    held = await call(nc, "cmd.meetings.record_held.v2", held_cmd(case_id, meeting_id), token=token)
    assert held.ok, held.errors
    plan = plan_cmd(case_id, meeting_id, datetime.now(UTC) + timedelta(days=30))
    plan["family_contacts"][0]["email"] = f"suunnitelma{n}x@example.com"
    agreed = await call(nc, "cmd.plans.agree.v2", plan, token=token)
    assert agreed.ok, agreed.errors
    await wait_for(lambda: [e for e in log.of("plan.agreed") if e["case_id"] == case_id])
    return case_id


async def statistics(nc: Any, token: str) -> tuple[Any, Any]:
    referral = await call(nc, "query.referral.statistics.v1", {}, token=token)
    meetings = await call(nc, "query.meetings.statistics.v2", {}, token=token)
    assert referral.ok and meetings.ok, (referral.errors, meetings.errors)
    return referral.data, meetings.data


async def stream_bytes(js: Any) -> dict[str, list[bytes]]:
    """Every message of every stream (and of the key bucket), raw: subject, headers and data."""
    out: dict[str, list[bytes]] = {}
    for name in [*STREAMS, KEYS_STREAM]:
        info = await js.stream_info(name)
        msgs = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            try:
                m = await js.get_msg(name, seq)
            except Exception:  # noqa: BLE001 - deleted (a destroyed key) or expired
                continue
            msgs.append(m.subject.encode() + repr(m.headers).encode() + (m.data or b""))
        out[name] = msgs
    return out


async def database_text(svc: Any) -> str:
    """Every value of every row of every table of a service's database, as text."""
    parts = []
    async with svc.db.read_sessionmaker() as session:
        for table in svc.db.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                parts.append(repr(tuple(row)))
    return "\n".join(parts)


def found(haystack: str | bytes, needles: list[str]) -> list[str]:
    if isinstance(haystack, bytes):
        return [s for s in needles if s.encode() in haystack or s.encode("unicode_escape") in haystack]
    return [s for s in needles if s in haystack]


async def test_an_erased_family_is_unreadable_everywhere_and_statistics_do_not_change(  # type: ignore[no-untyped-def]
    staff_settings, nc, nats_server, clean_streams, worker_token, identity, caplog, database_urls
):
    caplog.set_level(logging.DEBUG)
    # Raw submissions leave INTAKE after their retention (a year later in life; two seconds here).
    settings = staff_settings.model_copy(update={"retention_intake_hours": 2 / 3600, **database_urls})
    log = await EventLog().attach(nc)
    clock = FixedClock(datetime.now(UTC))
    stats_token = identity.statistician(municipality=None)
    ops = identity.ops()
    js = nc.jetstream()
    async with running(settings, clock=clock) as svcs:
        assert {s.db.engine.dialect.name for s in svcs.values()} == ({"postgresql"} if database_urls else {"sqlite"})
        erased_body, kept_body = family(1), family(2)
        erased = await walk(nc, log, svcs, clock, worker_token, erased_body, 1)
        kept = await walk(nc, log, svcs, clock, worker_token, kept_body, 2)
        gone = secrets_of(erased_body, "suunnitelma1x@example.com", "kutsu1x@example.com")
        stays = secrets_of(kept_body, "suunnitelma2x@example.com", "kutsu2x@example.com")

        # Streams only ever held the personal fields sealed.
        streams = await stream_bytes(js)
        for name, msgs in streams.items():
            if name != "INTAKE":
                assert not [found(m, gone + stays) for m in msgs if found(m, gone + stays)], name
        before = await statistics(nc, stats_token)
        held = {name: found(await database_text(svc), gone) for name, svc in svcs.items()}
        assert all(held.values()), f"every service held some of the family's data before: {held}"

        data_key = (await (await js.key_value(KEYS_BUCKET)).get(erased)).value
        assert data_key is not None and len(data_key) == 32

        # What `python -m infra.ops erase-family CASE_ID --purpose retention_ended` sends.
        refused = await erase_family_request(nc, token=worker_token, case_id=erased, purpose="retention_ended", reference=None)
        assert not refused.ok and refused.errors[0].code == "forbidden"
        reply = await erase_family_request(
            nc, token=ops, case_id=erased, purpose="retention_ended", reference="retention-2037-17"
        )
        assert reply.ok, reply.errors
        assert reply.data["key_destroyed"] is True

        async def erased_everywhere() -> bool:
            for svc in svcs.values():
                consumer = fed(svc, subject="referral.case_erased.v1")
                if consumer.handled < 1:
                    return False
            return True

        await wait_for(erased_everywhere)

        async def intake_expired() -> bool:
            return (await js.stream_info("INTAKE")).state.messages == 0

        await wait_for(intake_expired, timeout=10)

        # 1. Streams (and the key bucket): nothing of the erased family, raw.
        streams = await stream_bytes(js)
        for name, msgs in streams.items():
            leaks = [found(m, gone) for m in msgs if found(m, gone)]
            assert not leaks, f"{name}: {leaks}"
        # Its sealed events open to the erased values, marked as such (no exception, no data).
        raw = await js.get_last_msg("REFERRAL", "referral.received.v2")
        first = next(e for e in log.of("referral.received") if e["case_id"] == erased)
        assert json.loads(first["_data"])["contacts"].startswith("sealed:v1:")
        cipher = await svcs["plans"].sealer.keys.cipher(erased)
        assert cipher is None
        assert raw is not None

        # The key itself is gone from the server's files (secure erase), not only from the bucket.
        store = nats_server.data_dir / "jetstream"
        holding = [p for p in store.rglob("*") if p.is_file() and data_key in p.read_bytes()]
        assert not holding, holding

        # 2. Databases: nothing of the erased family; the other family is all there.
        for name, svc in svcs.items():
            text = await database_text(svc)
            assert not found(text, gone), f"{name}: {found(text, gone)}"
        kept_text = "\n".join([await database_text(s) for s in svcs.values()])
        assert set(found(kept_text, stays)) >= set(stays) - {kept_body["guardians"][0]["phone"]}
        assert kept_body["guardians"][0]["name"] in kept_text and "suunnitelma2x@example.com" in kept_text

        # 3. Logs: ids only, before and after.
        lines = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
        assert caplog.records, "the services logged"
        assert not found(lines, gone + stays)

        # 4. Statistics: the same numbers.
        assert await statistics(nc, stats_token) == before

        # The other family is still readable, through the audited queries and from its events.
        case = await call(nc, "query.referral.case.v2", {"case_id": kept, "purpose": "case_work"}, token=worker_token)
        assert case.ok and kept_body["guardians"][0]["name"] in str(case.data)
        kept_event = next(e for e in log.of("referral.received") if e["case_id"] == kept)
        kept_key = await svcs["meetings"].sealer.keys.cipher(kept)
        public = ReferralReceived.public_form  # referral.received.v2: contact ids and roles, sealed
        assert public is not None
        opened = opened_event(public, kept_event["_data"], kept_key)
        assert not opened.erased and {c.role for c in opened.contacts} >= {"guardian"}
        erased_event = next(e for e in log.of("referral.received") if e["case_id"] == erased)
        opened = opened_event(public, erased_event["_data"], None)
        assert opened.erased and opened.contacts == []

        # The order is in the referral service's audit log, with ids only.
        audit = await call(
            nc, "query.referral.access_log.v2", {"case_id": erased, "purpose": "access_request"}, token=worker_token
        )
        assert audit.ok, audit.errors
        assert any(e["action"] == "erase_family" for e in audit.data["entries"])
