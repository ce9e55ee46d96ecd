"""The statutory process on a real nats-server and SQLite: the clocks start at the front door's
receipt, the 7-working-day decision and the urgency assessment are recorded actions, an unassessed
notification pages the on-duty social worker and then the team lead, guardians are told in their
language, the referrer always hears back, and cases opened under the old rule are recomputed once.

Staff act with access tokens from a real identity provider (JWKS over HTTP): the decision and the
urgency assessment are recorded by a social worker of the case's team, who is the verified caller."""

from __future__ import annotations

import json
import logging
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from nats.js.errors import NotFoundError

from services.referral.config import ReferralConfig
from services.referral.deadlines import completion_due, decision_due
from shared.calendar import helsinki_date
from shared.case_access import CaseAccess
from shared.client import call, submit_referral
from shared.service import Service
from shared.settings import Settings
from tests.conftest import wait_for
from tests.support.data import submission
from tests.support.identity import TestIdentity
from tests.support.system import EventLog, running

pytestmark = [pytest.mark.integration]

CPN = {"channel": "child_protection_notification", "referrer": {"organisation_type": "police", "email": "poliisi@example.com"}}
CHILD_WELFARE = ReferralConfig().router().route("Testilä", None, "child_protection_notification")  # child-welfare-intake
FAMILY_CENTRE = ReferralConfig().router().route("Testilä", None, "assessment_request")


@pytest.fixture
def settings(settings: Settings, identity: TestIdentity) -> Settings:
    """Services that verify tokens from the session's identity provider."""
    return identity.settings(settings)


@pytest.fixture
def sw(identity: TestIdentity) -> str:
    """sw-fi, a social worker of the child-welfare intake team (where every notification goes)."""
    return identity.social_worker("sw-fi", CHILD_WELFARE, "Testilä")


async def team_known(svc: Service, case_id: str) -> None:
    """The case's team is in the service's case-access read model (it decides access from it)."""

    async def known() -> bool:
        async with svc.uow() as uow:
            (rel,) = await CaseAccess(uow).relations([case_id])
        return bool(rel.teams)

    await wait_for(known)


STAFF = {
    "staff": {
        "duty-sv": {"role": "social_worker", "language": "sv", "email": "jour@testila.example", "phone": "+358401110021"},
        "lead-en": {"role": "team_lead", "language": "en", "email": "lead@testila.example", "phone": "+358401110022"},
        "sw-fi": {"role": "social_worker", "language": "fi", "email": "sosiaalityo@testila.example"},
    },
    "teams": {"child-welfare-intake": {"lead": "lead-en", "social_workers": ["sw-fi"]}},
    "on_duty": {"*": {"office_hours": "duty-sv", "after_hours": "duty-sv"}},
}


@pytest.fixture
def staff_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "staff.json"
    path.write_text(json.dumps(STAFF), encoding="utf-8")
    monkeypatch.setenv("KOOLLE_NOTIFICATIONS_STAFF_FILE", str(path))
    return path


def delivered(settings: Any) -> list[dict[str, Any]]:
    path = settings.data_dir / "notifications" / "delivered.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def to(settings: Any, recipient: str) -> list[dict[str, Any]]:
    return [m for m in delivered(settings) if m["recipient_id"] == recipient]


def pages(settings: Any, recipient: str) -> list[dict[str, Any]]:
    return [m for m in to(settings, recipient) if m["subject"].startswith(("URGENCY", "BRÅDSKAN", "KIIREELLISYYS"))]


async def timer_exists(nc: Any, subject: str) -> bool:
    try:
        msg = await nc.jetstream().get_last_msg("TIMERS_REFERRAL", subject)
    except NotFoundError:
        return False
    return "Nats-Schedule" in (msg.headers or {})


async def _not(aw: Any) -> bool:
    return not await aw


def cmd(**kw: Any) -> dict[str, Any]:
    return {"command_id": str(uuid4()), **kw}


