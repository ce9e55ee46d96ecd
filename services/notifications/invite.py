"""iCalendar invitations for meetings (RFC 5545 / iTIP). Plain Python, no I/O.

One meeting is one UID for its whole life: a reschedule sends the same UID with a higher SEQUENCE
(METHOD:REQUEST), a cancellation sends METHOD:CANCEL with STATUS:CANCELLED, so calendar clients
update or remove the entry instead of adding a second one.

Times carry ``TZID=Europe/Helsinki`` with its VTIMEZONE, so a calendar shows the meeting at the
Helsinki time agreed, across daylight-saving changes. The ORGANIZER is the mailbox the
notifications service reads (``KOOLLE_NOTIFICATIONS_REPLY_ADDRESS``): Accept, Decline and Tentative
replies (iMIP, METHOD:REPLY) come back there and are recorded (``imip.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from icalendar import Calendar, Event, vCalAddress, vText

from shared.clock import HELSINKI


def meeting_uid(meeting_id: str) -> str:
    return f"meeting-{meeting_id}@koolle.example"


def build_invite(
    meeting: dict[str, Any], *, summary: str, description: str, attendee_email: str, organizer_email: str, now: datetime
) -> bytes:
    method = meeting.get("method", "REQUEST")
    cal = Calendar()
    cal.add("prodid", "-//Koolle//notifications//EN")
    cal.add("version", "2.0")
    cal.add("method", method)
    ev = Event()
    ev.add("uid", meeting_uid(str(meeting["meeting_id"])))
    ev.add("sequence", int(meeting.get("sequence", 0)))
    ev.add("dtstamp", now.astimezone(UTC))
    if meeting.get("starts_at"):
        ev.add("dtstart", datetime.fromisoformat(meeting["starts_at"]).astimezone(HELSINKI))
    if meeting.get("ends_at"):
        ev.add("dtend", datetime.fromisoformat(meeting["ends_at"]).astimezone(HELSINKI))
    ev.add("summary", summary)
    ev.add("description", description)
    if meeting.get("room"):
        ev["location"] = vText(meeting["room"])
    ev.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    organizer = vCalAddress(f"mailto:{organizer_email}")
    organizer.params["CN"] = vText("Koolle")
    ev["organizer"] = organizer
    attendee = vCalAddress(f"mailto:{attendee_email}")
    attendee.params["ROLE"] = vText("REQ-PARTICIPANT")
    attendee.params["RSVP"] = vText("TRUE")
    ev.add("attendee", attendee, encode=0)
    cal.add_component(ev)
    cal.add_missing_timezones()  # the VTIMEZONE of Europe/Helsinki that TZID refers to
    return cal.to_ical()
