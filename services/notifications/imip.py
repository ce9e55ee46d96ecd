"""Reading calendar replies (iMIP, RFC 6047; iTIP METHOD:REPLY, RFC 5546). Plain Python, no I/O.

A participant who presses Accept, Decline or Maybe in Outlook, Gmail or Apple Calendar sends an
e-mail to the invitation's ORGANIZER with a ``text/calendar; method=REPLY`` part (Outlook and Apple
Mail also attach it as an .ics file). The part holds the VEVENT's UID and SEQUENCE and one ATTENDEE
with its PARTSTAT. Parsing is done by ``icalendar``; this module only picks out what we record.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.message import EmailMessage

from icalendar import Calendar

ANSWERS = {"ACCEPTED": "accepted", "DECLINED": "declined", "TENTATIVE": "tentative"}
_CALENDAR_TYPES = ("text/calendar", "application/ics")
_UID_PREFIX, _UID_SUFFIX = "meeting-", "@koolle.example"


@dataclass(frozen=True)
class CalendarReply:
    """One attendee's answer to one of our invitations."""

    message_key: str  # the mail's Message-ID (or a digest of it): a reply is recorded once
    meeting_id: str
    sequence: int
    attendee: str  # the attendee's address, lower-case: matched to the participant, never stored
    answer: str  # accepted | declined | tentative
    answered_at: datetime | None


@dataclass(frozen=True)
class Unreadable:
    """A mail in the reply mailbox that is not a reply to one of our invitations. ``reason`` is a code."""

    message_key: str
    reason: str  # not_a_reply | not_our_invitation | no_answer


def message_key(raw: bytes, msg: EmailMessage) -> str:
    mid = str(msg.get("Message-ID") or "").strip()
    return hashlib.sha256((mid or raw.decode("latin-1")).encode("utf-8", "replace")).hexdigest()


def meeting_id_of(uid: str) -> str | None:
    uid = uid.strip()
    if uid.startswith(_UID_PREFIX) and uid.endswith(_UID_SUFFIX):
        return uid[len(_UID_PREFIX) : -len(_UID_SUFFIX)]
    return None


def read_reply(raw: bytes) -> CalendarReply | Unreadable:
    """The answer a reply mail carries (its first calendar part with METHOD:REPLY)."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    key = message_key(raw, msg)
    reason = "not_a_reply"
    for part in msg.walk():
        if part.get_content_type() not in _CALENDAR_TYPES:
            continue
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        try:
            cal = Calendar.from_ical(payload)
        except ValueError:
            continue
        if str(cal.get("METHOD", "")).upper() != "REPLY":
            continue
        for ev in cal.walk("VEVENT"):
            meeting_id = meeting_id_of(str(ev.get("UID", "")))
            if meeting_id is None:
                reason = "not_our_invitation"
                continue
            attendees = ev.get("ATTENDEE")
            for att in attendees if isinstance(attendees, list) else [attendees] if attendees is not None else []:
                answer = ANSWERS.get(str(att.params.get("PARTSTAT", "")).upper())
                address = _address(str(att)) or _address(str(att.params.get("EMAIL", "")))
                if answer is None or not address:
                    reason = "no_answer"
                    continue
                return CalendarReply(key, meeting_id, int(ev.get("SEQUENCE", 0)), address, answer, _stamp(ev.get("DTSTAMP")))
            reason = "no_answer" if reason == "not_a_reply" else reason
    return Unreadable(key, reason)


def _address(value: str) -> str:
    value = value.strip()
    if value.lower().startswith("mailto:"):
        value = value[7:]
    return value.strip().lower() if "@" in value else ""


def _stamp(prop: object) -> datetime | None:
    dt = getattr(prop, "dt", None)
    if isinstance(dt, datetime):
        return dt.astimezone(UTC) if dt.tzinfo else dt.replace(tzinfo=UTC)
    if isinstance(dt, date):
        return datetime(dt.year, dt.month, dt.day, tzinfo=UTC)
    return None
