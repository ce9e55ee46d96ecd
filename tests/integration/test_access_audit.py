"""Access audit (Client Data Act 703/2023 s. 11): every read or disclosure of a family's data leaves
an append-only record (who, whose data, what, purpose, when, result) in the service that holds it,
with the verified caller from the access token, refusals included. Each service answers
query.<service>.access_log.v2, and one answer gathers "who has seen my data" for one case from all
four, for a worker of the case or for the child's guardian signed in with strong identification."""

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
from tests.support.identity import GUARDIAN_HETU, OTHER_GUARDIAN_HETU
from tests.support.staff import TEAM, relation_known
from tests.support.system import EventLog, running

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]


def with_guardian(hetu: str = GUARDIAN_HETU) -> dict:  # type: ignore[type-arg]
    """A submission whose guardian is named by henkilötunnus: they may sign in and ask themselves."""
    body = submission()
    body["guardians"][0]["personal_id"] = hetu
    return body


async def test_who_has_seen_my_data(staff_settings, nc, clean_streams, identity):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("referral.>",))
    sw1, sw9 = identity.social_worker("staff-sw-1", TEAM), identity.social_worker("staff-sw-9", TEAM)
    registry = identity.worker("staff-registry-1", TEAM)  # answers the family's request to know
    async with running(staff_settings, "referral") as svcs:
        mine, other = with_guardian(), with_guardian(OTHER_GUARDIAN_HETU)
        hetu = mine["children"][0]["personal_id"]
        await submit_referral(nc, mine)
        await submit_referral(nc, other)
        received = await wait_for(lambda: len(log.of("referral.received")) == 2 and log.of("referral.received"))
        case_id = next(e["case_id"] for e in received if e["submission_id"] == mine["submission_id"])
        other_case = next(e["case_id"] for e in received if e["submission_id"] == other["submission_id"])
        (assigned, *_) = await wait_for(lambda: [e for e in log.of("referral.assigned") if e["case_id"] == case_id])
        for case in (case_id, other_case):
            await relation_known([svcs["referral"]], case, "teams")
            await relation_known([svcs["referral"]], case, "guardians")

        read = await call(nc, "query.referral.case.v2", {"case_id": case_id, "purpose": "case_work"}, token=sw1)
        assert read.ok
        await call(nc, "query.referral.case.v2", {"case_id": other_case, "purpose": "case_work"}, token=sw9)
        listed = await call(
            nc,
            "query.referral.team_cases.v2",
            {"team_id": assigned["team_id"], "purpose": "supervision"},
            token=identity.team_lead("staff-lead-2", TEAM),
        )
        assert listed.ok

        first = await call(nc, "query.referral.access_log.v2", {"case_id": case_id, "purpose": "access_request"}, token=registry)
        assert first.ok, first.errors
        assert first.data["cases"] == [case_id]
        seen = [(e["actor"], e["action"], e["purpose"], e["result"]) for e in first.data["entries"]]
        assert ("staff-sw-1", "read_case", "case_work", "found") in seen  # the reader as the token names them
        assert ("staff-lead-2", "list_team_cases", "supervision", "found") in seen
        assert all(e["case_id"] == case_id and e["at"] for e in first.data["entries"])
        assert "staff-sw-9" not in {e["actor"] for e in first.data["entries"]}, "another family's reader is not shown"

        # Reading the log is itself a disclosure: it is in the next answer.
        again = await call(nc, "query.referral.access_log.v2", {"case_id": case_id, "purpose": "access_request"}, token=registry)
        assert again.ok and ("staff-registry-1", "read_access_log") in {(e["actor"], e["action"]) for e in again.data["entries"]}

        # The guardian asks themself, signed in with strong identification: their child's log, and
        # they are in it by a pseudonym, never by henkilötunnus.
        own = await call(
            nc, "query.referral.access_log.v2", {"case_id": case_id, "purpose": "own_data"}, token=identity.guardian()
        )
        assert own.ok, own.errors
        assert ("staff-registry-1", "read_access_log") in {(e["actor"], e["action"]) for e in own.data["entries"]}
        other_guardian = await call(
            nc,
            "query.referral.access_log.v2",
            {"case_id": case_id, "purpose": "own_data"},
            token=identity.guardian(OTHER_GUARDIAN_HETU),
        )
        assert not other_guardian.ok and other_guardian.errors[0].code == "forbidden"

        # Nobody looks a child up by henkilötunnus any more: v2 has no such field, v1 is retired.
        lookup = await call(
            nc,
            "query.referral.access_log.v2",
            {"case_id": case_id, "personal_id": hetu, "purpose": "access_request"},
            token=registry,
        )
        assert not lookup.ok and [(e.field, e.code) for e in lookup.errors] == [("personal_id", "extra_forbidden")]
        retired = await call(nc, "query.referral.access_log.v1", {"personal_id": hetu, "requested_by": "x"}, token=registry)
        assert not retired.ok and retired.errors[0].code == "version_retired"
        none = await call(
            nc, "query.referral.access_log.v2", {"case_id": str(uuid4()), "purpose": "access_request"}, token=registry
        )
        assert not none.ok and none.errors[0].code == "forbidden"  # a case of no team of theirs

    with sqlite3.connect(staff_settings.data_dir / "referral.db") as conn:
        rows = conn.execute("select * from audit_log").fetchall()
        assert rows and not any(p in str(r) for r in rows for p in (hetu, GUARDIAN_HETU, OTHER_GUARDIAN_HETU)), (
            "the audit log holds no henkilötunnus"
        )
        # Append-only in the database itself.
        for stmt in ("update audit_log set actor = 'someone-else'", "delete from audit_log"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute(stmt)
        assert conn.execute("select count(*) from audit_log").fetchone()[0] == len(rows)


async def test_reads_and_disclosures_in_every_service_are_audited_and_gathered(
    staff_settings, nc, clean_streams, identity, worker_token
):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc)
    clock = FixedClock(datetime.now(UTC))
    body = with_guardian()
    hetu = body["children"][0]["personal_id"]
    w = worker_token  # the close worker, on the case's team
    registry = identity.worker("staff-registry-1", TEAM)
    nosy = identity.worker("staff-nosy-7", "another-team")
    async with running(staff_settings, clock=clock) as svcs:
        await submit_referral(nc, body)
        (received,) = await wait_for(lambda: log.of("referral.received"))
        case_id = received["case_id"]
        await relation_known(svcs.values(), case_id, "teams")
        await relation_known(svcs.values(), case_id, "guardians")
        # The family consents to the plan going to the school social worker only.
        consent = await call(
            nc,
            "cmd.referral.record_consent.v2",
            {
                "command_id": str(uuid4()),
                "case_id": case_id,
                "purpose": "share_plan",
                "recipient": "school-sw",
                "given_by": "guardian-1",
            },
            token=w,
        )
        assert consent.ok, consent.errors
        meeting = await wait_for(_convene_until_open(nc, convene_cmd(case_id, clock.now() + timedelta(hours=1)), w))
        assert meeting.ok, meeting.errors
        clock.advance(hours=1, minutes=5)
        held = await call(
            nc,
            "cmd.meetings.record_held.v2",
            held_cmd(case_id, meeting.id, wellbeing=[{"area": "child_self_view", "score": 4}]),
            token=w,
        )
        assert held.ok, held.errors
        parties = [
            {"party_id": "school-sw", "role": "school_social_worker"},
            {"party_id": "fam-counsel", "role": "family_counselling"},
        ]
        plan = await call(
            nc,
            "cmd.plans.agree.v2",
            {**plan_cmd(case_id, meeting.id, clock.now() + timedelta(days=14)), "other_parties": parties},
            token=w,
        )
        assert plan.ok, plan.errors
        await wait_for(lambda: any(e["recipient_id"] == "school-sw" for e in log.of("plan.shared")))
        await wait_for(
            lambda: any(
                e["template"] == "plan_agreed" and e["recipient_id"] == "guardian-1" for e in log.of("notification.sent")
            ),
            timeout=15,
        )

        # Staff reads in each service (granted), each by the worker whose token it carries ...
        reads = {
            "query.referral.case.v2": ({"case_id": case_id, "purpose": "case_work"}, identity.social_worker("staff-sw-1", TEAM)),
            "query.meetings.case.v2": ({"case_id": case_id, "purpose": "meeting_preparation"}, w),
            "query.plans.plan.v2": ({"case_id": case_id, "plan_id": plan.id, "purpose": "plan_follow_up"}, w),
            "query.plans.printable.v2": ({"case_id": case_id, "plan_id": plan.id, "purpose": "case_work"}, w),
            "query.notifications.case.v2": (
                {"case_id": case_id, "purpose": "delivery_follow_up"},
                identity.worker("staff-support-3", TEAM),
            ),
        }
        for subject, (q, token) in reads.items():
            assert (await call(nc, subject, q, token=token)).ok, subject
        # The guardian reads the plan without anyone's e-mail or phone but the responsible worker's.
        staff_view = await call(nc, "query.plans.plan.v2", reads["query.plans.plan.v2"][0], token=w)
        assert staff_view.data is not None and staff_view.data["plan"]["family_contacts"][0]["email"] == "g1@example.com"
        mine = {"case_id": case_id, "plan_id": plan.id, "purpose": "own_data"}
        guardian_view = await call(nc, "query.plans.plan.v2", mine, token=identity.guardian())
        assert guardian_view.ok and guardian_view.data is not None, guardian_view.errors
        seen = guardian_view.data["plan"]
        assert [set(c) & {"email", "phone"} for c in seen["family_contacts"]] == [set()]
        assert [party["contact"] for party in seen["other_parties"]] == [None, None]
        assert seen["responsible_workers"][0]["contact"]["email"] == "close@example.com"
        printable = await call(nc, "query.plans.printable.v2", mine, token=identity.guardian())
        assert printable.ok and printable.data is not None and "g1@example.com" not in printable.data["html"]

        async def wellbeing():  # type: ignore[no-untyped-def]
            r = await call(nc, "query.plans.effectiveness.v2", {"case_id": case_id, "purpose": "plan_follow_up"}, token=w)
            return r.ok and r

        await wait_for(wellbeing)  # once plans has the meeting's wellbeing star
        # ... and refused ones: a plan version that does not exist; a worker of another team, refused by
        # the policy; the same worker on another family's case.
        plan_read = {"case_id": case_id, "plan_id": plan.id, "version": 9, "purpose": "case_work"}
        missing = await call(nc, "query.plans.plan.v2", plan_read, token=w)
        assert not missing.ok and missing.errors[0].code == "not_found"
        refused = await call(nc, "query.plans.plan.v2", plan_read, token=nosy)
        assert not refused.ok and refused.errors[0].code == "forbidden"
        stranger = str(uuid4())
        for subject in ("query.meetings.case.v2", "query.plans.case.v2", "query.notifications.case.v2"):
            r = await call(nc, subject, {"case_id": stranger, "purpose": "case_work"}, token=nosy)
            assert not r.ok and r.errors[0].code == "forbidden"

        answer = await gather_access_log(nc, token=registry, case_id=case_id)
        assert answer["complete"] and answer["cases"] == [case_id], answer["services"]
        AccessLogAnswer.model_validate({k: answer[k] for k in ("cases", "entries")})  # the shared contract shape
        seen = {(e["service"], e["actor"], e["action"], e["result"]) for e in answer["entries"]}
        assert {
            ("referral", "staff-sw-1", "read_case", "found"),
            ("meetings", "staff-close", "read_meetings", "found"),
            ("plans", "staff-close", "read_plan", "found"),
            ("plans", "staff-close", "print_plan", "found"),
            ("plans", "staff-close", "read_wellbeing", "found"),
            ("plans", "staff-close", "read_plan", "not_found"),  # a read of a version that does not exist
            ("plans", "staff-nosy-7", "query.plans.plan.v2", "refused"),  # refused by the policy, the actor verified
            ("plans", "school-sw", "share_plan", "disclosed"),  # disclosed with the family's consent
            ("plans", "fam-counsel", "share_plan", "withheld"),  # named in the plan, no consent: not given
            ("plans", "guardian-1", "share_plan", "disclosed"),
            ("notifications", "staff-support-3", "read_notifications", "found"),
            ("notifications", "guardian-1", "send_notification", "disclosed"),
        } <= seen
        assert {e["service"] for e in answer["entries"]} == {"referral", "meetings", "plans", "notifications"}
        assert all(e["case_id"] == case_id for e in answer["entries"]), "only this family's records"
        assert not any(e["granted"] for e in answer["entries"] if e["result"] in ("not_found", "withheld", "refused"))
        ats = [e["at"] for e in answer["entries"]]
        assert ats == sorted(ats, key=datetime.fromisoformat)
        printed = next(e for e in answer["entries"] if e["action"] == "print_plan")
        assert printed["purpose"] == "case_work" and printed["scope"] == f"plan:{plan.id}:v1"
        nosy_read = next(e for e in answer["entries"] if e["actor"] == "staff-nosy-7")
        assert nosy_read["purpose"] == "refused:no_relation_to_case"

        # Gathering is itself a read in every service: it shows in the next answer.
        again = await gather_access_log(nc, token=identity.worker("staff-registry-2", TEAM), case_id=case_id)
        assert {
            e["service"] for e in again["entries"] if e["actor"] == "staff-registry-1" and e["action"] == "read_access_log"
        } == {"referral", "meetings", "plans", "notifications"}
        # The guardian gathers their own child's log from all four, by themself.
        own = await gather_access_log(nc, token=identity.guardian(), case_id=case_id, purpose="own_data")
        assert own["complete"] and ("staff-registry-2", "read_access_log") in {(e["actor"], e["action"]) for e in own["entries"]}
        # The stranger's case: no worker of this team reaches its log; the refused reads are on record.
        for svc in ("meetings", "plans", "notifications"):
            r = await call(
                nc, f"query.{svc}.access_log.v2", {"case_ids": [stranger], "purpose": "access_request"}, token=registry
            )
            assert not r.ok and r.errors[0].code == "forbidden"
        nobody = await gather_access_log(nc, token=registry, case_id=stranger)
        assert not nobody["ok"] and nobody["errors"] == ["forbidden"]
        unsigned = await gather_access_log(nc, token=None, case_id=case_id)
        assert not unsigned["ok"] and unsigned["errors"] == ["unauthenticated"]

        # The operator's command: the caller's token from the environment, the case id from stdin.
        cli = await asyncio.to_thread(
            CliRunner().invoke,
            ops_app,
            ["access-log", "-", "--json", "--url", staff_settings.nats_url],
            input=case_id + "\n",
            env={"KOOLLE_TOKEN": identity.worker("staff-registry-4", TEAM)},
        )
        assert cli.exit_code == 0, cli.output
        assert hetu not in cli.output
        printed = json.loads(cli.output)
        assert printed["complete"] and ("staff-registry-2", "read_access_log") in {
            (e["actor"], e["action"]) for e in printed["entries"]
        }

    for svc in ("meetings", "plans", "notifications"):
        with sqlite3.connect(staff_settings.data_dir / f"{svc}.db") as conn:
            rows = conn.execute("select * from audit_log").fetchall()
            assert rows and not any(p in str(r) for r in rows for p in (hetu, GUARDIAN_HETU)), "no henkilötunnus in the audit log"
            on_stranger = conn.execute("select actor, action, result from audit_log where case_id = ?", (stranger,)).fetchall()
            assert sorted(on_stranger) == [
                ("staff-nosy-7", f"query.{svc}.case.v2", "refused"),
                ("staff-registry-1", f"query.{svc}.access_log.v2", "refused"),
            ]
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
