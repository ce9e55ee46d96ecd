"""Access audit (Client Data Act 703/2023 s. 11): every read or disclosure of a family's data leaves
an append-only record (who, whose data, what, purpose, when, result) in the service that holds it,
each service answers query.<service>.access_log.v1, and one answer gathers "who has seen my data"
for one person from all four (referral finds the person's cases from the henkilötunnus)."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from typer.testing import CliRunner

from infra.ops import app as ops_app
from infra.ops import gather_access_log
from shared.client import call, submit_referral
from shared.clock import FixedClock
from shared.contracts.audit import AccessLogAnswer
from tests.conftest import wait_for
from tests.integration.test_flow import _convene_until_open, convene_cmd, held_cmd, plan_cmd
from tests.support.data import submission
from tests.support.system import EventLog, running

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]


async def test_who_has_seen_my_data(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("referral.>",))
    async with running(settings, "referral"):
        mine, other = submission(), submission()
        hetu = mine["children"][0]["personal_id"]
        await submit_referral(nc, mine)
        await submit_referral(nc, other)
        received = await wait_for(lambda: len(log.of("referral.received")) == 2 and log.of("referral.received"))
        case_id = next(e["case_id"] for e in received if e["submission_id"] == mine["submission_id"])
        other_case = next(e["case_id"] for e in received if e["submission_id"] == other["submission_id"])
        (assigned, *_) = await wait_for(lambda: [e for e in log.of("referral.assigned") if e["case_id"] == case_id])

        read = await call(
            nc, "query.referral.case.v1", {"case_id": case_id, "requested_by": "staff-sw-1", "purpose": "assessment decision"}
        )
        assert read.ok
        await call(nc, "query.referral.case.v1", {"case_id": other_case, "requested_by": "staff-sw-9", "purpose": "case work"})
        listed = await call(
            nc,
            "query.referral.team_cases.v1",
            {"team_id": assigned["team_id"], "requested_by": "staff-lead-2", "purpose": "allocation"},
        )
        assert listed.ok

        first = await call(
            nc,
            "query.referral.access_log.v1",
            {"personal_id": hetu, "requested_by": "staff-registry-1", "purpose": "subject access request"},
        )
        assert first.ok, first.errors
        assert first.data["cases"] == [case_id]
        seen = [(e["actor"], e["action"], e["purpose"], e["result"]) for e in first.data["entries"]]
        assert ("staff-sw-1", "read_case", "assessment decision", "found") in seen
        assert ("staff-lead-2", "list_team_cases", "allocation", "found") in seen
        assert all(e["case_id"] == case_id and e["at"] for e in first.data["entries"])
        assert "staff-sw-9" not in {e["actor"] for e in first.data["entries"]}, "another family's reader is not shown"

        # Reading the log is itself a disclosure: it is in the next answer.
        again = await call(nc, "query.referral.access_log.v1", {"case_id": case_id, "requested_by": "staff-registry-1"})
        assert again.ok and ("staff-registry-1", "read_access_log") in {(e["actor"], e["action"]) for e in again.data["entries"]}

        bad = await call(nc, "query.referral.access_log.v1", {"personal_id": "010101-0000", "requested_by": "staff-registry-1"})
        assert not bad.ok and bad.errors[0].code == "invalid_personal_id" and set(bad.errors[0].message) == {"fi", "sv", "en"}
        none = await call(nc, "query.referral.access_log.v1", {"case_id": str(uuid4()), "requested_by": "staff-registry-1"})
        assert not none.ok and none.errors[0].code == "not_found"
        both = await call(nc, "query.referral.access_log.v1", {"case_id": case_id, "personal_id": hetu, "requested_by": "x"})
        assert not both.ok

    with sqlite3.connect(settings.data_dir / "referral.db") as conn:
        rows = conn.execute("select * from audit_log").fetchall()
        assert rows and not any(hetu in str(r) for r in rows), "the audit log holds no henkilötunnus"
        # Append-only in the database itself.
        for stmt in ("update audit_log set actor = 'someone-else'", "delete from audit_log"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute(stmt)
        assert conn.execute("select count(*) from audit_log").fetchone()[0] == len(rows)


async def test_reads_and_disclosures_in_every_service_are_audited_and_gathered(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc)
    clock = FixedClock(datetime.now(UTC))
    body = submission()
    hetu = body["children"][0]["personal_id"]
    async with running(settings, clock=clock):
        await submit_referral(nc, body)
        (received,) = await wait_for(lambda: log.of("referral.received"))
        case_id = received["case_id"]
        # The family consents to the plan going to the school social worker only.
        consent = await call(
            nc,
            "cmd.referral.record_consent.v1",
            {
                "command_id": str(uuid4()),
                "case_id": case_id,
                "purpose": "share_plan",
                "recipient": "school-sw",
                "given_by": "guardian-1",
                "recorded_by": "staff-close",
            },
        )
        assert consent.ok, consent.errors
        meeting = await wait_for(_convene_until_open(nc, convene_cmd(case_id, clock.now() + timedelta(hours=1))))
        assert meeting.ok, meeting.errors
        clock.advance(hours=1, minutes=5)
        held = await call(
            nc, "cmd.meetings.record_held.v1", held_cmd(meeting.id, wellbeing=[{"area": "child_self_view", "score": 4}])
        )
        assert held.ok, held.errors
        parties = [
            {"party_id": "school-sw", "role": "school_social_worker"},
            {"party_id": "fam-counsel", "role": "family_counselling"},
        ]
        plan = await call(
            nc,
            "cmd.plans.agree.v1",
            {**plan_cmd(case_id, meeting.id, clock.now() + timedelta(days=14)), "other_parties": parties},
        )
        assert plan.ok, plan.errors
        await wait_for(lambda: any(e["recipient_id"] == "school-sw" for e in log.of("plan.shared")))
        await wait_for(
            lambda: any(
                e["template"] == "plan_agreed" and e["recipient_id"] == "guardian-1" for e in log.of("notification.sent")
            ),
            timeout=15,
        )

        # Staff reads in each service (granted) ...
        reads = {
            "query.referral.case.v1": {"case_id": case_id, "requested_by": "staff-sw-1", "purpose": "assessment decision"},
            "query.meetings.case.v1": {"case_id": case_id, "requested_by": "staff-close", "purpose": "next meeting"},
            "query.plans.plan.v1": {"plan_id": plan.id, "requested_by": "staff-close"},
            "query.plans.printable.v1": {"plan_id": plan.id, "requested_by": "staff-close", "purpose": "copy for the family"},
            "query.notifications.case.v1": {"case_id": case_id, "requested_by": "staff-support-3", "purpose": "delivery check"},
        }
        for subject, q in reads.items():
            assert (await call(nc, subject, q)).ok, subject

        async def wellbeing():  # type: ignore[no-untyped-def]
            r = await call(nc, "query.plans.effectiveness.v1", {"case_id": case_id, "requested_by": "staff-close"})
            return r.ok and r

        await wait_for(wellbeing)  # once plans has the meeting's wellbeing star
        # ... and refused ones: a plan version that does not exist, another family's unknown case.
        refused = await call(nc, "query.plans.plan.v1", {"plan_id": plan.id, "version": 9, "requested_by": "staff-nosy-7"})
        assert not refused.ok and refused.errors[0].code == "not_found"
        stranger = str(uuid4())
        for subject in ("query.meetings.case.v1", "query.plans.case.v1", "query.notifications.case.v1"):
            r = await call(nc, subject, {"case_id": stranger, "requested_by": "staff-nosy-7"})
            assert not r.ok and r.errors[0].code == "not_found"

        answer = await gather_access_log(nc, personal_id=hetu, requested_by="staff-registry-1")
        assert answer["complete"] and answer["cases"] == [case_id], answer["services"]
        AccessLogAnswer.model_validate({k: answer[k] for k in ("cases", "entries")})  # the shared contract shape
        seen = {(e["service"], e["actor"], e["action"], e["result"]) for e in answer["entries"]}
        assert {
            ("referral", "staff-sw-1", "read_case", "found"),
            ("meetings", "staff-close", "read_meetings", "found"),
            ("plans", "staff-close", "read_plan", "found"),
            ("plans", "staff-close", "print_plan", "found"),
            ("plans", "staff-close", "read_wellbeing", "found"),
            ("plans", "staff-nosy-7", "read_plan", "not_found"),  # a refused read
            ("plans", "school-sw", "share_plan", "disclosed"),  # disclosed with the family's consent
            ("plans", "fam-counsel", "share_plan", "withheld"),  # named in the plan, no consent: not given
            ("plans", "guardian-1", "share_plan", "disclosed"),
            ("notifications", "staff-support-3", "read_notifications", "found"),
            ("notifications", "guardian-1", "send_notification", "disclosed"),
        } <= seen
        assert {e["service"] for e in answer["entries"]} == {"referral", "meetings", "plans", "notifications"}
        assert all(e["case_id"] == case_id for e in answer["entries"]), "only this family's records"
        assert not any(e["granted"] for e in answer["entries"] if e["result"] in ("not_found", "withheld"))
        ats = [e["at"] for e in answer["entries"]]
        assert ats == sorted(ats, key=datetime.fromisoformat)
        printed = next(e for e in answer["entries"] if e["action"] == "print_plan")
        assert printed["purpose"] == "copy for the family" and printed["scope"] == f"plan:{plan.id}:v1"

        # Gathering is itself a read in every service: it shows in the next answer.
        again = await gather_access_log(nc, case_id=case_id, requested_by="staff-registry-2")
        assert {
            e["service"] for e in again["entries"] if e["actor"] == "staff-registry-1" and e["action"] == "read_access_log"
        } == {"referral", "meetings", "plans", "notifications"}
        # The stranger's case: each service answers for it with its refused reads.
        for svc in ("meetings", "plans", "notifications"):
            r = await call(nc, f"query.{svc}.access_log.v1", {"case_ids": [stranger], "requested_by": "staff-registry-1"})
            assert r.ok and [(e["actor"], e["result"], e["granted"]) for e in r.data["entries"]] == [
                ("staff-nosy-7", "not_found", False)
            ]
            AccessLogAnswer.model_validate(r.data)
        nobody = await gather_access_log(
            nc, personal_id=submission()["children"][0]["personal_id"], requested_by="staff-registry-1"
        )
        assert not nobody["ok"] and nobody["errors"] == ["not_found"]

        # The operator's command: the henkilötunnus from stdin (not the shell history), never echoed.
        cli = await asyncio.to_thread(
            CliRunner().invoke,
            ops_app,
            ["access-log", "-", "--requested-by", "staff-registry-4", "--json", "--url", settings.nats_url],
            input=hetu + "\n",
        )
        assert cli.exit_code == 0, cli.output
        assert hetu not in cli.output
        printed = json.loads(cli.output)
        assert printed["complete"] and ("staff-registry-2", "read_access_log") in {
            (e["actor"], e["action"]) for e in printed["entries"]
        }

    for svc in ("meetings", "plans", "notifications"):
        with sqlite3.connect(settings.data_dir / f"{svc}.db") as conn:
            rows = conn.execute("select * from audit_log").fetchall()
            assert rows and not any(hetu in str(r) for r in rows), "no henkilötunnus in the audit log"
            for stmt in (
                "update audit_log set actor = 'someone-else'",
                "delete from audit_log",
                "delete from audit_log where id = 1",
            ):
                with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                    conn.execute(stmt)
            assert conn.execute("select count(*) from audit_log").fetchone()[0] == len(rows)


def test_no_code_path_updates_or_deletes_the_audit_log() -> None:
    sources = [p for d in ("services", "shared", "infra") for p in (ROOT / d).rglob("*.py")]
    offending = [
        str(p)
        for p in sources
        if re.search(r"(update|delete)\(\s*audit_log|(UPDATE|DELETE FROM)\s+audit_log", p.read_text(), re.IGNORECASE)
    ]
    assert offending == []
