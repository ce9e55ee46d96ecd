"""Contracts of the meetings service: convening (koollekutsuminen) and the joint meeting (yhteinen aika)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from .base import Contract, Event
from .common import ContactPoint, Id, Language, ShortText, StarArea

ParticipantKind = Literal["family", "professional", "referrer"]


class Participant(Contract):
    """Someone invited to the joint meeting."""

    participant_id: Id = Field(description="Person id within the case (family contact id or staff id).")
    kind: ParticipantKind = Field(description="family, professional or referrer.")
    role: ShortText = Field(description="guardian, child, close_worker, psychologist, social_worker, ...")
    contact: ContactPoint | None = Field(default=None, description="How to reach them about the meeting.")


class ConveneMeeting(Contract):
    """``cmd.meetings.convene.v1``: the close worker convenes a joint meeting with the family's consent."""

    command_id: UUID = Field(description="Idempotency key chosen by the staff app.")
    case_id: UUID
    convened_by: Id = Field(description="Staff id of the close worker.")
    starts_at: datetime = Field(description="Start (aware datetime).")
    ends_at: datetime = Field(description="End (aware datetime).")
    room: ShortText = Field(description="Room booked for the meeting.")
    participants: list[Participant] = Field(min_length=1, max_length=30)


class AttendanceRecord(Contract):
    participant_id: Id
    present: bool


class RecordMeetingHeld(Contract):
    """``cmd.meetings.record_held.v1``: the chair records the meeting as held."""

    command_id: UUID
    meeting_id: UUID
    recorded_by: Id
    attendance: list[AttendanceRecord] = Field(min_length=1)
    child_heard: bool = Field(description="Whether the child's own view was heard.")
    responsible_worker_ids: list[Id] = Field(
        min_length=1, max_length=2, description="Responsible worker (vastuutyöntekijä) or pair named by the family."
    )


class MeetingConvened(Event):
    """A joint meeting was convened: participants, time, room, language."""

    event_type: ClassVar[str] = "meeting.convened"
    stream: ClassVar[str] = "MEETINGS"

    meeting_id: UUID = Field(description="Id of the meeting.")
    starts_at: datetime = Field(description="Start (UTC).")
    ends_at: datetime = Field(description="End (UTC).")
    room: str = Field(description="Room booked.")
    language: Language = Field(description="Language of the meeting.")
    interpreter_needed: bool = Field(description="Whether an interpreter is booked.")
    participants: list[Participant] = Field(description="Who is invited, with roles.")


class MeetingHeld(Event):
    """The joint meeting took place (attendance recorded)."""

    event_type: ClassVar[str] = "meeting.held"
    stream: ClassVar[str] = "MEETINGS"

    meeting_id: UUID
    held_at: datetime = Field(description="When it was recorded held (UTC).")
    family_present: bool
    child_heard: bool
    attendance: list[AttendanceRecord]
    responsible_worker_ids: list[str] = Field(description="Responsible worker(s) named by the family.")
    wellbeing_scores: dict[StarArea, int] = Field(
        default_factory=dict, description="Wellbeing star looked at together: area -> score 1-10 (notes stay in the meetings service)."
    )
    municipality: str | None = Field(default=None, description="Municipality, for statistics.")


class MeetingCaseQuery(Contract):
    """``query.meetings.case.v1``: the convening and meetings of one case."""

    case_id: UUID
    requested_by: Id


RsvpAnswer = Literal["accepted", "declined"]


class MeetingResponseRecorded(Event):
    """A participant accepted or declined the invitation."""

    event_type: ClassVar[str] = "meeting.response_recorded"
    stream: ClassVar[str] = "MEETINGS"

    meeting_id: UUID
    participant_id: str
    answer: RsvpAnswer


class MeetingRescheduled(Event):
    """The meeting moved; participants are told and calendar invitations update."""

    event_type: ClassVar[str] = "meeting.rescheduled"
    stream: ClassVar[str] = "MEETINGS"

    meeting_id: UUID
    starts_at: datetime
    ends_at: datetime
    room: str
    reason: ShortText
    participants: list[Participant]
    sequence: int = Field(description="Revision number of the meeting (0 when convened), for calendar updates.")


class MeetingCancelled(Event):
    """The meeting was cancelled with a reason; reminders are cancelled."""

    event_type: ClassVar[str] = "meeting.cancelled"
    stream: ClassVar[str] = "MEETINGS"

    meeting_id: UUID
    reason: ShortText
    participants: list[Participant]
    sequence: int


class MeetingReminderDue(Event):
    """A reminder before the meeting (durable timer that follows reschedules)."""

    event_type: ClassVar[str] = "meeting.reminder_due"
    stream: ClassVar[str] = "MEETINGS"

    meeting_id: UUID
    starts_at: datetime
    participant_ids: list[str]
    sequence: int


EVENTS = (
    (MeetingConvened, "meetings", ("notifications",)),
    (MeetingResponseRecorded, "meetings", ("staff apps",)),
    (MeetingRescheduled, "meetings", ("notifications",)),
    (MeetingCancelled, "meetings", ("notifications",)),
    (MeetingReminderDue, "meetings (durable timer)", ("notifications",)),
    (MeetingHeld, "meetings", ("plans", "staff apps")),
)
REQUESTS = (
    ("cmd.meetings.convene.v1", ConveneMeeting, "Convene a joint meeting."),
    ("cmd.meetings.record_held.v1", RecordMeetingHeld, "Record a meeting as held."),
    ("query.meetings.case.v1", MeetingCaseQuery, "Meetings of one case."),
)