async def test_the_clocks_start_at_the_front_doors_receipt_not_when_the_service_handled_it(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("referral.>",))
    receipt = datetime.now(UTC) - timedelta(days=2, hours=3)  # the front door was offline for two days
    async with running(settings, "referral"):
        await submit_referral(nc, submission(submitted_at=receipt.isoformat(), **CPN))
        (received,) = await wait_for(lambda: log.of("referral.received"))
    assert datetime.fromisoformat(received["received_at"]) == receipt
    assert datetime.fromisoformat(received["handled_at"]) > receipt + timedelta(days=2)
    assert received["decision_due_by"] == decision_due(receipt).isoformat()
    assert datetime.fromisoformat(received["urgency_due_at"]) == receipt + timedelta(hours=2)


async def test_recording_the_decision_stops_its_clock_is_audited_and_starts_the_completion_clock(  # type: ignore[no-untyped-def]
    settings, nc, clean_streams, identity, sw
):
    log = await EventLog().attach(nc, ("referral.>", "assessment.>"))
    receipt = datetime.now(UTC) - timedelta(hours=5)
    async with running(settings, "referral") as svcs:
        await submit_referral(nc, submission(submitted_at=receipt.isoformat(), **CPN))
        await submit_referral(nc, submission(submitted_at=receipt.isoformat(), **CPN))
        first, second = await wait_for(lambda: log.of("referral.received") if len(log.of("referral.received")) == 2 else None)
        case_id = first["case_id"]
        await team_known(svcs["referral"], case_id)
        await team_known(svcs["referral"], second["case_id"])
        decision_timers = [f"timers.referral.assessment_decision.{case_id}.{w}" for w in ("approaching", "breached")]
        for subject in decision_timers:
            await wait_for(lambda s=subject: timer_exists(nc, s))

        body = cmd(case_id=case_id, outcome="start_assessment", reason="huoli lapsen turvallisuudesta")
        # Only a social worker of the case's team decides: not a worker of the team without the
        # role, not a social worker of another team, not the team lead.
        for other in (
            identity.worker("w-fi", CHILD_WELFARE),
            identity.social_worker("sw-else", "other-team"),
            identity.team_lead("lead-en", CHILD_WELFARE),
        ):
            refused = await call(nc, "cmd.referral.record_decision.v1", body, token=other)
            assert not refused.ok and refused.errors[0].code == "forbidden"
        reply = await call(nc, "cmd.referral.record_decision.v1", body, token=sw)
        assert reply.ok, reply.errors
        complete_by = completion_due(receipt).isoformat()
        assert reply.data == {"within_time": True, "complete_by": complete_by}
        assert await call(nc, "cmd.referral.record_decision.v1", body, token=sw) == reply  # a retry gets the same reply
        (decided,) = await wait_for(lambda: log.of("referral.decision_recorded"))
        assert (decided["case_id"], decided["outcome"], decided["social_worker_id"]) == (case_id, "start_assessment", "sw-fi")
        assert decided["decided_on"] == helsinki_date(datetime.now(UTC)).isoformat()
        assert decided["due_by"] == decision_due(receipt).isoformat() and decided["within_time"] is True
        assert decided["complete_by"] == complete_by and decided["case_closed"] is False
        assert "reason" not in decided  # the grounds stay in the case
        for subject in decision_timers:
            await wait_for(lambda s=subject: _not(timer_exists(nc, s)))
        await wait_for(lambda: timer_exists(nc, f"timers.referral.assessment_completion.{case_id}.breached"))

        again = await call(nc, "cmd.referral.record_decision.v1", cmd(case_id=case_id, outcome="not_needed"), token=sw)
        assert not again.ok and (again.errors[0].code, set(again.errors[0].message)) == (
            "decision_already_recorded",
            {"fi", "sv", "en"},
        )
        case = await call(nc, "query.referral.case.v2", {"case_id": case_id, "purpose": "case_work"}, token=sw)
        assert case.data is not None, case.errors
        assert case.data["decision"]["outcome"] == "start_assessment" and case.data["decision"]["by"] == "sw-fi"
        # The family's contacts by id, as a consent command names them (given_by).
        assert {"contact_id": "guardian-1", "role": "guardian", "language": "fi"} in case.data["referrals"][0]["contacts"]
        assert case.data["deadlines"] == [{"deadline": "assessment_completion", "due_by": complete_by}]
        (entry,) = [h for h in case.data["history"] if h["what"] == "decision_recorded"]
        assert (entry["by"], entry["reason"]) == ("sw-fi", "huoli lapsen turvallisuudesta")
        # Starting the assessment is still its own step, by a social worker of the case (a worker of
        # the team without the role may not); the last day stays 3 months of receipt.
        by_worker = await call(
            nc, "cmd.referral.start_assessment.v2", cmd(case_id=case_id), token=identity.worker("w-fi", CHILD_WELFARE)
        )
        assert not by_worker.ok and by_worker.data == {"reason": "not_social_worker"}
        started = await call(nc, "cmd.referral.start_assessment.v2", cmd(case_id=case_id), token=sw)
        assert started.ok and started.data == {"complete_by": complete_by}
        (started_ev,) = await wait_for(lambda: log.of("assessment.started"))
        assert started_ev["social_worker_id"] == "sw-fi", "who started it is the token's person, never a field"

        # The other case: evidently unnecessary, the case closes.
        other = second["case_id"]
        future = (helsinki_date(datetime.now(UTC)) + timedelta(days=1)).isoformat()
        refused = await call(
            nc,
            "cmd.referral.record_decision.v1",
            cmd(case_id=other, outcome="not_needed", decided_on=future),
            token=sw,
        )
        assert not refused.ok and (refused.errors[0].field, refused.errors[0].code) == ("decided_on", "decided_in_future")
        closed = await call(nc, "cmd.referral.record_decision.v1", cmd(case_id=other, outcome="not_needed"), token=sw)
        assert closed.ok and closed.data == {"within_time": True, "complete_by": None}
        await wait_for(lambda: len(log.of("referral.decision_recorded")) == 2)
        assert log.of("referral.decision_recorded")[1]["case_closed"] is True
        lead = identity.team_lead("lead-en", CHILD_WELFARE)
        team = await call(nc, "query.referral.team_cases.v2", {"team_id": CHILD_WELFARE, "purpose": "supervision"}, token=lead)
        assert team.data is not None and [c["case_id"] for c in team.data["cases"]] == [case_id]
    assert log.of("referral.deadline_breached") == []


