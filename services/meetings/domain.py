"""Meetings domain. Plain Python, no I/O.

A :class:`Convening` is opened for every received referral; the close worker then convenes a
:class:`Meeting` with the family and the professionals the situation needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from shared.errors import DomainError


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

    def may_convene(self) -> bool:
        """Voluntary work needs the family's consent; statutory work (child protection) does not."""
        return self.consent_to_convene or self.statutory


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
    status: str = "convened"  # convened | held
    attendance: list[dict[str, Any]] = field(default_factory=list)
    child_heard: bool | None = None
    responsible_worker_ids: list[str] = field(default_factory=list)
    held_at: datetime | None = None

    def resources(self) -> list[str]:
        """What the meeting books: the room and every professional (family members are not booked)."""
        return [f"room:{self.room}"] + [
            f"person:{p['participant_id']}" for p in self.participants if p["kind"] == "professional"
        ]

    def participant_ids(self) -> set[str]:
        return {p["participant_id"] for p in self.participants}

    @property
    def family_present(self) -> bool:
        family = {p["participant_id"] for p in self.participants if p["kind"] == "family"}
        return any(a["present"] and a["participant_id"] in family for a in self.attendance)


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
) -> Meeting:
    """Convene a joint meeting. ``busy`` holds the resources already booked at an overlapping time."""
    if convening is None:
        raise DomainError("unknown_case", "case_id", en="No open case with this id.", fi="Tapausta ei löydy.", sv="Ärendet finns inte.")
    if not convening.may_convene():
        raise DomainError(
            "consent_missing",
            "case_id",
            en="The family has not consented to convening the team.",
            fi="Perhe ei ole antanut lupaa koollekutsumiseen.",
            sv="Familjen har inte gett samtycke till sammankallandet.",
        )
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise DomainError("naive_datetime", "starts_at", en="Times need a time zone.", fi="Ajalle tarvitaan aikavyöhyke.", sv="Tiden behöver en tidszon.")
    if starts_at <= now:
        raise DomainError("in_past", "starts_at", en="The meeting must start in the future.", fi="Tapaamisen on alettava tulevaisuudessa.", sv="Mötet måste börja i framtiden.")
    if ends_at <= starts_at:
        raise DomainError("ends_before_start", "ends_at", en="The meeting must end after it starts.", fi="Tapaamisen on päätyttävä alkamisen jälkeen.", sv="Mötet måste sluta efter att det börjat.")
    ids = [p["participant_id"] for p in participants]
    if len(set(ids)) != len(ids):
        raise DomainError("duplicate_participant", "participants", en="A participant is listed twice.", fi="Osallistuja on listattu kahdesti.", sv="En deltagare finns två gånger.")
    if not any(p["kind"] == "family" for p in participants):
        raise DomainError("family_missing", "participants", en="The family must be invited.", fi="Perhe on kutsuttava.", sv="Familjen måste bjudas in.")
    if not any(p["kind"] == "professional" for p in participants):
        raise DomainError("professional_missing", "participants", en="At least one professional is needed.", fi="Tarvitaan vähintään yksi ammattilainen.", sv="Minst en yrkesperson behövs.")
    meeting = Meeting(
        meeting_id=uuid4(),
        case_id=convening.case_id,
        starts_at=starts_at,
        ends_at=ends_at,
        room=room,
        language=convening.language,
        interpreter_needed=convening.interpreter_needed,
        participants=participants,
        convened_by=convened_by,
    )
    clash = sorted(set(meeting.resources()) & busy)
    if clash:
        what = "room" if clash[0].startswith("room:") else "participants"
        raise DomainError("double_booked", what, en="Already booked at that time.", fi="Varattu jo samaan aikaan.", sv="Redan bokad vid samma tid.")
    return meeting


def record_held(
    meeting: Meeting | None,
    *,
    now: datetime,
    attendance: list[dict[str, Any]],
    child_heard: bool,
    responsible_worker_ids: list[str],
) -> Meeting:
    if meeting is None:
        raise DomainError("unknown_meeting", "meeting_id", en="No such meeting.", fi="Tapaamista ei löydy.", sv="Mötet finns inte.")
    if meeting.status != "convened":
        raise DomainError("already_held", "meeting_id", en="The meeting is already recorded held.", fi="Tapaaminen on jo kirjattu pidetyksi.", sv="Mötet är redan registrerat.")
    if now < meeting.starts_at:
        raise DomainError("not_started", "meeting_id", en="The meeting has not started yet.", fi="Tapaaminen ei ole vielä alkanut.", sv="Mötet har inte börjat ännu.")
    known = meeting.participant_ids()
    unknown = [a["participant_id"] for a in attendance if a["participant_id"] not in known]
    if unknown:
        raise DomainError("unknown_participant", "attendance", en="Attendance names someone not invited.", fi="Läsnäolossa on kutsumaton henkilö.", sv="Närvaron anger någon som inte bjudits in.")
    professionals = {p["participant_id"] for p in meeting.participants if p["kind"] == "professional"}
    if not set(responsible_worker_ids) <= professionals:
        raise DomainError(
            "responsible_not_professional",
            "responsible_worker_ids",
            en="The responsible worker must be one of the professionals present.",
            fi="Vastuutyöntekijän on oltava tapaamisen ammattilainen.",
            sv="Den ansvariga arbetaren måste vara en av yrkespersonerna.",
        )
    meeting.status = "held"
    meeting.attendance = attendance
    meeting.child_heard = child_heard
    meeting.responsible_worker_ids = responsible_worker_ids
    meeting.held_at = now
    return meeting
