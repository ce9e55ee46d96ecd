"""The whole flow in-process on a real nats-server and real SQLite files, with the clock under test control.
Staff act with tokens: the close worker is on the team the referral service routes the case to."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from sqlalchemy import func, select

from services.notifications.adapters import notifications as notifications_table
from shared.client import call, submit_referral
from shared.clock import FixedClock
from shared.contracts import ReferralReceived
from tests.conftest import wait_for
from tests.support.data import referral_received, submission
from tests.support.staff import publish_js, relation_known
from tests.support.system import EventLog, fed, running

pytestmark = [pytest.mark.integration]


def convene_cmd(case_id: str, starts: datetime, room: str = "Room 1") -> dict:
    return {
        "command_id": str(uuid4()),
        "case_id": case_id,
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=1)).isoformat(),
        "room": room,
        "participants": [
            {"participant_id": "guardian-1", "kind": "family", "role": "guardian"},
            {
                "participant_id": "staff-close",
                "kind": "professional",
                "role": "close_worker",
                "contact": {"contact_id": "staff-close", "role": "close_worker", "email": "close@example.com"},
            },
            {
                "participant_id": "staff-psy",
                "kind": "professional",
                "role": "psychologist",
                "contact": {"contact_id": "staff-psy", "role": "psychologist", "email": "psy@example.com", "language": "sv"},
            },
        ],
    }


def held_cmd(case_id: str, meeting_id: str, **extra: object) -> dict:
    """The close worker records the meeting as held, with the guardian present and the child heard."""
    return {
        "command_id": str(uuid4()),
        "case_id": case_id,
        "meeting_id": meeting_id,
        "attendance": [{"participant_id": "guardian-1", "present": True}, {"participant_id": "staff-close", "present": True}],
        "child_heard": True,
        "responsible_worker_ids": ["staff-close"],
        **extra,
    }


def plan_cmd(case_id: str, meeting_id: str, next_contact: datetime) -> dict:
    return {
        "command_id": str(uuid4()),
        "case_id": case_id,
        "meeting_id": meeting_id,
        "changes_needed": ["Mornings run smoothly"],
        "actions_at_home": [{"what": "Picture schedule", "who": "parent"}],
        "worker_contacts_family": "Phone call on Mondays",
        "family_contacts_worker": "Text message on weekdays",
        "responsible_workers": [
            {
                "worker_id": "staff-close",
                "organisation": "City ECEC",
                "public_service": True,
                "contact": {"contact_id": "staff-close", "role": "responsible_worker", "email": "close@example.com"},
            }
        ],
        "next_contact_at": next_contact.isoformat(),
        "family_contacts": [{"contact_id": "guardian-1", "role": "guardian", "language": "sv", "email": "g1@example.com"}],
    }


async def test_referral_to_followup_due_across_four_services(staff_settings, nc, clean_streams, worker_token):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc)
    clock = FixedClock(datetime.now(UTC))
    w = worker_token  # the close worker, on the team the referral is routed to
    async with running(staff_settings, clock=clock) as svcs:
        body = submission()
        await submit_referral(nc, body)
        received = await wait_for(lambda: log.of("referral.received"))
        case_id = received[0]["case_id"]
        await relation_known([svcs["meetings"], svcs["plans"]], case_id)  # the team, from referral.assigned
        # The meetings service opens the convening when it consumes referral.received.
        reply = await wait_for(_convene_until_open(nc, convene_cmd(case_id, clock.now() + timedelta(hours=1)), w))
        assert reply.ok, reply.errors
        meeting_id = reply.id

        # A retried command (same command_id) gets the same reply and no second meeting.
        clock.advance(hours=1, minutes=5)
        held = held_cmd(case_id, meeting_id)
        r1 = await call(nc, "cmd.meetings.record_held.v2", held, token=w)
        r2 = await call(nc, "cmd.meetings.record_held.v2", held, token=w)
        assert r1.ok and r2 == r1
        # The same id with other content is refused, never answered as if carried out.
        other = await call(nc, "cmd.meetings.record_held.v2", {**held, "child_heard": False}, token=w)
        assert not other.ok and (other.errors[0].field, other.errors[0].code) == ("command_id", "command_id_reused")
        assert {"fi", "sv", "en"} <= set(other.errors[0].message)
        # ... and so is the id sent again on another subject.
        moved = {"command_id": held["command_id"], "case_id": case_id, "meeting_id": meeting_id, "reason": "x"}
        elsewhere = await call(nc, "cmd.meetings.cancel.v2", moved, token=w)
        assert not elsewhere.ok and elsewhere.errors[0].code == "command_id_reused", elsewhere.errors

        # The follow-up timer is real JetStream time: due two seconds from now.
        clock.at = datetime.now(UTC)
        due_at = datetime.now(UTC) + timedelta(seconds=2)
        reply = await call(nc, "cmd.plans.agree.v2", plan_cmd(case_id, meeting_id, due_at), token=w)
        assert reply.ok, reply.errors
        plan_id = reply.id

        due = await wait_for(lambda: log.of("followup.due"), timeout=15)
        assert due[0]["plan_id"] == plan_id
        assert due[0]["_headers"].get("traceparent"), "trace context travels through the schedule"

        # Notifications: referrer ack, 3 invitations, plan to family + responsible worker, follow-up to both.
        def followups_sent():  # type: ignore[no-untyped-def]
            s = log.of("notification.sent")
            return sum(e["template"] == "followup_due" for e in s) >= 2 and s

        sent = await wait_for(followups_sent, timeout=15)
        by_template = sorted((e["template"], e["recipient_id"], e["language"]) for e in sent)
        assert len(by_template) == len(set(by_template)), "nobody is told the same thing twice"
        # Besides these, the case's assigned team is told of the new referral.
        assert {t for t, _, _ in set(by_template)} - {"referral_assigned"} == {
            "referral_ack",
            "meeting_invitation",
            "plan_agreed",
            "followup_due",
        }
        assert set(by_template) - {x for x in by_template if x[0] == "referral_assigned"} == set(
            [
                ("referral_ack", "referrer", "fi"),
                ("meeting_invitation", "guardian-1", "fi"),
                ("meeting_invitation", "staff-close", "fi"),
                ("meeting_invitation", "staff-psy", "sv"),
                ("plan_agreed", "guardian-1", "sv"),
                ("plan_agreed", "staff-close", "fi"),
                ("followup_due", "staff-close", "fi"),
                ("followup_due", "guardian-1", "sv"),
            ]
        )
        # The meeting invitation to guardian-1 could not know their language before the plan: fi is the
        # safe default. The directory has it from referral.received (fi) and plan.agreed (sv) afterwards.

        plans_reply = await call(nc, "query.plans.case.v2", {"case_id": case_id, "purpose": "plan_follow_up"}, token=w)
        assert plans_reply.data["plans"][0]["followup_due_fired_at"] is not None

        # Nothing personal in events: no names, no henkilötunnus, no free text.
        dumped = json.dumps(log.events)
        assert body["children"][0]["personal_id"] not in dumped
        assert body["guardians"][0]["name"] not in dumped
        assert body["concern"] not in dumped
        assert svcs["notifications"].consumers


def _convene_until_open(nc, cmd, token: str):  # type: ignore[no-untyped-def]
    """Convene once the meetings service has the case (referral.received). Wait for the case's team
    first (``relation_known``), or the worker is refused, and the refusal audited."""

    async def attempt():  # type: ignore[no-untyped-def]
        reply = await call(nc, "cmd.meetings.convene.v2", cmd, token=token)
        if not reply.ok and reply.errors[0].code == "unknown_case":
            return None
        return reply

    return attempt


PUBLIC, PRIVATE = ReferralReceived.public_form, ReferralReceived.directory_form
assert PUBLIC and PRIVATE


async def test_redelivered_event_has_no_second_effect(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    ev = referral_received(
        submission_id="s-1",
        referrer_type="police",
        contacts=[{"contact_id": "referrer", "role": "referrer", "email": "r@example.com"}],
    )
    js = nc.jetstream()
    async with running(settings, "meetings", "notifications") as svcs:
        # Three copies with different Nats-Msg-Ids: JetStream stores all three (as after the dedup
        # window has passed); the inbox must turn them into one effect.
        for i in range(3):
            for _, form in ev.published():  # the public v2 (meetings) and the private copy (notifications)
                await js.publish(form.subject(), form.to_json(), headers={"Nats-Msg-Id": f"copy-{i}"})
        consumer = fed(svcs["notifications"], subject=PRIVATE.subject())
        await wait_for(lambda: consumer.handled == 3)
        assert consumer.duplicates == 2
        async with svcs["notifications"].uow() as uow:
            count = await uow.session.scalar(select(func.count()).select_from(notifications_table))
        assert count == 1
        m = fed(svcs["meetings"], subject=PUBLIC.subject())
        await wait_for(lambda: m.handled == 3)
        assert m.duplicates == 2


async def test_poison_message_is_dead_lettered_and_consumer_goes_on(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("deadletter.>",))
    js = nc.jetstream()
    async with running(settings, "meetings") as svcs:
        await js.publish(
            "referral.received.v2", b'{"not": "an event", "name": "Secret Person"}', headers={"Nats-Msg-Id": "poison-1"}
        )
        dl = await wait_for(lambda: log.of("deadletter.meetings"))
        h = dl[0]["_headers"]
        assert h["Koolle-Dlq-Reason"] == "contract_violation"
        assert "Secret Person" not in h["Koolle-Dlq-Detail"]
        assert "case_id:missing" in h["Koolle-Dlq-Detail"]
        # the consumer still works
        good = referral_received(submission_id="s-2")
        await publish_js(js, good)
        consumer = fed(svcs["meetings"], subject=PUBLIC.subject())
        await wait_for(lambda: consumer.handled == 1)


async def test_failing_handler_is_retried_with_delay_then_dead_lettered(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    from services.meetings.bootstrap import bootstrap
    from shared.messaging.subscription import Subscription

    log = await EventLog().attach(nc, ("deadletter.>",))
    attempts: dict[str, int] = {}

    from services.meetings.adapters import convenings
    from services.meetings.handlers import open_convening

    async def flaky(ev, uow):  # type: ignore[no-untyped-def]
        await open_convening(ev, uow)  # the real effect, rolled back whenever we then fail
        attempts[ev.submission_id] = attempts.get(ev.submission_id, 0) + 1
        if ev.submission_id == "always-fails" or attempts[ev.submission_id] < 3:
            raise RuntimeError("downstream unavailable")

    svc = bootstrap(settings)
    svc.subscriptions = [Subscription.for_event("meetings", PUBLIC, flaky)]
    await svc.start()
    try:
        js = nc.jetstream()
        for sid in ("recovers", "always-fails"):
            ev = referral_received(submission_id=sid)
            await publish_js(js, ev)
        dl = await wait_for(lambda: log.of("deadletter.meetings"), timeout=15)
        assert dl[0]["submission_id"] == "always-fails"
        assert dl[0]["_headers"]["Koolle-Dlq-Reason"] == "handler_failed"
        assert dl[0]["_headers"]["Koolle-Dlq-Deliveries"] == str(settings.max_deliver)
        # A failing batch is retried message by message, so a handler may run more often than it
        # is delivered; its effects commit once.
        assert attempts["recovers"] >= 3
        assert attempts["always-fails"] >= settings.max_deliver
        async with svc.uow() as uow:
            rows = (await uow.session.execute(select(convenings.c.case_id))).all()
        assert len(rows) == 1
    finally:
        await svc.stop()