async def test_an_unassessed_notification_pages_the_on_duty_social_worker_then_the_team_lead(
    settings, nc, clean_streams, staff_file
):  # type: ignore[no-untyped-def]
    """Received three hours ago (an offline front door): both urgency timers are past, so JetStream
    fires them at once. The pages go out in each recipient's language (sv, en)."""
    log = await EventLog().attach(nc, ("referral.>", "notification.>"))
    receipt = datetime.now(UTC) - timedelta(hours=3)
    async with running(settings, "referral", "notifications"):
        await submit_referral(nc, submission(submitted_at=receipt.isoformat(), municipality="Sipoo", **CPN))
        (received,) = await wait_for(lambda: log.of("referral.received"))
        overdue = await wait_for(
            lambda: (
                log.of("referral.urgency_assessment_overdue") if len(log.of("referral.urgency_assessment_overdue")) == 2 else None
            )
        )
        assert [e["escalation"] for e in overdue] == ["on_duty", "team_lead"]
        assert {e["referral_id"] for e in overdue} == {received["referral_id"]}
        assert datetime.fromisoformat(overdue[0]["due_at"]) == receipt + timedelta(hours=2)
        assert overdue[1]["team_id"] == "child-welfare-intake"
        (duty,) = await wait_for(lambda: pages(settings, "duty-sv"))
        (lead,) = await wait_for(lambda: pages(settings, "lead-en"))
    assert (duty["language"], duty["subject"]) == ("sv", "BRÅDSKAN INTE BEDÖMD")
    assert "Sipoo" in duty["body"] and received["case_id"][:8] in duty["body"]
    assert (lead["language"], lead["subject"]) == ("en", "URGENCY STILL NOT ASSESSED")
    assert "on-duty social worker has not assessed" in lead["body"]
    assert pages(settings, "sw-fi") == []  # the team's social workers got the assignment only


