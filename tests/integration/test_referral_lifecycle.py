"""Referral intake on a real nats-server: rejection and resend, dedup beyond the window, linking,
consent ledger, statutory deadline timers firing and being cancelled, routing and audited queries.
Staff call with tokens: workers and leads of the team the routing assigned the case to."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from nats.js.errors import NotFoundError

from shared.calendar import helsinki_date
from shared.client import call, submit_referral
from shared.clock import FixedClock
from tests.conftest import wait_for
from tests.support.data import submission
from tests.support.staff import CHILD_WELFARE_TEAM, TEAM, relation_known
from tests.support.system import EventLog, running

pytestmark = [pytest.mark.integration]

CPN = {"channel": "child_protection_notification", "referrer": {"organisation_type": "police", "email": "poliisi@example.com"}}


def db(settings):  # type: ignore[no-untyped-def]
    return sqlite3.connect(settings.data_dir / "referral.db")


async def timer_exists(nc, subject: str) -> bool:  # type: ignore[no-untyped-def]
    """A live schedule is the last message on its subject; a cancelled one is rolled up by a tombstone."""
    try:
        msg = await nc.jetstream().get_last_msg("TIMERS_REFERRAL", subject)
    except NotFoundError:
        return False
    return "Nats-Schedule" in (msg.headers or {})


async def test_rejected_submission_is_kept_and_a_corrected_resend_is_accepted(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("referral.>",))
    directory = await EventLog().attach(nc, ("directory.>",))
    async with running(settings, "referral"):
        body = submission(guardians=[{"name": "Testi Huoltaja", "phone": "12"}])
        await submit_referral(nc, body)
        (rejected,) = await wait_for(lambda: log.of("referral.rejected"))
        assert rejected["submission_id"] == body["submission_id"]
        assert [(r["field"], r["code"]) for r in rejected["reasons"]] == [("guardians.0.phone", "invalid_phone")]
        assert set(rejected["reasons"][0]["message"]) == {"fi", "sv", "en"}
        # The front door fixes the phone number and resends under the same submission id.
        body["guardians"][0]["phone"] = "+358 40 765 4321"
        await submit_referral(nc, body, msg_id=f"{body['submission_id']}:r2")
        (received,) = await wait_for(lambda: log.of("referral.received"))
        assert received["submission_id"] == body["submission_id"]
        # The public event names the guardian; the number travels only in the directory copy.
        assert "phone" not in received["contacts"][0]
        (private,) = await wait_for(lambda: directory.of("directory.referral.received"))
        assert private["contacts"][0]["phone"] == "+358407654321"
    with db(settings) as conn:
        rows = conn.execute("select submission_id, reasons from rejected_submissions").fetchall()
    assert rows[0][0] == body["submission_id"] and json.loads(rows[0][1])[0]["code"] == "invalid_phone"


async def test_same_submission_after_the_dedup_window_opens_no_second_referral(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("referral.>",))
    async with running(settings, "referral"):
        body = submission()
        await submit_referral(nc, body)
        await wait_for(lambda: log.of("referral.received"))
        # JetStream only drops a repeated Nats-Msg-Id inside its window; a different id gets through.
        await submit_referral(nc, body, msg_id=f"{body['submission_id']}:late-redelivery")
        marker = submission()
        await submit_referral(nc, marker)
        await wait_for(lambda: len(log.of("referral.received")) == 2)
    assert [e["submission_id"] for e in log.of("referral.received")] == [body["submission_id"], marker["submission_id"]]
    assert log.of("referral.linked") == []
    with db(settings) as conn:
        assert conn.execute("select count(*) from referrals").fetchone() == (2,)


async def test_new_referral_about_a_child_with_an_open_case_is_linked_and_can_be_unlinked(
    staff_settings, nc, clean_streams, identity
):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("referral.>",))
    sw = identity.social_worker("staff-sw-1", TEAM)  # a social worker of the team the first referral is routed to
    async with running(staff_settings, "referral") as svcs:
        first = submission()
        await submit_referral(nc, first)
        (received,) = await wait_for(lambda: log.of("referral.received"))
        case_id = received["case_id"]
        # Same child (same henkilötunnus), another referrer a week later.
        second = submission(
            children=first["children"],
            channel="assessment_request",
            referrer={"organisation_type": "school_pupil_welfare", "email": "kuraattori@example.com"},
        )
        await submit_referral(nc, second)
        (linked,) = await wait_for(lambda: log.of("referral.linked"))
        assert linked["case_id"] == case_id and linked["repeat_count"] == 2 and linked["statutory"] is True
        assert linked["decision_due_by"] is not None and "personal_id" not in json.dumps(linked)
        # A newborn without henkilötunnus, by name and date of birth, twice.
        baby = {"given_name": "Vauva", "family_name": "Testinen", "date_of_birth": "2026-10-01"}
        await submit_referral(nc, submission(children=[baby]))
        await wait_for(lambda: len(log.of("referral.received")) == 2)
        await submit_referral(nc, submission(children=[dict(baby, given_name="VAUVA")]))
        await wait_for(lambda: len(log.of("referral.linked")) == 2)
        await relation_known([svcs["referral"]], case_id)

        reply = await call(nc, "query.referral.case.v2", {"case_id": case_id, "purpose": "case_work"}, token=sw)
        assert reply.ok and reply.data is not None
        assert reply.data["repeat_count"] == 2
        assert [r["submission_id"] for r in reply.data["referrals"]] == [first["submission_id"], second["submission_id"]]
        assert [h["what"] for h in reply.data["history"]][:2] == ["referral_received", "referral_linked"]
        assert reply.data["deadlines"][0]["deadline"] == "assessment_decision"

        # The link was wrong: undo it; the referral gets a case of its own.
        cmd = {"command_id": str(uuid4()), "case_id": case_id, "referral_id": linked["referral_id"], "reason": "eri lapsi"}
        undo = await call(nc, "cmd.referral.unlink.v2", cmd, token=sw)
        assert undo.ok, undo.errors
        assert await call(nc, "cmd.referral.unlink.v2", cmd, token=sw) == undo  # a retried command gets the same reply
        (unlinked,) = await wait_for(lambda: log.of("referral.unlinked"))
        assert unlinked["previous_case_id"] == case_id and unlinked["case_id"] == undo.id != case_id
        # The referral is the new case's now: named with the old case it is not found there ...
        elsewhere = await call(nc, "cmd.referral.unlink.v2", {**cmd, "command_id": str(uuid4())}, token=sw)
        assert not elsewhere.ok and (elsewhere.errors[0].field, elsewhere.errors[0].code) == ("referral_id", "not_found")
        # ... and with its own case there is no link to undo.
        await relation_known([svcs["referral"]], undo.id)
        again = await call(nc, "cmd.referral.unlink.v2", {**cmd, "case_id": undo.id, "command_id": str(uuid4())}, token=sw)
        assert not again.ok and again.errors[0].code == "not_linked"
        old = await call(nc, "query.referral.case.v2", {"case_id": case_id, "purpose": "case_work"}, token=sw)
        assert old.data is not None and old.data["repeat_count"] == 1
        # The statutory referral moved away, and with it the decision deadline and its timers.
        assert old.data["deadlines"] == []
        await wait_for(lambda: _not(timer_exists(nc, f"timers.referral.assessment_decision.{case_id}.breached")))
        assert await timer_exists(nc, f"timers.referral.assessment_decision.{undo.id}.breached")
        # A case of no team of hers: refused, and the refusal is in the log with her verified id.
        stranger = str(uuid4())
        missing = await call(nc, "query.referral.case.v2", {"case_id": stranger, "purpose": "case_work"}, token=sw)
        assert not missing.ok and missing.errors[0].code == "forbidden"
    with db(staff_settings) as conn:
        audit = conn.execute("select actor, case_id, action, purpose, result from audit_log order by id").fetchall()
    assert audit[0] == ("staff-sw-1", case_id, "read_case", "case_work", "found")
    assert audit[-1] == ("staff-sw-1", stranger, "query.referral.case.v2", "refused:no_relation_to_case", "refused")


async def test_consent_ledger_records_and_withdraws_per_purpose_and_recipient(
    staff_settings, nc, clean_streams, identity, worker_token
):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("consent.>", "referral.>"))
    w = worker_token  # the close worker, on the voluntary case's team
    async with running(staff_settings, "referral") as svcs:
        await submit_referral(nc, submission(consent_to_convene=True))
        await submit_referral(nc, submission(consent_to_convene=False, **CPN))
        await wait_for(lambda: len(log.of("referral.received")) == 2)
        voluntary, statutory = log.of("referral.received")
        # A new case's intake consent is in the ledger and announced by its referral.received, not
        # by a consent.given of its own.
        assert voluntary["consent_to_convene"] is True and voluntary["intake_consent_id"] is not None
        # The child-protection notification is handled without consent: no consent, statutory flag set.
        assert statutory["statutory"] is True and statutory["consent_to_convene"] is False
        assert statutory["intake_consent_id"] is None

        case_id = voluntary["case_id"]
        await relation_known([svcs["referral"]], case_id)
        case = await call(nc, "query.referral.case.v2", {"case_id": case_id, "purpose": "case_work"}, token=w)
        assert case.data is not None
        (intake_consent,) = case.data["consents"]
        assert intake_consent["consent_id"] == voluntary["intake_consent_id"]
        assert (intake_consent["purpose"], intake_consent["given_by"]) == ("convene_team", "guardian-1")
        share = {
            "command_id": str(uuid4()),
            "case_id": case_id,
            "purpose": "share_plan",
            "recipient": "org:school-1",
            "given_by": "guardian-1",
        }
        # Consent is recorded by a worker of the case (or the guardian): not by the team lead.
        lead = await call(nc, "cmd.referral.record_consent.v2", share, token=identity.team_lead("lead-1", TEAM))
        assert not lead.ok and (lead.errors[0].code, lead.data) == ("forbidden", {"reason": "consent_by_worker_or_guardian"})
        given = await call(nc, "cmd.referral.record_consent.v2", share, token=w)
        assert given.ok, given.errors
        no_recipient = await call(
            nc, "cmd.referral.record_consent.v2", {**share, "command_id": str(uuid4()), "recipient": None}, token=w
        )
        assert not no_recipient.ok and (no_recipient.errors[0].field, no_recipient.errors[0].code) == (
            "recipient",
            "recipient_required",
        )
        (shared,) = await wait_for(lambda: log.of("consent.given"))
        assert (shared["consent_id"], shared["recipient"]) == (given.id, "org:school-1")
        assert shared["recorded_by"] == "staff-close", "recorded by the token's worker"

        withdraw = {
            "command_id": str(uuid4()),
            "case_id": case_id,
            "consent_id": given.id,
            "withdrawn_by": "guardian-1",
        }
        done = await call(nc, "cmd.referral.withdraw_consent.v2", withdraw, token=w)
        assert done.ok, done.errors
        (withdrawn,) = await wait_for(lambda: log.of("consent.withdrawn"))
        assert (withdrawn["consent_id"], withdrawn["purpose"], withdrawn["recipient"]) == (given.id, "share_plan", "org:school-1")
        assert withdrawn["recorded_by"] == "staff-close"
        twice = await call(nc, "cmd.referral.withdraw_consent.v2", {**withdraw, "command_id": str(uuid4())}, token=w)
        assert not twice.ok and twice.errors[0].code == "already_withdrawn"
        case = await call(nc, "query.referral.case.v2", {"case_id": case_id, "purpose": "case_work"}, token=w)
        assert case.data is not None
        assert [(c["purpose"], c["withdrawn_at"] is not None) for c in case.data["consents"]] == [
            ("convene_team", False),
            ("share_plan", True),
        ]


async def test_deadline_timers_fire_when_the_step_is_not_recorded(staff_settings, nc, clean_streams, identity):  # type: ignore[no-untyped-def]
    """Received four months ago (by the service clock and the front door's receipt): the decision
    deadline's timers are already due, so JetStream fires them at once; then the assessment, due
    3 months of that receipt, breaches too."""
    log = await EventLog().attach(nc, ("referral.>", "assessment.>"))
    clock = FixedClock(datetime.now(UTC) - timedelta(days=120))
    sw = identity.social_worker("sw-1", CHILD_WELFARE_TEAM)
    async with running(staff_settings, "referral", clock=clock) as svcs:
        await submit_referral(
            nc,
            submission(
                urgent=True, municipality="Porvoo", concern_category="violence", submitted_at=clock.now().isoformat(), **CPN
            ),
        )
        (received,) = await wait_for(lambda: log.of("referral.received"))
        case_id = received["case_id"]
        due = received["decision_due_by"]
        approaching = await wait_for(lambda: log.of("referral.deadline_approaching"))
        breached = await wait_for(lambda: log.of("referral.deadline_breached"))
        assert (approaching[0]["case_id"], approaching[0]["deadline"], approaching[0]["due_by"]) == (
            case_id,
            "assessment_decision",
            due,
        )
        assert (breached[0]["case_id"], breached[0]["deadline"], breached[0]["due_by"]) == (case_id, "assessment_decision", due)
        assert breached[0]["team_id"] == "child-welfare-intake"
        (urgent,) = log.of("referral.urgent")
        assert urgent["case_id"] == case_id and urgent["team_id"] == "ita-uusimaa-social-emergency"
        (assigned,) = log.of("referral.assigned")
        assert assigned["team_id"] == "child-welfare-intake"

        started = helsinki_date(clock.now())
        await relation_known([svcs["referral"]], case_id)
        reply = await call(
            nc,
            "cmd.referral.start_assessment.v2",
            {"command_id": str(uuid4()), "case_id": case_id, "started_on": started.isoformat()},
            token=sw,
        )
        assert reply.ok, reply.errors
        await wait_for(lambda: [e for e in log.of("referral.deadline_breached") if e["deadline"] == "assessment_completion"])
        (started_ev,) = log.of("assessment.started")
        assert started_ev["started_on"] == started.isoformat()


async def test_recording_the_step_cancels_its_timers(staff_settings, nc, clean_streams, identity):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("referral.>", "assessment.>"))
    sw = identity.social_worker("sw-1", CHILD_WELFARE_TEAM)
    lead = identity.team_lead("sw-lead", CHILD_WELFARE_TEAM)
    async with running(staff_settings, "referral") as svcs:
        first = submission(**CPN)
        await submit_referral(nc, first)
        (received,) = await wait_for(lambda: log.of("referral.received"))
        case_id = received["case_id"]
        decision = [f"timers.referral.assessment_decision.{case_id}.{w}" for w in ("approaching", "breached")]
        completion = [f"timers.referral.assessment_completion.{case_id}.{w}" for w in ("approaching", "breached")]
        for subject in decision:
            await wait_for(lambda s=subject: timer_exists(nc, s))

        # Deadlines due within the next 7 working days, for the team (audited).
        deadlines = {"working_days": 7, "team_id": CHILD_WELFARE_TEAM, "purpose": "deadline_follow_up"}
        due = await call(nc, "query.referral.deadlines_due.v2", deadlines, token=lead)
        assert due.ok and due.data is not None
        assert [(d["case_id"], d["deadline"]) for d in due.data["deadlines"]] == [(case_id, "assessment_decision")]
        team = await call(
            nc, "query.referral.team_cases.v2", {"team_id": CHILD_WELFARE_TEAM, "purpose": "supervision"}, token=lead
        )
        assert team.data is not None and [c["case_id"] for c in team.data["cases"]] == [case_id]
        # Another team's lead does not see this team's lists.
        elsewhere = await call(nc, "query.referral.deadlines_due.v2", deadlines, token=identity.team_lead("lead-9", TEAM))
        assert not elsewhere.ok and (elsewhere.errors[0].code, elsewhere.data) == ("forbidden", {"reason": "not_on_team"})

        await relation_known([svcs["referral"]], case_id)
        start = {"command_id": str(uuid4()), "case_id": case_id}
        assert (await call(nc, "cmd.referral.start_assessment.v2", start, token=sw)).ok
        for subject in decision:
            await wait_for(lambda s=subject: _not(timer_exists(nc, s)))
        for subject in completion:
            await wait_for(lambda s=subject: timer_exists(nc, s))
        (started,) = await wait_for(lambda: log.of("assessment.started"))
        assert started["complete_by"] > started["started_on"]

        done = await call(
            nc,
            "cmd.referral.complete_assessment.v2",
            {"command_id": str(uuid4()), "case_id": case_id, "outcome": "no_need_for_services"},
            token=sw,
        )
        assert done.ok, done.errors
        for subject in completion:
            await wait_for(lambda s=subject: _not(timer_exists(nc, s)))
        (completed,) = await wait_for(lambda: log.of("assessment.completed"))
        # A professional's child-protection notification: the notifier may be told the outcome category.
        assert completed["outcome"] == "no_need_for_services" and completed["referrer_may_be_told"] is True
        again = await call(
            nc, "cmd.referral.complete_assessment.v2", {**start, "command_id": str(uuid4()), "outcome": "other"}, token=sw
        )
        assert not again.ok and again.errors[0].code == "assessment_already_completed"
        # The case is closed now: a new referral about the same child opens a new case.
        await submit_referral(nc, submission(**CPN, children=first["children"]))
        await wait_for(lambda: len(log.of("referral.received")) == 2)
        assert log.of("referral.received")[1]["case_id"] != case_id and log.of("referral.linked") == []
        nothing = await call(nc, "query.referral.deadlines_due.v2", {**deadlines, "working_days": 0}, token=lead)
        assert nothing.ok and nothing.data is not None and nothing.data["deadlines"] == []
    assert log.of("referral.deadline_breached") == [] and log.of("referral.deadline_approaching") == []
    with db(staff_settings) as conn:
        audit = conn.execute("select actor, action from audit_log order by id").fetchall()
    assert audit == [("sw-lead", "list_deadlines"), ("sw-lead", "list_team_cases"), ("sw-lead", "list_deadlines")]


async def _not(aw):  # type: ignore[no-untyped-def]
    return not await aw
