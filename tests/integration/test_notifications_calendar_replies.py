"""Calendar invitations can be answered (issue 21, item 3): the real meetings and notifications
services, a real SMTP server for the invitations (aiosmtpd), and the organizer mailbox as a Maildir
that a second real SMTP server (aiosmtpd's Maildir handler) delivers the participants' replies to,
as Outlook, Gmail and Apple Calendar write them (tests/samples/imip/)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from icalendar import Calendar

from infra.natsserver import free_port
from services.notifications.imip import read_reply
from shared.client import call
from shared.clock import HELSINKI
from shared.contracts.referral import ReferralAssigned, ReferralReceived
from tests.conftest import wait_for
from tests.integration.test_notifications_roster_contacts import roster_email
from tests.support.imip_samples import reply_mail
from tests.support.notifications_fakes import SmtpServer
from tests.support.staff import publish_js
from tests.support.system import EventLog, running

pytestmark = [pytest.mark.integration]

ORGANIZER = "kutsut@koolle.example"
TEAM = "testila-family-centre"
GUARDIAN = {"contact_id": "guardian-1", "role": "guardian", "language": "fi", "email": "maija.testinen@example.com"}


def test_each_clients_reply_is_read_with_its_answer() -> None:
    uid = "meeting-7d0b6c1e-0000-4000-8000-000000000001@koolle.example"
    for client, answer in (("outlook", "accepted"), ("gmail", "declined"), ("apple", "tentative")):
        reply = read_reply(reply_mail(client, uid=uid, sequence=1, attendee="Pekka@Example.com", organizer=ORGANIZER))
        assert (reply.meeting_id, reply.sequence, reply.attendee, reply.answer) == (  # type: ignore[union-attr]
            "7d0b6c1e-0000-4000-8000-000000000001",
            1,
            "pekka@example.com",
            answer,
        )
    not_ours = read_reply(reply_mail("gmail", uid="abc@google.com", sequence=0, attendee="p@example.com", organizer=ORGANIZER))
    assert getattr(not_ours, "reason", None) == "not_our_invitation"
    assert getattr(read_reply(b"Subject: hello\r\n\r\nJust a mail.\r\n"), "reason", None) == "not_a_reply"


async def test_accept_decline_and_tentative_from_three_calendars_become_the_participants_answers(
    settings: Any, nc: Any, clean_streams: Any, identity: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    maildir = tmp_path / "kutsut"
    inbound = Controller(Mailbox(str(maildir)), hostname="127.0.0.1", port=free_port())  # the county's mail server
    inbound.start()
    log = await EventLog().attach(nc, ("meeting.>", "notification.>"))
    try:
        with SmtpServer() as smtp:
            for key, value in {
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(smtp.port),
                "REPLY_ADDRESS": ORGANIZER,
                "REPLY_MAILDIR": str(maildir),
                "REPLY_POLL_SECONDS": "0.1",
                "RECEIPT_POLL_SECONDS": "0",
            }.items():
                monkeypatch.setenv(f"KOOLLE_NOTIFICATIONS_{key}", value)
            async with running(identity.settings(settings), "meetings", "notifications") as svcs:
                case_id = uuid4()
                received = ReferralReceived(
                    producer="test",
                    case_id=case_id,
                    referral_id=uuid4(),
                    submission_id=f"s-{uuid4()}",
                    channel="concern_with_family",
                    municipality="Testilä",
                    received_at=datetime.now(UTC),
                    language="fi",
                    interpreter_needed=False,
                    urgent=False,
                    statutory=False,
                    child_count=1,
                    consent_to_convene=True,
                    contacts=[GUARDIAN],
                    team_id=TEAM,  # the routing's team (the services take it from here)
                )
                assigned = ReferralAssigned(
                    producer="test", case_id=case_id, referral_id=received.referral_id, team_id=TEAM, municipality="Testilä"
                )
                for ev in (received, assigned):
                    await publish_js(nc.jetstream(), ev)

                async def on_team() -> bool:
                    async with svcs["meetings"].uow() as uow:
                        return await uow.meetings.convening(case_id) is not None  # type: ignore[attr-defined]

                await wait_for(on_team, timeout=30)
                day = datetime.now(HELSINKI).date() + timedelta(days=7)
                starts = datetime(day.year, day.month, day.day, 12, 0, tzinfo=HELSINKI)

                async def convene() -> Any:
                    reply = await call(
                        nc,
                        "cmd.meetings.convene.v2",
                        {
                            "command_id": str(uuid4()),
                            "case_id": str(case_id),
                            "starts_at": starts.isoformat(),
                            "ends_at": (starts + timedelta(hours=1)).isoformat(),
                            "room": "Room 1",
                            "participants": [
                                {"participant_id": "guardian-1", "kind": "family", "role": "guardian"},
                                {"participant_id": "staff-close", "kind": "professional", "role": "close_worker"},
                                {"participant_id": "staff-psy", "kind": "professional", "role": "psychologist"},
                            ],
                        },
                        token=identity.worker("staff-close", TEAM, "Testilä"),
                    )
                    return reply if reply.ok else None

                convened = await wait_for(convene, timeout=30)  # once the team has reached the case
                meeting_id = convened.id
                people = {
                    "guardian-1": GUARDIAN["email"],
                    "staff-close": roster_email("staff-close"),  # reached at the roster's work address
                    "staff-psy": roster_email("staff-psy"),
                }
                await wait_for(lambda: all(smtp.to(a) for a in people.values()), timeout=30)

                # The invitation: replies go to the mailbox we read; times in Helsinki time with the zone.
                invite = next(p for p in smtp.to(GUARDIAN["email"])[0].walk() if p.get_content_type() == "text/calendar")
                raw_ics = invite.get_payload(decode=True).decode()
                assert f"ORGANIZER;CN=Koolle:mailto:{ORGANIZER}" in raw_ics
                assert "DTSTART;TZID=Europe/Helsinki:" in raw_ics and "BEGIN:VTIMEZONE" in raw_ics
                [vevent] = Calendar.from_ical(raw_ics).walk("VEVENT")
                assert vevent.decoded("DTSTART") == starts
                uid = str(vevent["UID"])

                # Each participant answers from their own calendar; the mail reaches our mailbox over SMTP.
                answers = {"guardian-1": "outlook", "staff-psy": "gmail", "staff-close": "apple"}
                for person, client in answers.items():
                    mail = reply_mail(client, uid=uid, sequence=0, attendee=people[person], organizer=ORGANIZER)
                    await aiosmtplib.send(
                        mail, sender=people[person], recipients=[ORGANIZER], hostname="127.0.0.1", port=inbound.port
                    )

                async def responses() -> dict[str, str]:
                    async with svcs["meetings"].uow() as uow:
                        return (await uow.meetings.meeting(meeting_id)).responses  # type: ignore[attr-defined]

                expected = {"guardian-1": "accepted", "staff-psy": "declined", "staff-close": "tentative"}
                await wait_for(lambda: _equal(responses(), expected), timeout=30)
                recorded = await wait_for(
                    lambda: len(log.of("meeting.response_recorded.v2")) == 3 and log.of("meeting.response_recorded.v2"),
                    timeout=30,
                )
                # Every answer is published in v2 (routed), the maybe too; the retired v1 is not published.
                assert sorted((e["participant_id"], e["answer"]) for e in recorded) == [
                    ("guardian-1", "accepted"),
                    ("staff-close", "tentative"),
                    ("staff-psy", "declined"),
                ]
                assert not log.of("meeting.response_recorded.v1")
                answered = log.of("notification.invitation_answered")
                assert all(set(e) >= {"meeting_id", "participant_id", "answer", "sequence"} for e in answered)
                assert not any("@" in str(v) for e in answered for v in e.values())  # ids only, never an address

                # The same reply delivered twice (a mail server's retry) is recorded once; all are read.
                again = reply_mail("outlook", uid=uid, sequence=0, attendee=GUARDIAN["email"], organizer=ORGANIZER)
                await aiosmtplib.send(
                    again, sender=GUARDIAN["email"], recipients=[ORGANIZER], hostname="127.0.0.1", port=inbound.port
                )

                # All four mails read and marked Seen (moved to cur/ with the S flag), none left new.
                def seen() -> bool:
                    new, cur = list((maildir / "new").iterdir()), list((maildir / "cur").iterdir())
                    return not new and len(cur) == 4 and all(f.name.endswith(",S") for f in cur)

                await wait_for(seen, timeout=30)
                assert len(log.of("notification.invitation_answered")) == 3

                # A maybe that later becomes a yes (a new mail, its own Message-ID) is published again.
                decided = reply_mail("outlook", uid=uid, sequence=0, attendee=people["staff-close"], organizer=ORGANIZER)
                decided = decided.replace(b"Message-ID: <", b"Message-ID: <later-")
                await aiosmtplib.send(
                    decided, sender=people["staff-close"], recipients=[ORGANIZER], hostname="127.0.0.1", port=inbound.port
                )
                expected["staff-close"] = "accepted"
                await wait_for(lambda: _equal(responses(), expected), timeout=30)
                await wait_for(lambda: len(log.of("meeting.response_recorded.v2")) == 4, timeout=30)
                assert log.of("meeting.response_recorded.v2")[-1]["answer"] == "accepted"
                assert not log.of("meeting.response_recorded.v1")
    finally:
        inbound.stop()


async def _equal(current: Any, expected: dict[str, str]) -> bool:
    return await current == expected