async def test_assessing_the_urgency_stops_the_pages_and_tells_the_guardians_in_their_language(
    settings, nc, clean_streams, staff_file, identity, sw
):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("referral.>", "notification.>"))
    guardians = {
        lang: [{"name": "Testi Huoltaja", "email": f"huoltaja-{lang}@example.com", "language": lang}]
        for lang in ("fi", "sv", "en")
    }
    async with running(settings, "referral", "notifications") as svcs:
        for lang in ("fi", "sv", "en"):
            await submit_referral(nc, submission(guardians=guardians[lang], **CPN))
        received = await wait_for(lambda: log.of("referral.received") if len(log.of("referral.received")) == 3 else None)
        for ev in received:
            await wait_for(lambda r=ev["referral_id"]: timer_exists(nc, f"timers.referral.urgency_assessment.{r}.on_duty"))
            await team_known(svcs["referral"], ev["case_id"])

        for ev in received:
            body = cmd(case_id=ev["case_id"], referral_id=ev["referral_id"], urgent_protection_needed=False)
            refused = await call(nc, "cmd.referral.assess_urgency.v1", body, token=identity.worker("w-fi", CHILD_WELFARE))
            assert not refused.ok and (refused.errors[0].code, refused.data) == ("forbidden", {"reason": "not_social_worker"})
            reply = await call(nc, "cmd.referral.assess_urgency.v1", body, token=sw)
            assert reply.ok, reply.errors
            assert reply.data == {"within_time": True, "guardians_told": True}
        assessed = await wait_for(
            lambda: log.of("referral.urgency_assessed") if len(log.of("referral.urgency_assessed")) == 3 else None
        )
        assert [(a["assessed_by"], a["urgent_protection_needed"], a["within_time"]) for a in assessed] == [
            ("sw-fi", False, True)
        ] * 3
        assert all(a["guardian_contact_ids"] == ["guardian-1"] for a in assessed)
        for ev in received:
            for which in ("on_duty", "team_lead"):
                await wait_for(
                    lambda s=f"timers.referral.urgency_assessment.{ev['referral_id']}.{which}": _not(timer_exists(nc, s))
                )
        told = await wait_for(lambda: told if len(told := to(settings, "guardian-1")) == 3 else None)
        subjects = {m["language"]: m["subject"] for m in told}
        assert subjects == {
            "fi": "Lastensuojeluilmoitus on vastaanotettu",
            "sv": "En barnskyddsanmälan har tagits emot",
            "en": "A child welfare notification was received",
        }
        case = await call(nc, "query.referral.case.v2", {"case_id": received[0]["case_id"], "purpose": "case_work"}, token=sw)
        assert case.data is not None and case.data["referrals"][0]["urgency"]["by"] == "sw-fi"
        assert [h["what"] for h in case.data["history"]][-1] == "urgency_assessed"
        twice = await call(
            nc,
            "cmd.referral.assess_urgency.v1",
            cmd(case_id=received[0]["case_id"], referral_id=received[0]["referral_id"], urgent_protection_needed=True),
            token=sw,
        )
        assert not twice.ok and twice.errors[0].code == "urgency_already_assessed"
    assert log.of("referral.urgency_assessment_overdue") == []


async def test_guardians_are_not_told_when_the_social_worker_records_that_it_would_endanger_the_child(
    settings, nc, clean_streams, staff_file, sw
):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("referral.>", "notification.>"))
    async with running(settings, "referral", "notifications") as svcs:
        await submit_referral(nc, submission(**CPN))
        (received,) = await wait_for(lambda: log.of("referral.received"))
        await team_known(svcs["referral"], received["case_id"])
        base = {"case_id": received["case_id"], "referral_id": received["referral_id"]}
        no_reason = await call(
            nc, "cmd.referral.assess_urgency.v1", cmd(**base, urgent_protection_needed=True, guardians_endangered=True), token=sw
        )
        assert not no_reason.ok and (no_reason.errors[0].field, no_reason.errors[0].code) == (
            "endangerment_reason",
            "reason_required",
        )
        reply = await call(
            nc,
            "cmd.referral.assess_urgency.v1",
            cmd(**base, urgent_protection_needed=True, guardians_endangered=True, endangerment_reason="väkivallan uhka kotona"),
            token=sw,
        )
        assert reply.ok and reply.data == {"within_time": True, "guardians_told": False}
        (assessed,) = await wait_for(lambda: log.of("referral.urgency_assessed"))
        assert assessed["guardians_may_be_told"] is False and assessed["guardian_contact_ids"] == []
        assert "väkivallan" not in json.dumps(assessed)
        # The acknowledgement to the referrer is out; nothing goes to the guardians.
        await wait_for(lambda: to(settings, "referrer"))
    assert to(settings, "guardian-1") == []


