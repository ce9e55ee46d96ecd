"""Notifications over real SMTP (aiosmtpd) and a fake SMS gateway, with the producers' events
published straight to JetStream and the clock under test control."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from icalendar import Calendar

from services.notifications.bootstrap import bootstrap
from services.notifications.config import NotificationsConfig
from services.notifications.domain import sms_length
from services.notifications.sms import FortySixElks
from shared.client import call
from shared.clock import HELSINKI, FixedClock
from shared.contracts.meetings import (
    MeetingCancelled,
    MeetingConvened,
    MeetingReminderDue,
    MeetingRescheduled,
    RosterRoomChanged,
)
from shared.contracts.plans import FollowupDue, PlanAgreed, PlanCopyPrepared, PlanShared
from shared.contracts.referral import (
    AssessmentCompleted,
    ConsentWithdrawn,
    ReferralReceived,
    ReferralUrgent,
)
from shared.service import Service
from tests.conftest import wait_for
from tests.support.notifications_fakes import FakeSmsGateway, SmtpServer
from tests.support.staff import assign_in, publish_js
from tests.support.system import EventLog, fed

pytestmark = [pytest.mark.integration]

TUESDAY_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=HELSINKI).astimezone(UTC)

G1 = {"contact_id": "guardian-1", "role": "guardian", "language": "sv", "email": "g1@example.com", "phone": "+358401230001"}
REFERRER = {"contact_id": "referrer", "role": "referrer", "language": "fi", "email": "pk@example.com"}


def config(smtp: SmtpServer | None = None, sms: FakeSmsGateway | None = None, **kw: Any) -> NotificationsConfig:
    return NotificationsConfig(
        smtp_host="127.0.0.1" if smtp else "",
        smtp_port=smtp.port if smtp else 25,
        sms_gateway_url=sms.url if sms else "",
        sms_api_username=sms.username if sms else "",
        sms_api_password=sms.password if sms else "",
        backoff_base_seconds=60,
        receipt_poll_seconds=0,
        # plan.agreed is published alone here, without the plans service's copy
        **({"plan_copy_wait_seconds": 0} | kw),
    )


@asynccontextmanager
async def notifications(
    settings: Any, clock: FixedClock, cfg: NotificationsConfig, channels: Any = None, cases: tuple[UUID, ...] = ()
) -> AsyncIterator[Service]:
    """The service, knowing ``cases`` as the close worker's team's (their team written to the
    case-access read model alone: its own handler of the routing would notify the team and add to the counts)."""
    svc = bootstrap(settings, clock, config=cfg, channels=channels)
    await svc.start()
    try:
        for case_id in cases:
            await assign_in(svc, case_id)
        yield svc
    finally:
        await svc.stop()


async def publish(nc: Any, *events: Any) -> None:
    js = nc.jetstream()
    for ev in events:
        await publish_js(js, ev)


def received(
    case_id: UUID, contacts: list[dict[str, Any]], channel: str = "concern_with_family", team_id: str | None = None
) -> ReferralReceived:
    return ReferralReceived(
        producer="test",
        case_id=case_id,
        referral_id=uuid4(),
        submission_id=f"s-{uuid4()}",
        channel=channel,
        municipality="Testilä",
        received_at=TUESDAY_NOON,
        language="fi",
        interpreter_needed=False,
        urgent=False,
        statutory=False,
        child_count=1,
        consent_to_convene=True,
        contacts=contacts,
        team_id=team_id,
    )


async def case_notifications(nc: Any, case_id: UUID, token: str) -> list[dict[str, Any]]:
    reply = await call(nc, "query.notifications.case.v2", {"case_id": str(case_id), "purpose": "delivery_follow_up"}, token=token)
    assert reply.ok or reply.errors[0].code == "not_found", reply.errors  # the staff member reaches the case
    return reply.data["notifications"] if reply.ok else []


def ics_of(msg: Any) -> Calendar:
    for part in msg.walk():
        if part.get_content_type() == "text/calendar":
            return Calendar.from_ical(part.get_payload(decode=True))
    raise AssertionError("no text/calendar part")


async def test_right_recipients_languages_and_calendar_invitations_over_smtp(staff_settings, nc, clean_streams, worker_token):  # type: ignore[no-untyped-def]
    clock = FixedClock(TUESDAY_NOON)
    case_id, meeting_id = uuid4(), uuid4()
    starts = TUESDAY_NOON + timedelta(days=7)
    participants = [
        {"participant_id": "guardian-1", "kind": "family", "role": "guardian"},
        {
            "participant_id": "staff-close",
            "kind": "professional",
            "role": "close_worker",
            "contact": {"contact_id": "staff-close", "role": "close_worker", "language": "en", "email": "close@example.com"},
        },
        {"participant_id": "referrer", "kind": "referrer", "role": "referrer"},
    ]
    with SmtpServer() as smtp:
        async with FakeSmsGateway() as sms, notifications(staff_settings, clock, config(smtp, sms), cases=(case_id,)) as svc:
            await publish(
                nc,
                received(case_id, [G1, REFERRER], team_id="testila-family-centre"),  # the routing's team
                MeetingConvened(
                    producer="test",
                    case_id=case_id,
                    meeting_id=meeting_id,
                    starts_at=starts,
                    ends_at=starts + timedelta(hours=1),
                    room="Room 1",
                    language="fi",
                    interpreter_needed=False,
                    participants=participants,
                ),
            )
            # referrer ack (fi) + team of four (each in their language) + 3 invitations
            await wait_for(lambda: len(smtp.messages) >= 8, timeout=15)
            assert [m["Subject"] for m in smtp.to("pk@example.com")] == [
                "Yhteydenottonne on vastaanotettu",
                "Kutsu yhteiseen tapaamiseen",
            ]
            team = {
                a: [m["Subject"] for m in smtp.to(a)]
                for a in (
                    "sosiaalityo1@testila.example",
                    "socialarbete2@testila.example",
                    "tiiminvetaja@testila.example",
                    "perhetyo1@testila.example",
                )
            }
            assert team == {
                "sosiaalityo1@testila.example": ["Uusi yhteydenotto tiimille"],
                "socialarbete2@testila.example": ["Ny kontakt till teamet"],
                "tiiminvetaja@testila.example": ["Uusi yhteydenotto tiimille"],
                "perhetyo1@testila.example": ["New referral for your team"],
            }
            invitation = smtp.to("g1@example.com")[0]
            assert invitation["Subject"] == "Inbjudan till gemensamt möte" and invitation["Content-Language"] == "sv"
            # No roster announced this room (no meetings service here): the place is described, never its id.
            text = invitation.get_body(("plain",)).get_content()
            assert "Room 1" not in text and "Plats: arbetstagaren som bjöd in er meddelar platsen." in text
            assert smtp.to("close@example.com")[0]["Subject"] == "Invitation to a joint meeting"
            assert not sms.messages  # everyone had an e-mail address: e-mail first

            # The meetings service announces the room the meeting moves to: the update names the place.
            room2 = RosterRoomChanged(
                producer="meetings",
                room_id="Room 2",
                municipality="Testilä",
                location="Testilän perhekeskus, 2. krs",
                address="Testikatu 5, 00990 Testilä",
            )
            await publish(nc, room2)

            async def room_known() -> bool:
                async with svc.uow() as uow:
                    return bool(await uow.notifications.roster_entries("room", ["Room 2"]))

            await wait_for(room_known)
            await publish(
                nc,
                MeetingRescheduled(
                    producer="test",
                    case_id=case_id,
                    meeting_id=meeting_id,
                    starts_at=starts + timedelta(days=1),
                    ends_at=starts + timedelta(days=1, hours=1),
                    room="Room 2",
                    reason="Room double-booked",
                    participants=participants,
                    sequence=1,
                ),
            )
            await wait_for(lambda: len(smtp.to("g1@example.com")) == 2, timeout=10)
            await _settle(nc, case_id, worker_token)  # (a cancellation supersedes a reschedule message still pending)
            await publish(
                nc,
                MeetingCancelled(
                    producer="test",
                    case_id=case_id,
                    meeting_id=meeting_id,
                    reason="Family ill",
                    participants=participants,
                    sequence=2,
                ),
            )
            await wait_for(lambda: len(smtp.to("g1@example.com")) == 3 and len(smtp.to("close@example.com")) == 3, timeout=10)
            cals = [ics_of(m) for m in smtp.to("g1@example.com")]
            events = [c.walk("VEVENT")[0] for c in cals]
            assert len({str(e["UID"]) for e in events}) == 1
            assert [int(e["SEQUENCE"]) for e in events] == [0, 1, 2]
            assert [str(c["METHOD"]) for c in cals] == ["REQUEST", "REQUEST", "CANCEL"]
            assert events[1].decoded("DTSTART") == starts + timedelta(days=1)
            assert str(events[1]["LOCATION"]) == "Testilän perhekeskus, 2. krs, Testikatu 5, 00990 Testilä"

            # A reminder from the cancelled meeting's timer is not sent.
            await publish(
                nc,
                MeetingReminderDue(
                    producer="test",
                    case_id=case_id,
                    meeting_id=meeting_id,
                    starts_at=starts,
                    participant_ids=["guardian-1"],
                    sequence=1,
                ),
            )
            reminders = fed(svc, named="reminder_due")
            await wait_for(lambda: reminders.handled == 1)
            await _settle(nc, case_id, worker_token)
            assert "meeting_reminder" not in {n["template"] for n in await case_notifications(nc, case_id, worker_token)}
            assert len(smtp.to("g1@example.com")) == 3


async def _settle(nc: Any, case_id: UUID, token: str) -> None:
    """Wait until no notification of the case is pending or sending."""

    async def quiet() -> bool:
        ns = await case_notifications(nc, case_id, token)
        return bool(ns) and all(n["status"] not in ("pending", "sending") for n in ns)

    await wait_for(quiet, timeout=10)


async def test_urgent_referral_reaches_the_on_duty_social_worker_at_once_by_sms(staff_settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    night = datetime(2026, 11, 24, 23, 30, tzinfo=HELSINKI).astimezone(UTC)  # after hours, quiet hours
    clock = FixedClock(night)
    case_id = uuid4()
    with SmtpServer() as smtp:
        async with FakeSmsGateway() as sms, notifications(staff_settings, clock, config(smtp, sms)):
            await publish(
                nc, ReferralUrgent(producer="test", case_id=case_id, referral_id=uuid4(), municipality="Testilä", channel="phone")
            )
            msgs = await wait_for(lambda: sms.to("+358401119999"), timeout=10)  # emergency social services after hours
            assert msgs[0]["message"].startswith("KIIREELLINEN yhteydenotto")
            assert sms_length(msgs[0]["message"]).encoding == "gsm7"
            assert not smtp.messages


async def test_quiet_hours_hold_a_family_sms_until_morning(staff_settings, nc, clean_streams, worker_token):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("notification.>",))
    evening = datetime(2026, 11, 24, 22, 30, tzinfo=HELSINKI).astimezone(UTC)
    clock = FixedClock(evening)
    case_id = uuid4()
    family = {"contact_id": "guardian-1", "role": "guardian", "language": "en", "phone": "+358401230002"}  # no e-mail
    async with FakeSmsGateway() as sms, notifications(staff_settings, clock, config(sms=sms), cases=(case_id,)):
        await publish(nc, received(case_id, [family], channel="e_contact"))
        ns = await wait_for(lambda: _with(case_notifications(nc, case_id, worker_token), lambda n: n["not_before"]), timeout=10)
        assert ns[0]["status"] == "pending"
        assert datetime.fromisoformat(ns[0]["not_before"]) == datetime(2026, 11, 25, 8, 0, tzinfo=HELSINKI)
        assert sms.posts == 0
        clock.at = datetime(2026, 11, 25, 8, 1, tzinfo=HELSINKI).astimezone(UTC)
        msgs = await wait_for(lambda: sms.to("+358401230002"), timeout=10)
        assert msgs[0]["message"] == "You have a new message in the Koolle service. Read it at https://koolle.example/viestit"
        portal = await wait_for(lambda: log.of("notification.portal_message"))
        assert portal[0]["audience"] == "family" and portal[0]["title"] == "Your referral was received"


async def _with(coro: Any, pred: Any) -> Any:
    items = await coro
    return items if items and all(pred(i) for i in items) else None


async def test_fallback_to_sms_when_email_is_refused_and_preferred_channel_first(staff_settings, nc, clean_streams, worker_token):  # type: ignore[no-untyped-def]
    clock = FixedClock(TUESDAY_NOON)
    case_id, plan_id = uuid4(), uuid4()
    g2 = {"contact_id": "guardian-2", "role": "guardian", "language": "fi", "email": "g2@example.com", "phone": "+358401230003"}
    with SmtpServer() as smtp:
        smtp.refuse.add("g1@example.com")
        async with FakeSmsGateway() as sms, notifications(staff_settings, clock, config(smtp, sms), cases=(case_id,)):
            await publish(nc, received(case_id, [G1, g2, REFERRER]))
            await wait_for(lambda: smtp.to("pk@example.com"))
            reply = await call(
                nc,
                "cmd.notifications.set_preference.v2",
                {
                    "command_id": str(uuid4()),
                    "case_id": str(case_id),
                    "contact_id": "guardian-2",
                    "preferred_channel": "sms",
                },
                token=worker_token,
            )
            assert reply.ok, reply.errors
            bad = await call(
                nc,
                "cmd.notifications.set_preference.v2",
                {
                    "command_id": str(uuid4()),
                    "case_id": str(case_id),
                    "contact_id": "nobody",
                    "preferred_channel": "sms",
                },
                token=worker_token,
            )
            assert not bad.ok and bad.errors[0].code == "not_found"
            await publish(
                nc,
                PlanAgreed(
                    producer="test",
                    case_id=case_id,
                    plan_id=plan_id,
                    plan_version=1,
                    meeting_id=None,
                    responsible_workers=[
                        {
                            "worker_id": "staff-close",
                            "organisation": "City",
                            "public_service": True,
                            "contact": {"contact_id": "staff-close", "role": "responsible_worker", "email": "close@example.com"},
                        }
                    ],
                    next_contact_at=TUESDAY_NOON + timedelta(days=30),
                    family_contacts=[
                        {k: v for k, v in G1.items()},
                        {"contact_id": "guardian-2", "role": "guardian", "language": "fi"},
                    ],
                ),
            )
            await wait_for(
                lambda: sms.to("+358401230001") and sms.to("+358401230003") and smtp.to("close@example.com"), timeout=10
            )
            await _settle(nc, case_id, worker_token)
            ns = {(n["template"], n["recipient_id"]): n for n in await case_notifications(nc, case_id, worker_token)}
            assert ns[("plan_agreed", "guardian-1")]["channels_tried"] == ["email", "sms"]
            assert ns[("plan_agreed", "guardian-1")]["status"] == "sent"
            assert ns[("plan_agreed", "guardian-2")]["channels_tried"] == ["sms"]
            assert not smtp.to("g2@example.com")
            # family SMS carries no content, in the family's language
            assert sms.to("+358401230001")[0]["message"].startswith("Ni har ett nytt meddelande")
            # delivery receipt from the gateway's status query
            await wait_for(
                lambda: _with(
                    case_notifications(nc, case_id, worker_token), lambda n: n["channel"] != "sms" or n["receipt"] == "delivered"
                )
            )

            # plan.shared to the family after plan.agreed: not told twice; to a consented party: told once.
            await publish(
                nc,
                PlanShared(
                    producer="test",
                    case_id=case_id,
                    plan_id=plan_id,
                    plan_version=1,
                    recipient_id="guardian-1",
                    recipient_role="guardian",
                    basis="family",
                ),
                PlanShared(
                    producer="test",
                    case_id=case_id,
                    plan_id=plan_id,
                    plan_version=1,
                    recipient_id="school-nurse",
                    recipient_role="school_nurse",
                    basis="consent",
                    consent_id=uuid4(),
                    contact={"contact_id": "school-nurse", "role": "school_nurse", "email": "nurse@example.com"},
                ),
            )
            await wait_for(lambda: smtp.to("nurse@example.com"), timeout=10)
            await _settle(nc, case_id, worker_token)
            templates = [(n["template"], n["recipient_id"]) for n in await case_notifications(nc, case_id, worker_token)]
            assert templates.count(("plan_shared", "guardian-1")) == 0 and templates.count(("plan_agreed", "guardian-1")) == 1
            assert templates.count(("plan_shared", "school-nurse")) == 1


async def test_temporary_failures_are_retried_with_backoff_then_failed_visible_to_staff(
    staff_settings, nc, clean_streams, identity, tmp_path
):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("notification.>",))
    staff_file = tmp_path / "staff.json"
    staff_file.write_text(
        json.dumps(
            {
                "staff": {
                    "sw-1": {"role": "social_worker", "email": "not-an-address"},
                    "lead-1": {"role": "team_lead", "phone": "+358401110003"},
                },
                "teams": {"t": {"lead": "lead-1", "social_workers": ["sw-1"]}},
            }
        )
    )
    clock = FixedClock(TUESDAY_NOON)
    case_id = uuid4()
    with SmtpServer() as smtp:
        async with (
            FakeSmsGateway(down=True) as sms,
            notifications(staff_settings, clock, config(smtp, sms, staff_file=staff_file, attempts_per_channel=3)),
        ):
            await publish(nc, received(case_id, [], team_id="t"))  # no contacts: only the team is told

            async def failed_after_retries() -> Any:
                clock.advance(minutes=5)  # past every backoff
                return len(log.of("notification.failed")) >= 2 and log.of("notification.failed")

            failed = await wait_for(failed_after_retries, timeout=20)
            reasons = {f["recipient_id"]: (f["reason"], f["attempts"], f["channels_tried"]) for f in failed}
            assert reasons == {"sw-1": ("invalid_email", 0, []), "lead-1": ("provider_unavailable", 3, ["sms"])}
            assert sms.posts == 3 and not smtp.messages
            # The team's lead follows up the failures (the case is the team's from referral.received).
            failed_q = {"case_id": str(case_id), "purpose": "delivery_follow_up"}
            reply = await call(nc, "query.notifications.failed.v2", failed_q, token=identity.team_lead("lead-1", "t"))
            assert reply.ok, reply.errors
            assert {(f["recipient_id"], f["reason"]) for f in reply.data["failed"]} == {
                ("sw-1", "invalid_email"),
                ("lead-1", "provider_unavailable"),
            }
            assert "not-an-address" not in json.dumps(reply.data) + json.dumps(log.events)
            other_team = await call(nc, "query.notifications.failed.v2", failed_q, token=identity.team_lead("lead-2", "u"))
            assert not other_team.ok and other_team.errors[0].code == "forbidden"


class Crash(BaseException):
    """The process dies here (not an Exception: nothing in the service catches it)."""


class CrashingSms:
    name = "sms"

    def __init__(self, inner: FortySixElks, after_send: bool) -> None:
        self.inner, self.after_send = inner, after_send

    async def send(self, msg: Any) -> Any:
        if self.after_send:
            await self.inner.send(msg)
        raise Crash()

    async def status(self, notification_id: str) -> Any:
        return await self.inner.status(notification_id)


@pytest.mark.parametrize("after_send", [True, False], ids=["crash-after-provider-took-it", "crash-before"])
async def test_no_duplicate_after_a_crash_between_sending_and_recording(
    staff_settings, nc, clean_streams, worker_token, after_send
):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("notification.>",))
    clock = FixedClock(TUESDAY_NOON)
    case_id = uuid4()
    worker = {"contact_id": "staff-close", "role": "responsible_worker", "phone": "+358401230009"}
    async with FakeSmsGateway() as sms:
        cfg = config(sms=sms)
        # The adapter journals the provider's id where the service's own adapter reads it after the restart.
        journal = staff_settings.data_dir / "notifications" / "sms-46elks-journal.jsonl"
        crashing = FortySixElks(sms.url, journal, sms.username, sms.password)
        async with notifications(
            staff_settings, clock, cfg, channels={"sms": CrashingSms(crashing, after_send)}, cases=(case_id,)
        ) as svc:
            await publish(
                nc,
                received(case_id, [worker]),
                FollowupDue(
                    producer="test",
                    case_id=case_id,
                    plan_id=uuid4(),
                    plan_version=1,
                    due_at=TUESDAY_NOON,
                    responsible_worker_ids=["staff-close"],
                    family_contact_ids=[],
                ),
            )
            ns = await wait_for(
                lambda: _with(case_notifications(nc, case_id, worker_token), lambda n: n["status"] == "sending"), timeout=10
            )
            assert len(ns) == 1
            assert sms.posts == (1 if after_send else 0)
            assert svc.db  # the dispatcher died mid-send, the row says "sending"
        await crashing.close()
        # A send left in "sending" is reconciled once it is older than reconcile_after_seconds (so a
        # send in flight in another replica is never taken for a crashed one).
        clock.advance(seconds=cfg.reconcile_after_seconds + 1)
        async with notifications(staff_settings, clock, cfg, cases=(case_id,)):  # restart with the real adapter
            await wait_for(lambda: log.of("notification.sent"), timeout=10)
            await _settle(nc, case_id, worker_token)
        assert sms.posts == 1 and len(sms.to("+358401230009")) == 1
        assert len(log.of("notification.sent")) == 1


async def test_consent_withdrawn_cancels_pending_and_is_checked_again_at_send_time(
    staff_settings, nc, clean_streams, worker_token
):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("notification.>",))
    clock = FixedClock(TUESDAY_NOON)
    case_id, plan_id, case2 = uuid4(), uuid4(), uuid4()
    with SmtpServer() as smtp:
        async with (
            FakeSmsGateway(down=True) as sms,
            notifications(staff_settings, clock, config(smtp, sms), cases=(case_id, case2)),
        ):
            await publish(nc, received(case_id, [G1, REFERRER]))
            await wait_for(lambda: smtp.to("pk@example.com"))
            # A consented party reachable only by SMS; the gateway is down, so it waits for a retry.
            consent_id = uuid4()
            await publish(
                nc,
                PlanShared(
                    producer="test",
                    case_id=case_id,
                    plan_id=plan_id,
                    plan_version=1,
                    recipient_id="school-nurse",
                    recipient_role="school_nurse",
                    basis="consent",
                    consent_id=consent_id,
                    contact={"contact_id": "school-nurse", "role": "school_nurse", "phone": "+358401230010"},
                ),
            )
            await wait_for(lambda: sms.posts >= 1)
            await publish(
                nc,
                ConsentWithdrawn(
                    producer="test",
                    case_id=case_id,
                    consent_id=consent_id,
                    purpose="share_plan",
                    recipient="school-nurse",
                    withdrawn_by="guardian-1",
                    recorded_by="staff-close",
                ),
            )
            cancelled = await wait_for(lambda: log.of("notification.cancelled"))
            assert cancelled[0]["recipient_id"] == "school-nurse" and cancelled[0]["reason"] == "consent_withdrawn"
            sms.down = False
            clock.advance(hours=2)
            # Telling the referrer the outcome: consent withdrawn first, so at send time the referrer is
            # told only that the assessment is done (the referrer always hears back).
            await publish(
                nc,
                ConsentWithdrawn(
                    producer="test",
                    case_id=case_id,
                    consent_id=uuid4(),
                    purpose="tell_referrer_outcome",
                    recipient=None,
                    withdrawn_by="guardian-1",
                    recorded_by="staff-close",
                ),
                AssessmentCompleted(
                    producer="test",
                    case_id=case_id,
                    completed_on=date(2026, 11, 24),
                    outcome="services_started",
                    social_worker_id="sw-testila-1",
                    referrer_may_be_told=True,
                ),
            )
            await wait_for(lambda: len(smtp.to("pk@example.com")) == 2, timeout=10)
            await _settle(nc, case_id, worker_token)
            assert not sms.messages and len(log.of("notification.cancelled")) == 1
            ack, done = smtp.to("pk@example.com")
            assert (ack["Subject"], done["Subject"]) == (
                "Yhteydenottonne on vastaanotettu",
                "Palvelutarpeen arviointi on valmistunut",
            )
            assert "Lopputulos" not in done.get_body(("plain",)).get_content()

            # With the consent in place the referrer is told the outcome category, nothing else.
            await publish(nc, received(case2, [REFERRER]))
            # In life the assessment ends weeks after the referral; here, wait until the referral is in.
            await wait_for(lambda: len(smtp.to("pk@example.com")) == 3, timeout=10)
            await publish(
                nc,
                AssessmentCompleted(
                    producer="test",
                    case_id=case2,
                    completed_on=date(2026, 11, 24),
                    outcome="services_started",
                    social_worker_id="sw-testila-1",
                    referrer_may_be_told=True,
                ),
                AssessmentCompleted(
                    producer="test",
                    case_id=case2,
                    completed_on=date(2026, 11, 24),
                    outcome="other",
                    social_worker_id="sw-testila-1",
                    referrer_may_be_told=False,
                ),
            )
            # Without consent the referrer still hears back, without the outcome.
            await wait_for(lambda: len(smtp.to("pk@example.com")) == 5, timeout=10)
            await _settle(nc, case2, worker_token)
            bodies = sorted(m.get_body(("plain",)).get_content() for m in smtp.to("pk@example.com")[-2:])
            assert "Lopputulos: palvelut on aloitettu." in bodies[1] and "Lopputulos" not in bodies[0]
            assert len(smtp.to("pk@example.com")) == 5


async def test_no_personal_data_in_logs_or_spans(staff_settings, nc, clean_streams, worker_token, caplog):  # type: ignore[no-untyped-def]
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from shared.telemetry import setup_tracing

    spans = InMemorySpanExporter()
    provider = setup_tracing("notifications", extra_exporter=spans)
    caplog.set_level(logging.DEBUG)
    clock = FixedClock(TUESDAY_NOON)
    case_id = uuid4()
    secret = {
        "contact_id": "guardian-1",
        "role": "guardian",
        "language": "fi",
        "email": "maija.testinen@example.com",
        "phone": "+358401239999",
    }
    with SmtpServer() as smtp:
        smtp.refuse.add("maija.testinen@example.com")
        async with FakeSmsGateway() as sms, notifications(staff_settings, clock, config(smtp, sms), cases=(case_id,)):
            sms.invalid_numbers.add("+358401239999")
            await publish(
                nc,
                received(case_id, [secret, REFERRER], channel="e_contact"),
                FollowupDue(
                    producer="test",
                    case_id=case_id,
                    plan_id=uuid4(),
                    plan_version=1,
                    due_at=TUESDAY_NOON,
                    responsible_worker_ids=[],
                    family_contact_ids=["guardian-1"],
                ),
            )
            await wait_for(lambda: smtp.to("pk@example.com"))
            await _settle(nc, case_id, worker_token)
            ns = await case_notifications(nc, case_id, worker_token)
            assert {n["failure"] for n in ns if n["recipient_id"] == "guardian-1"} == {"invalid_phone"}
    provider.force_flush()
    # Every logger at DEBUG except the test SMTP server's own and aiosqlite's DEBUG trace of SQL
    # parameters (a driver-level trace; services run at INFO).
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("mail.log", "aiosqlite")))
    assert "koolle.notifications" in {r.name for r in caplog.records}
    attrs = json.dumps([dict(s.attributes or {}) | {"name": s.name} for s in spans.get_finished_spans()])
    assert any(s.name.startswith("notification send") for s in spans.get_finished_spans())
    for value in ("maija.testinen@example.com", "+358401239999", "pk@example.com", "maija", "Testinen"):
        assert value not in ours, value
        assert value not in attrs, value


async def test_portal_channel_publishes_messages_for_family_and_staff(staff_settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("notification.>",))
    clock = FixedClock(TUESDAY_NOON)
    case_id = uuid4()
    async with notifications(staff_settings, clock, config(portal_enabled=True)):
        await publish(
            nc,
            received(case_id, [{"contact_id": "guardian-1", "role": "guardian", "language": "sv"}]),
            FollowupDue(
                producer="test",
                case_id=case_id,
                plan_id=uuid4(),
                plan_version=1,
                due_at=TUESDAY_NOON,
                responsible_worker_ids=["staff-close"],
                family_contact_ids=["guardian-1"],
            ),
        )
        portal = await wait_for(
            lambda: len(log.of("notification.portal_message")) == 2 and log.of("notification.portal_message"), timeout=10
        )
        by = {p["recipient_id"]: p for p in portal}
        assert by["guardian-1"]["audience"] == "family" and by["guardian-1"]["title"] == "Dags för överenskommen kontakt"
        assert by["staff-close"]["audience"] == "staff" and by["staff-close"]["language"] == "fi"
        assert {s["channel"] for s in log.of("notification.sent")} == {"portal"}


async def test_email_channel_remembers_what_the_server_accepted(tmp_path):  # type: ignore[no-untyped-def]
    from services.notifications.channels import EmailChannel, OutboundMessage, PermanentFailure, TemporaryFailure

    with SmtpServer() as smtp:
        smtp.refuse.add("gone@example.com")
        journal = tmp_path / "journal.jsonl"
        ch = EmailChannel("127.0.0.1", smtp.port, journal)
        msg = OutboundMessage(str(uuid4()), "staff-1", "staff1@example.com", "fi", "Aihe", "Teksti")
        await ch.send(msg)
        assert smtp.to("staff1@example.com")[0]["Message-ID"] == f"<{msg.notification_id}@koolle.example>"
        # after a restart the journal answers the reconciliation
        again = EmailChannel("127.0.0.1", smtp.port, journal)
        assert (await again.status(msg.notification_id)).state == "sent"
        assert (await again.status(str(uuid4()))).state == "unknown"
        with pytest.raises(PermanentFailure) as refused:
            await ch.send(OutboundMessage(str(uuid4()), "x", "gone@example.com", "fi", "s", "b"))
        assert refused.value.code == "recipient_refused" and "gone" not in str(refused.value)
    with pytest.raises(TemporaryFailure) as down:
        await EmailChannel("127.0.0.1", smtp.port, journal, timeout=1).send(msg)
    assert down.value.code == "provider_unavailable"


async def test_a_plan_message_put_off_for_the_familys_copy_goes_as_soon_as_the_copy_arrives(  # type: ignore[no-untyped-def]
    staff_settings, nc, clean_streams, worker_token
):
    """plan.agreed is handled and its e-mail is due before plan.copy_prepared is stored (two
    consumers): the e-mail waits for the copy, and goes when the copy comes, without waiting out
    its short wait (the clock does not move here at all)."""
    clock = FixedClock(TUESDAY_NOON)
    case_id, plan_id = uuid4(), uuid4()
    family = {"contact_id": "guardian-1", "role": "guardian", "language": "fi", "email": "g1@example.com"}
    with SmtpServer() as smtp:
        cfg = config(smtp, plan_copy_wait_seconds=120)
        async with notifications(staff_settings, clock, cfg, cases=(case_id,)):
            await publish(
                nc,
                PlanAgreed(
                    producer="test",
                    case_id=case_id,
                    plan_id=plan_id,
                    plan_version=1,
                    meeting_id=None,
                    responsible_workers=[{"worker_id": "staff-close", "organisation": "City", "public_service": True}],
                    next_contact_at=TUESDAY_NOON + timedelta(days=30),
                    family_contacts=[family],
                ),
            )

            async def put_off() -> bool:
                ns = await case_notifications(nc, case_id, worker_token)
                return any(n["template"] == "plan_agreed" and n["recipient_id"] == "guardian-1" for n in ns)

            await wait_for(put_off, timeout=10)
            await asyncio.sleep(0.5)  # a dispatch round has seen it without the copy
            assert not smtp.to("g1@example.com"), "sent before the family's copy came"
            await publish(
                nc,
                PlanCopyPrepared(
                    producer="test",
                    case_id=case_id,
                    plan_id=plan_id,
                    plan_version=1,
                    language="fi",
                    html="<html><body>Suunnitelma</body></html>",
                    pdf_base64="JVBERi0xLjQK",
                ),
            )
            await wait_for(lambda: smtp.to("g1@example.com"), timeout=10)
            names = [p.get_filename() for p in smtp.to("g1@example.com")[0].walk() if p.get_filename()]
            assert any(n and n.endswith(".pdf") for n in names), names
