"""Meetings domain. Plain Python, no I/O.

A :class:`Convening` is opened for every received referral; the close worker then convenes a
:class:`Meeting` with the family and the professionals the situation needs (see :mod:`.slots` for
finding the time). Consent (from the referral service's ledger) gates convening, except in statutory
work; the referrer comes to the first meeting of a service-need assessment only with the family's
consent to invite them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid4

from shared.catalogue import N_
from shared.errors import DomainError

from .slots import Professional, Room


def _err(code: str, field: str, en: str) -> DomainError:
    return DomainError(code, field, en=en)


@dataclass
class Convening:
    """The case as the meetings service knows it: what it needs to convene well."""

    case_id: UUID
    municipality: str
    language: str
    interpreter_needed: bool
    consent_to_convene: bool
    statutory: bool
    opened_at: datetime
    family_contacts: list[dict[str, Any]] = field(default_factory=list)
    status: str = "open"
    deadline: date | None = None  # last day to hold the meeting by (statutory decision / assessment)
    referrer: dict[str, Any] | None = None  # the referrer's contact point, when there is one
    assessment_started_on: date | None = None
    linked_referrals: list[str] = field(default_factory=list)

    def may_convene(self) -> bool:
        """Kept for callers without the ledger: the intake consent or statutory work."""
        return self.consent_to_convene or self.statutory

    def family_ids(self) -> set[str]:
        return {c["contact_id"] for c in self.family_contacts}


# -- consent ----------------------------------------------------------------------------------------
INTAKE = "intake"


def consent_active(rows: Iterable[dict[str, Any]], purpose: str, today: date) -> bool:
    """Whether the family's consent for ``purpose`` is in force.

    ``rows`` are ledger entries {consent_id, purpose, withdrawn, valid_until}. The consent given at
    intake (``referral.received``'s consent_to_convene) is the row ``intake``; a withdrawal for a
    purpose also withdraws the intake consent (the family said no), while a consent given later
    stands on its own.
    """
    for r in rows:
        if r["purpose"] != purpose or r["withdrawn"]:
            continue
        until = r.get("valid_until")
        if until is not None and (date.fromisoformat(until) if isinstance(until, str) else until) < today:
            continue
        return True
    return False


# -- meetings ---------------------------------------------------------------------------------------
@dataclass
class Meeting:
    meeting_id: UUID
    case_id: UUID
    starts_at: datetime
    ends_at: datetime
    room: str
    language: str
    interpreter_needed: bool
    participants: list[dict[str, Any]]
    convened_by: str
    status: str = "convened"  # convened | held | cancelled
    attendance: list[dict[str, Any]] = field(default_factory=list)
    child_heard: bool | None = None
    responsible_worker_ids: list[str] = field(default_factory=list)
    held_at: datetime | None = None
    municipality: str | None = None
    sequence: int = 0
    responses: dict[str, str] = field(default_factory=dict)  # participant_id -> accepted | declined
    first_assessment_meeting: bool = False
    cancel_reason: str | None = None
    wellbeing: list[dict[str, Any]] = field(default_factory=list)  # area, score, note (notes stay here)
    feedback: dict[str, Any] | None = None
    proposal_id: UUID | None = None
    # Feedback after the meeting (cmd.meetings.record_feedback.v1): giver (family | worker) ->
    # {rating, felt_heard}; the latest answer of each giver counts.
    feedback_after: dict[str, dict[str, Any]] = field(default_factory=dict)

    def resources(self) -> list[str]:
        """What the meeting books: the room and every professional (family members are not booked)."""
        return [f"room:{self.room}"] + [f"person:{p['participant_id']}" for p in self.participants if p["kind"] == "professional"]

    def participant_ids(self) -> set[str]:
        return {p["participant_id"] for p in self.participants}

    def participant(self, pid: str) -> dict[str, Any] | None:
        return next((p for p in self.participants if p["participant_id"] == pid), None)

    @property
    def family_present(self) -> bool:
        family = {p["participant_id"] for p in self.participants if p["kind"] == "family"}
        return any(a["present"] and a["participant_id"] in family for a in self.attendance)


def validate_time(now: datetime, starts_at: datetime, ends_at: datetime) -> None:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise _err("naive_datetime", "starts_at", N_("Times need a time zone."))
    if starts_at <= now:
        raise _err("in_past", "starts_at", N_("The meeting must start in the future."))
    if ends_at <= starts_at:
        raise DomainError("ends_before_start", "ends_at")


def check_clash(resources: Iterable[str], busy: set[str]) -> None:
    clash = sorted(set(resources) & busy)
    if clash:
        what = "room" if clash[0].startswith("room:") else "participants"
        raise DomainError("double_booked", what)


def convene(
    convening: Convening | None,
    *,
    now: datetime,
    starts_at: datetime,
    ends_at: datetime,
    room: str,
    participants: list[dict[str, Any]],
    convened_by: str,
    busy: set[str],
    consent: bool | None = None,
    referrer_consent: bool = False,
    roster: dict[str, Professional] | None = None,
    room_info: Room | None = None,
    check_room: bool = False,
    first_assessment_meeting: bool = False,
) -> Meeting:
    """Convene a joint meeting. ``busy`` holds the resources already booked at an overlapping time.

    ``consent``: whether the family's convene_team consent is in force (None: the intake flag).
    ``roster``: when given, every professional must be in it (and every family member among the
    case's family contacts); contact points missing from the command are filled from it.
    """
    if convening is None:
        raise DomainError("unknown_case", "case_id")
    allowed = convening.statutory or (convening.consent_to_convene if consent is None else consent)
    if not allowed:
        raise DomainError("consent_missing", "case_id")
    validate_time(now, starts_at, ends_at)
    ids = [p["participant_id"] for p in participants]
    if len(set(ids)) != len(ids):
        raise DomainError("duplicate_participant", "participants")
    if not any(p["kind"] == "family" for p in participants):
        raise DomainError("family_missing", "participants")
    if not any(p["kind"] == "professional" for p in participants):
        raise DomainError("professional_missing", "participants")
    participants = [dict(p) for p in participants]
    if roster is not None:
        family = {c["contact_id"]: c for c in convening.family_contacts}
        for p in participants:
            pid = p["participant_id"]
            if p["kind"] == "professional":
                pro = roster.get(pid)
                if pro is None or not pro.active:
                    raise _err("unknown_participant", "participants", N_("A professional is not in the roster."))
                if p.get("contact") is None and pro.contact:
                    p["contact"] = pro.contact
            elif p["kind"] == "family":
                if pid not in family:
                    raise _err("unknown_participant", "participants", N_("A family member is not among the case's contacts."))
                if p.get("contact") is None:
                    p["contact"] = family[pid]
            elif p["kind"] == "referrer":
                if convening.referrer is None or pid != convening.referrer["contact_id"]:
                    raise _err("unknown_participant", "participants", N_("Not the case's referrer."))
                if not referrer_consent:
                    raise DomainError("referrer_consent_missing", "participants")
                if p.get("contact") is None:
                    p["contact"] = convening.referrer
    if check_room:
        if room_info is None or not room_info.active:
            raise DomainError("unknown_room", "room")
        if room_info.capacity < len(participants) + (1 if convening.interpreter_needed else 0):
            raise DomainError("room_too_small", "room")
    interpreter = convening.interpreter_needed or convening.language == "other"
    if roster is not None:
        interpreter = interpreter or any(
            convening.language not in roster[p["participant_id"]].languages for p in participants if p["kind"] == "professional"
        )
    meeting = Meeting(
        meeting_id=uuid4(),
        case_id=convening.case_id,
        starts_at=starts_at,
        ends_at=ends_at,
        room=room,
        language=convening.language,
        interpreter_needed=interpreter,
        participants=participants,
        convened_by=convened_by,
        municipality=convening.municipality,
        first_assessment_meeting=first_assessment_meeting,
    )
    check_clash(meeting.resources(), busy)
    return meeting


def is_first_assessment_meeting(convening: Convening, meetings: Iterable[Meeting]) -> bool:
    """The next meeting is the first of a service-need assessment: one has started and no meeting
    since its start is convened or held."""
    if convening.assessment_started_on is None:
        return False
    from shared.calendar import helsinki_date

    return not any(m.status != "cancelled" and helsinki_date(m.starts_at) >= convening.assessment_started_on for m in meetings)


def _open(meeting: Meeting | None, now: datetime | None = None) -> Meeting:
    if meeting is None:
        raise DomainError("unknown_meeting", "meeting_id")
    if meeting.status != "convened":
        raise DomainError("not_open", "meeting_id")
    return meeting


def respond(meeting: Meeting | None, participant_id: str, answer: str) -> tuple[Meeting, bool]:
    """Record an RSVP. Returns (meeting, changed): answering the same again changes nothing; a
    participant may change their answer while the meeting is open."""
    m = _open(meeting)
    if participant_id not in m.participant_ids():
        raise _err("unknown_participant", "participant_id", N_("Not invited to this meeting."))
    if m.responses.get(participant_id) == answer:
        return m, False
    m.responses[participant_id] = answer
    return m, True


def reschedule(
    m: Meeting | None, *, now: datetime, starts_at: datetime, ends_at: datetime, room: str | None, busy: set[str]
) -> Meeting:
    m = _open(m)
    validate_time(now, starts_at, ends_at)
    m.starts_at, m.ends_at = starts_at, ends_at
    if room:
        m.room = room
    check_clash(m.resources(), busy)
    m.sequence += 1
    # Everyone is asked again about the new time.
    m.responses = {}
    return m


def replace_participant(m: Meeting | None, *, old_id: str, new: dict[str, Any], busy: set[str]) -> Meeting:
    m = _open(m)
    if old_id not in m.participant_ids():
        raise _err("unknown_participant", "participant_id", N_("Not invited to this meeting."))
    if new["participant_id"] in m.participant_ids():
        raise DomainError("duplicate_participant", "participants")
    check_clash([f"person:{new['participant_id']}"], busy)
    m.participants = [new if p["participant_id"] == old_id else p for p in m.participants]
    m.responses.pop(old_id, None)
    m.sequence += 1
    return m


def cancel(m: Meeting | None, *, reason: str) -> Meeting:
    m = _open(m)
    m.status = "cancelled"
    m.cancel_reason = reason
    m.sequence += 1
    return m


def record_held(
    meeting: Meeting | None,
    *,
    now: datetime,
    attendance: list[dict[str, Any]],
    child_heard: bool,
    responsible_worker_ids: list[str],
    wellbeing: list[dict[str, Any]] | None = None,
    feedback: dict[str, Any] | None = None,
) -> Meeting:
    if meeting is None:
        raise DomainError("unknown_meeting", "meeting_id")
    if meeting.status == "cancelled":
        raise DomainError("cancelled", "meeting_id")
    if meeting.status != "convened":
        raise DomainError("already_held", "meeting_id")
    if now < meeting.starts_at:
        raise DomainError("not_started", "meeting_id")
    known = meeting.participant_ids()
    if any(a["participant_id"] not in known for a in attendance):
        raise _err("unknown_participant", "attendance", N_("Attendance names someone not invited."))
    professionals = {p["participant_id"] for p in meeting.participants if p["kind"] == "professional"}
    if not set(responsible_worker_ids) <= professionals:
        raise DomainError("responsible_not_professional", "responsible_worker_ids")
    areas = [w["area"] for w in wellbeing or []]
    if len(set(areas)) != len(areas):
        raise DomainError("duplicate_area", "wellbeing")
    meeting.status = "held"
    meeting.attendance = attendance
    meeting.child_heard = child_heard
    meeting.responsible_worker_ids = responsible_worker_ids
    meeting.held_at = now
    meeting.wellbeing = list(wellbeing or [])
    meeting.feedback = feedback
    return meeting


def record_feedback(meeting: Meeting | None, *, given_by: str, rating: int, felt_heard: bool) -> Meeting:
    """Feedback on a meeting that was held; the same giver answering again replaces its answer."""
    if meeting is None:
        raise DomainError("unknown_meeting", "meeting_id")
    if meeting.status != "held":
        raise DomainError("not_held", "meeting_id")
    meeting.feedback_after[given_by] = {"rating": rating, "felt_heard": felt_heard}
    return meeting


ADOPTION_STAGES = ("not_discussed", "goal_not_planned", "planning", "trial", "rooted")