async def test_the_referrer_always_hears_back_and_the_outcome_only_with_consent(  # type: ignore[no-untyped-def]
    settings, nc, clean_streams, staff_file, identity
):
    log = await EventLog().attach(nc, ("referral.>", "assessment.>", "notification.>"))
    sw = identity.social_worker("sw-fi", FAMILY_CENTRE, "Testilä")
    async with running(settings, "referral", "notifications") as svcs:
        await submit_referral(nc, submission(channel="assessment_request"))  # a professional's request, no consent to tell
        (received,) = await wait_for(lambda: log.of("referral.received"))
        case_id = received["case_id"]
        await team_known(svcs["referral"], case_id)
        decided = await call(nc, "cmd.referral.record_decision.v1", cmd(case_id=case_id, outcome="start_assessment"), token=sw)
        assert decided.ok, decided.errors
        started = await call(nc, "cmd.referral.start_assessment.v2", cmd(case_id=case_id), token=sw)
        assert started.ok, started.errors
        done = await call(
            nc,
            "cmd.referral.complete_assessment.v2",
            cmd(case_id=case_id, outcome="child_welfare_client"),
            token=sw,
        )
        assert done.ok and done.data == {"referrer_may_be_told": False}
        msgs = await wait_for(lambda: to(settings, "referrer") if len(to(settings, "referrer")) == 2 else None)
    ack, heard_back = msgs
    assert heard_back["subject"] == "Palvelutarpeen arviointi on valmistunut"
    assert "lastensuojelun" not in heard_back["body"]  # no outcome without consent


async def test_open_cases_stored_under_the_old_rule_are_recomputed_once_at_start(settings, nc, clean_streams, caplog):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("referral.>",))
    receipt = datetime.now(UTC) - timedelta(days=3)
    async with running(settings, "referral"):
        await submit_referral(nc, submission(submitted_at=receipt.isoformat(), **CPN))
        (received,) = await wait_for(lambda: log.of("referral.received"))
    case_id = received["case_id"]
    # Make the stored case look like the old code stored it: received when handled (now), the
    # decision due 7 working days from today, and the migration not yet run.
    handled = datetime.now(UTC)
    old_due = decision_due(handled)
    with sqlite3.connect(settings.data_dir / "referral.db") as conn:
        state = json.loads(conn.execute("select state from referrals").fetchone()[0])
        del state["handled_at"]
        conn.execute(
            "update referrals set received_at = ?, state = ?", (handled.strftime("%Y-%m-%d %H:%M:%S.%f"), json.dumps(state))
        )
        case_state = json.loads(conn.execute("select state from cases").fetchone()[0])
        case_state["decision_due_by"] = old_due.isoformat()
        del case_state["received_at"]
        conn.execute("update cases set state = ?", (json.dumps(case_state),))
        conn.execute("delete from data_migrations")
    caplog.set_level(logging.INFO, logger="koolle.referral")
    for _ in range(2):  # the second start changes nothing
        async with running(settings, "referral"):
            pass
    new_due = decision_due(receipt)
    assert new_due != old_due
    with sqlite3.connect(settings.data_dir / "referral.db") as conn:
        case_state = json.loads(conn.execute("select state from cases").fetchone()[0])
        (changed,) = conn.execute("select changed from data_migrations").fetchone()
    assert case_state["decision_due_by"] == new_due.isoformat() and changed == 1
    (note,) = [h for h in case_state["history"] if h["what"] == "deadlines_recomputed"]
    assert note["changes"] == {"assessment_decision": [old_due.isoformat(), new_due.isoformat()]}
    lines = [r.getMessage() for r in caplog.records if "recomputed" in r.getMessage()]
    assert lines == [f"case {case_id}: statutory deadlines recomputed from receipt (assessment_decision)"]
    # The timer now carries the recomputed last day.
    msg = await nc.jetstream().get_last_msg("TIMERS_REFERRAL", f"timers.referral.assessment_decision.{case_id}.breached")
    assert json.loads(msg.data)["due_by"] == new_due.isoformat()
    assert date.fromisoformat(json.loads(msg.data)["due_by"]) < old_due
