"""Contracts of the meetings service: convening (koollekutsuminen) and the joint meeting (yhteinen tapaaminen; the practice model calls it yhteinen aika)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import Field, StringConstraints

from shared.policy import Access

from .audit import CaseAccessLogQuery
from .base import MULTILINE, Contract, Event
from .common import STAR_SCALE, ContactPoint, Id, Language, ShortText, StarArea
from .personal import Personal
from .plans import ResponsibleWorker
from .versions import successor

ParticipantKind = Literal["family", "professional", "referrer"]


class Participant(Contract):
    """Someone invited to the joint meeting."""

    participant_id: Id = Field(description="Person id within the case (family contact id or staff id).")
    kind: ParticipantKind = Field(description="family, professional or referrer.")
    role: ShortText = Field(description="guardian, child, close_worker, psychologist, social_worker, ...")
    contact: ContactPoint | None = Field(default=None, description="How to reach them about the meeting.")


class ConveneMeeting(Contract):
    """``cmd.meetings.convene.v1``: the close worker convenes a joint meeting with the family's consent.

    Professionals must be in the roster, family members among the case's family contacts, the room
    in the roster; the referrer needs the family's invite_referrer consent and is added by the
    service to the first meeting of a service-need assessment when the family consented. A time
    outside someone's working hours is allowed and named in the reply (``outside_working_hours``)."""

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


class WellbeingScore(Contract):
    """One area of the wellbeing star looked at together (score 1 = serious worry .. 10 = all is well)."""

    area: StarArea
    score: int = Field(ge=STAR_SCALE[0], le=STAR_SCALE[1], description="1 (serious worry) .. 10 (all is well).")
    note: Annotated[str, MULTILINE] | None = Field(
        default=None,
        max_length=2000,
        description="Optional note (free text: newline and tab allowed); stays in the meetings service.",
    )


class FamilyFeedback(Contract):
    """The family's feedback on the joint meeting."""

    rating: int = Field(ge=1, le=5, description="1 (poor) .. 5 (very good).")
    comment: Annotated[str, MULTILINE] | None = Field(
        default=None, max_length=2000, description="Free text (newline and tab allowed); stays in the meetings service."
    )


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
    wellbeing: list[WellbeingScore] = Field(default_factory=list, max_length=6, description="Wellbeing star, one entry per area.")
    feedback: FamilyFeedback | None = Field(default=None, description="The family's feedback.")


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
    participants: Personal[list[Participant]] = Field(description="Who is invited, with roles.")
    municipality: str | None = Field(default=None, description="Municipality of the case.")
    first_assessment_meeting: bool = Field(default=False, description="The first meeting of a service-need assessment.")
    proposal_id: UUID | None = Field(default=None, description="The accepted proposal, when convened from one.")


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
        default_factory=dict,
        description="Wellbeing star looked at together: area -> score 1-10 (notes stay in the meetings service).",
    )
    municipality: str | None = Field(default=None, description="Municipality, for statistics.")


class MeetingCaseQuery(Contract):
    """``query.meetings.case.v1``: the convening and meetings of one case (audited)."""

    case_id: UUID
    requested_by: Id = Field(description="Staff id of the reader (written to the audit log).")
    purpose: ShortText = Field(default="case work", description="Why the data is read (written to the audit log).")


RsvpAnswer = Literal["accepted", "declined"]

ResponseAnswer = Literal["accepted", "declined", "tentative"]
"""A participant's answer as the meeting keeps it: ``tentative`` (a calendar's "maybe") comes only
from calendar replies (``notification.invitation_answered``); it is shown in the meeting's
``responses`` and published in ``meeting.response_recorded.v2`` (the retired v1 had no such answer)."""


class MeetingResponseRecorded(Event):
    """A participant accepted or declined the invitation (vastasi kutsuun). Retired: its successor
    ``meeting.response_recorded.v2`` is published on routed subjects and also carries tentative answers."""

    event_type: ClassVar[str] = "meeting.response_recorded"
    stream: ClassVar[str] = "MEETINGS"

    meeting_id: UUID
    participant_id: str
    answer: RsvpAnswer


class MeetingResponseRecordedV2(Event):
    """A participant answered the invitation (vastasi kutsuun): accepted, declined or tentative (a
    calendar's "maybe", from Outlook, Gmail or Apple Calendar). Published with every answer that
    changed, on the routed subjects ``meeting.response_recorded.v2.<municipality>.<team>``; it
    replaces v1, which had accepted and declined answers only and one subject for all teams."""

    event_type: ClassVar[str] = "meeting.response_recorded"
    version: ClassVar[int] = 2
    stream: ClassVar[str] = "MEETINGS"
    routed: ClassVar[bool] = True

    meeting_id: UUID = Field(description="The meeting answered.")
    participant_id: str = Field(description="The participant who answered (staff id or the family member's contact id).")
    answer: ResponseAnswer = Field(description="accepted, declined or tentative (a calendar's maybe: no final answer yet).")


MeetingResponseRecorded.public_form = MeetingResponseRecordedV2  # retired by hand: v2 is routed and has tentative


class MeetingRescheduled(Event):
    """The meeting moved; participants are told and calendar invitations update."""

    event_type: ClassVar[str] = "meeting.rescheduled"
    stream: ClassVar[str] = "MEETINGS"

    meeting_id: UUID
    starts_at: datetime
    ends_at: datetime
    room: str
    reason: ShortText
    participants: Personal[list[Participant]]
    sequence: int = Field(description="Revision number of the meeting (0 when convened), for calendar updates.")


class MeetingCancelled(Event):
    """The meeting was cancelled with a reason; reminders are cancelled."""

    event_type: ClassVar[str] = "meeting.cancelled"
    stream: ClassVar[str] = "MEETINGS"

    meeting_id: UUID
    reason: ShortText
    participants: Personal[list[Participant]]
    sequence: int


class MeetingReminderDue(Event):
    """A reminder before the meeting (durable timer that follows reschedules)."""

    event_type: ClassVar[str] = "meeting.reminder_due"
    stream: ClassVar[str] = "MEETINGS"

    meeting_id: UUID
    starts_at: datetime
    participant_ids: list[str]
    sequence: int


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
HHMM = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class WorkingHours(Contract):
    """Working time on one weekday, Helsinki local time (e.g. mon 08:00-16:00)."""

    day: Weekday
    start: HHMM
    end: HHMM


class UpsertProfessional(Contract):
    """``cmd.meetings.upsert_professional.v1``: add or change a professional in the family-centre roster."""

    command_id: UUID
    recorded_by: Id
    professional_id: Id = Field(description="Staff id.")
    municipality: ShortText
    roles: list[ShortText] = Field(
        min_length=1,
        max_length=10,
        description="family_worker, home_help, family_counsellor, psychologist, social_counsellor, social_worker, child_health_nurse, early_childhood_education, school_social_worker, close_worker, ...",
    )
    languages: list[Language] = Field(min_length=1, max_length=4)
    unit: ShortText = Field(description="Unit (service) the professional works in; statistics count per unit.")
    team: ShortText | None = Field(default=None, description="Family-centre team id.")
    working_hours: list[WorkingHours] = Field(default_factory=list, description="Empty: Mon-Fri 08:00-16:00.")
    contact: ContactPoint | None = None
    active: bool = True
    successor_id: Id | None = Field(
        default=None,
        description="With active false: the professional (an active roster entry) who takes over the plans this one is "
        "responsible for. Without it each handover stays open until the team names the new worker "
        "(cmd.plans.complete_handover.v1).",
    )
    name: ShortText | None = Field(
        default=None, description="Full name as families see it in messages and the plan, e.g. 'Anna Virtanen'."
    )
    title: dict[Language, ShortText] = Field(
        default_factory=dict,
        description="Job title by language, e.g. {'fi': 'varhaiskasvatuksen opettaja'}; where missing, the "
        "glossary's name of the professional's role (docs/glossary.md).",
    )


class UpsertRoom(Contract):
    """``cmd.meetings.upsert_room.v1``: add or change a meeting room."""

    command_id: UUID
    recorded_by: Id
    room_id: ShortText
    municipality: ShortText
    capacity: int = Field(ge=1, le=200)
    location: ShortText = Field(description="The place as families know it, e.g. 'Porvoon perhekeskus, 2. krs'.")
    active: bool = True
    address: ShortText | None = Field(default=None, description="Street address, e.g. 'Piispankatu 1, 06100 Porvoo'.")
    names: dict[Language, ShortText] = Field(
        default_factory=dict,
        description="The place's name in other languages, e.g. {'sv': 'Borgå familjecenter, 2 vån.'}; location where missing.",
    )


class RosterQuery(Contract):
    """``query.meetings.roster.v1``: the roster of one municipality."""

    municipality: ShortText
    requested_by: Id


class TimeWindow(Contract):
    starts_at: datetime
    ends_at: datetime


class ProposeMeeting(Contract):
    """``cmd.meetings.propose.v1``: find people for the roles asked and the earliest common slot."""

    command_id: UUID
    case_id: UUID
    requested_by: Id = Field(description="Staff id of the close worker / social worker asking; invited too.")
    roles: list[ShortText] = Field(default_factory=list, max_length=10, description="Roles the situation needs.")
    participant_ids: list[Id] = Field(
        default_factory=list, max_length=10, description="Professionals already chosen (roster ids)."
    )
    family_availability: list[TimeWindow] = Field(
        default_factory=list, max_length=50, description="When the family can come; empty: any working time."
    )
    duration_minutes: int = Field(default=60, ge=15, le=240)
    not_before: datetime | None = None
    include_requester: bool = Field(default=True, description="Invite the requester (if in the roster).")


class AcceptProposal(Contract):
    """``cmd.meetings.accept_proposal.v1``: convene (or change the meeting) as proposed."""

    command_id: UUID
    proposal_id: UUID
    accepted_by: Id


class RespondToInvitation(Contract):
    """``cmd.meetings.respond.v1``: a participant accepts or declines."""

    command_id: UUID
    meeting_id: UUID
    participant_id: Id
    answer: Literal["accepted", "declined"]


class RescheduleMeeting(Contract):
    """``cmd.meetings.reschedule.v1``: move the meeting (and optionally the room)."""

    command_id: UUID
    meeting_id: UUID
    requested_by: Id
    starts_at: datetime
    ends_at: datetime
    room: ShortText | None = None
    reason: ShortText


class CancelMeeting(Contract):
    """``cmd.meetings.cancel.v1``: cancel with a reason."""

    command_id: UUID
    meeting_id: UUID
    requested_by: Id
    reason: ShortText


MONTHS_READ = (
    "The answer reads what counts in the months asked (and those meetings' cases), so a month or a year"
    " is answered in about the same time however long the history is; without from_month and to_month"
    " the whole history is read (seconds at 100,000 meetings)."
)


class MeetingStatisticsQuery(Contract):
    """``query.meetings.statistics.v1``: joint-meeting statistics (JSON, or CSV text with format=csv)."""

    requested_by: Id
    municipality: ShortText | None = None
    from_month: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}$")] | None = Field(
        default=None, description=f"First month (YYYY-MM, Helsinki) of the meetings held. {MONTHS_READ}"
    )
    to_month: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}$")] | None = Field(
        default=None, description="Last month (YYYY-MM, Helsinki) of the meetings held."
    )
    format: Literal["json", "csv"] = "json"


class MeetingsAccessLogQuery(CaseAccessLogQuery):
    """``query.meetings.access_log.v1``: who has read these cases' meetings (audit log). This read is audited too."""


# -- replies: the ``data`` of each request's Reply -----------------------------------------------------


class ConveneResult(Contract):
    """``data`` of ``cmd.meetings.convene.v2``, present only when there is something to say."""

    outside_working_hours: list[str] = Field(
        description="Professionals (staff ids) invited outside their working hours: allowed, but said."
    )


class RescheduleResult(Contract):
    """``data`` of ``cmd.meetings.reschedule.v2``."""

    sequence: int = Field(description="Revision number of the meeting now (calendar updates).")


class Assignment(Contract):
    role: str
    professional_id: str


class ProposedSlot(Contract):
    """A common time found: who, when and where."""

    starts_at: datetime = Field(description="Start (UTC).")
    ends_at: datetime = Field(description="End (UTC).")
    room: str = Field(description="Room id.")
    assignments: list[Assignment] = Field(description="Who takes each role asked for.")
    interpreter_needed: bool
    alternatives: dict[str, list[str]] = Field(description="Role -> other professionals free at that time.")


class ProposalResult(Contract):
    """``data`` of ``cmd.meetings.propose.v2``. When a time was found (``ok``) the slot's fields are
    given; when not (``ok`` false, code e.g. ``no_slot_before_deadline``) only the proposal id and the
    earliest time after the deadline, if any."""

    proposal_id: UUID = Field(description="Accept it with cmd.meetings.accept_proposal.v2.")
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    room: str | None = None
    assignments: list[Assignment] = Field(default_factory=list)
    interpreter_needed: bool | None = None
    alternatives: dict[str, list[str]] = Field(default_factory=dict)
    earliest_after_deadline: ProposedSlot | None = Field(
        default=None, description="No time before the deadline: the earliest one after it."
    )


class RsvpResult(Contract):
    """``data`` of ``cmd.meetings.respond.v2``. A decline may come with a proposal: a substitute
    professional (``kind`` substitute) or a new time (``kind`` reschedule, with the slot's fields, or
    ``no_slot`` when none was found)."""

    answer: RsvpAnswer
    proposal_id: UUID | None = Field(default=None, description="Accept it with cmd.meetings.accept_proposal.v2.")
    kind: Literal["substitute", "reschedule"] | None = None
    substitute: str | None = Field(default=None, description="Staff id proposed in place of the one who declined.")
    role: str | None = Field(default=None, description="The role the substitute takes.")
    no_slot: str | None = Field(default=None, description="Why no new time was found (a NoSlot code).")
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    room: str | None = None
    assignments: list[Assignment] = Field(default_factory=list)
    interpreter_needed: bool | None = None
    alternatives: dict[str, list[str]] = Field(default_factory=dict)


class ProfessionalView(Contract):
    professional_id: str
    municipality: str
    roles: list[str]
    languages: list[str]
    unit: str
    team: str | None
    working_hours: list[WorkingHours]
    contact: dict[str, Any] | None = Field(description="Contact point (contact_id, role, language, email, phone).")
    active: bool
    name: str | None = Field(default=None, description="Full name as families see it.")
    title: dict[str, str] = Field(default_factory=dict, description="Job title by language.")


class RoomView(Contract):
    room_id: str
    municipality: str
    capacity: int
    location: str
    active: bool
    address: str | None = Field(default=None, description="Street address.")
    names: dict[str, str] = Field(default_factory=dict, description="The place's name in other languages.")


class Roster(Contract):
    """``data`` of ``query.meetings.roster.v2``."""

    professionals: list[ProfessionalView] = Field(description="By staff id.")
    rooms: list[RoomView]


class ConveningView(Contract):
    status: str
    consent_to_convene: bool = Field(description="The family's consent to convene the team is in force.")
    invite_referrer: bool = Field(description="The family's consent to invite the referrer is in force.")
    statutory: bool
    deadline: date | None = Field(description="Last day (Helsinki date) to hold the meeting by.")
    assessment_started_on: date | None


class ParticipantView(Contract):
    participant_id: str
    kind: ParticipantKind
    role: str


class MeetingView(Contract):
    meeting_id: UUID
    starts_at: datetime
    ends_at: datetime
    room: str
    status: str = Field(description="convened, held or cancelled.")
    sequence: int
    first_assessment_meeting: bool
    responses: dict[str, ResponseAnswer] = Field(description="Participant id -> answer (tentative: a calendar's maybe).")
    participants: list[ParticipantView]
    wellbeing: list[dict[str, Any]] = Field(description="Wellbeing star recorded at the meeting: {area, score, note}.")
    feedback: dict[str, Any] | None = Field(description="The family's feedback: {rating, comment}.")


class ProposalView(Contract):
    proposal_id: UUID
    kind: str = Field(description="convene, substitute or reschedule.")
    status: str
    source: str | None = Field(description="staff, decline or followup.")
    proposal: dict[str, Any] | None = Field(description="The slot proposed (starts_at, ends_at, room, assignments, ...).")
    no_slot: str | None


class CaseMeetings(Contract):
    """``data`` of ``query.meetings.case.v2``."""

    convening: ConveningView
    meetings: list[MeetingView]
    proposals: list[ProposalView]


class MonthCount(Contract):
    municipality: str
    month: str = Field(description="YYYY-MM (Helsinki).")
    meetings: int


class UnitMonthCount(MonthCount):
    unit: str


class TeamMonthCount(MonthCount):
    team: str


class WaitDays(Contract):
    cases: int
    mean: float | None
    median: float | None


class DeadlineShare(Contract):
    cases_with_deadline: int
    in_time: int
    share: float | None


class MeetingStatistics(Contract):
    """``data`` of ``query.meetings.statistics.v2``: the counts (format json), or only ``csv`` (format csv)."""

    csv: str | None = Field(default=None, description="format=csv: the same figures as one CSV text.")
    meetings_held: int | None = None
    per_municipality_month: list[MonthCount] | None = None
    per_unit_month: list[UnitMonthCount] | None = None
    per_team_month: list[TeamMonthCount] | None = None
    referral_to_first_meeting_days: WaitDays | None = None
    held_before_deadline: DeadlineShare | None = None
    units_per_meeting: float | None = None
    separate_meetings_avoided: int | None = None


# Each request's reply data (``Reply.data``).
ConveneMeeting.reply_data = ConveneResult
RecordMeetingHeld.reply_data = None
MeetingCaseQuery.reply_data = CaseMeetings
UpsertProfessional.reply_data = None
UpsertRoom.reply_data = None
RosterQuery.reply_data = Roster
ProposeMeeting.reply_data = ProposalResult
AcceptProposal.reply_data = None
RespondToInvitation.reply_data = RsvpResult
RescheduleMeeting.reply_data = RescheduleResult
CancelMeeting.reply_data = None
MeetingStatisticsQuery.reply_data = MeetingStatistics


class RosterProfessionalChanged(Event):
    """A professional in the family-centre roster was added or changed (from the roster file at start,
    or a staff command). Staff data, not family data: the notifications service keeps a directory of
    them to name the convening and the responsible worker, with title and work contact, in messages."""

    event_type: ClassVar[str] = "roster.professional_changed"
    stream: ClassVar[str] = "MEETINGS"

    case_id: UUID | None = Field(default=None, description="Always empty: the roster is not about a case.")  # type: ignore[assignment]
    professional_id: Id = Field(description="Staff id.")
    municipality: ShortText
    name: ShortText | None = Field(default=None, description="Full name as families see it.")
    title: dict[Language, ShortText] = Field(default_factory=dict, description="Job title by language.")
    roles: list[ShortText] = Field(description="Role codes (docs/glossary.md names them in fi/sv/en).")
    unit: ShortText = Field(description="Unit (service) the professional works in.")
    contact: ContactPoint | None = Field(default=None, description="Work contact (e-mail, phone).")
    active: bool = True
    team: ShortText | None = Field(default=None, description="Family-centre team id (statistics count per team).")


class RosterRoomChanged(Event):
    """A meeting room was added or changed: where families come, so that messages name the place and its
    address instead of the room's id."""

    event_type: ClassVar[str] = "roster.room_changed"
    stream: ClassVar[str] = "MEETINGS"

    case_id: UUID | None = Field(default=None, description="Always empty: the roster is not about a case.")  # type: ignore[assignment]
    room_id: ShortText
    municipality: ShortText
    location: ShortText = Field(description="The place as families know it.")
    address: ShortText | None = Field(default=None, description="Street address.")
    names: dict[Language, ShortText] = Field(default_factory=dict, description="The place's name in other languages.")
    active: bool = True


# -- joint-work statistics (issue 20): feedback after a meeting, the model's adoption stage ----------
AdoptionStage = Literal["not_discussed", "goal_not_planned", "planning", "trial", "rooted"]
"""The five stages of adopting the multi-agency model in a municipality (käyttöönoton tilanne):
not_discussed: the model is not planned nor discussed (malli ei ole suunnitteilla eikä siitä ole
käyty keskustelua); goal_not_planned: adoption is a goal, planning has not begun (tavoitteena, mutta
suunnittelu ei ole alkanut); planning: adoption or a trial is being planned (suunnitellaan); trial:
a trial is running (kokeilu on käynnissä); rooted: the model is taking root or rooted in everyday
work (juurtumassa / juurtunut osaksi perustoimintaa)."""

FeedbackGiver = Literal["family", "worker"]


class RecordFeedback(Contract):
    """``cmd.meetings.record_feedback.v1``: feedback on a joint meeting that was held (palaute), given
    by the family (a guardian of the case, signed in) or recorded by a worker of the case on the
    family's behalf. A score and whether the family felt heard; no free text (statistics only). Who
    gave it is the verified caller: a guardian's token records ``family``, a staff token ``worker``.
    Recording again for the same meeting and giver replaces the earlier feedback."""

    access: ClassVar[Access] = Access("write", guardian=True)

    command_id: UUID = Field(description="Idempotency key chosen by the app.")
    case_id: UUID = Field(description="The family's case the meeting belongs to (access is decided from it).")
    meeting_id: UUID = Field(description="The meeting held.")
    rating: int = Field(ge=1, le=5, description="1 (poor) .. 5 (very good).")
    felt_heard: bool = Field(description="Whether the family felt heard (kohdatuksi ja kuulluksi tuleminen).")


class FeedbackRecorded(Event):
    """Feedback on a held joint meeting was recorded (palaute): score and whether the family felt heard.
    No free text and no person: for statistics."""

    event_type: ClassVar[str] = "meeting.feedback_recorded"
    stream: ClassVar[str] = "MEETINGS"
    routed: ClassVar[bool] = True  # new in the routed era: its first version is routed

    meeting_id: UUID = Field(description="The meeting held.")
    given_by: FeedbackGiver = Field(description="family (a guardian's own answer) or worker (recorded on the family's behalf).")
    rating: int = Field(ge=1, le=5, description="1 (poor) .. 5 (very good).")
    felt_heard: bool = Field(description="Whether the family felt heard.")
    municipality: str | None = Field(default=None, description="Municipality of the case, for statistics.")


class RecordAdoptionStage(Contract):
    """``cmd.meetings.record_adoption_stage.v1``: a statistician, team lead or roster admin records
    where a municipality stands in adopting the multi-agency model (one of the five stages). Who
    recorded it is the verified caller, in the event and the service's audit log."""

    access: ClassVar[Access] = Access("record_statistics", personal=False, case=None)

    command_id: UUID = Field(description="Idempotency key chosen by the app.")
    municipality: ShortText = Field(description="The municipality.")
    stage: AdoptionStage = Field(description="not_discussed | goal_not_planned | planning | trial | rooted.")


class AdoptionStageRecorded(Event):
    """A municipality's adoption stage of the multi-agency model was recorded (käyttöönoton tilanne)."""

    event_type: ClassVar[str] = "meeting.adoption_stage_recorded"
    stream: ClassVar[str] = "MEETINGS"
    routed: ClassVar[bool] = True  # about a municipality, not a team: <municipality>.unrouted

    case_id: UUID | None = Field(default=None, description="Always empty: the stage is not about a case.")  # type: ignore[assignment]
    municipality: str = Field(description="The municipality.")
    stage: AdoptionStage = Field(description="The stage recorded.")
    previous_stage: AdoptionStage | None = Field(description="The stage recorded before (none the first time).")
    recorded_by: str = Field(description="Staff id of the verified caller.")


class JointWorkStatisticsQuery(Contract):
    """``query.meetings.joint_work_statistics.v1``: per municipality and month (Helsinki), the figures
    people ask of the family-centre model: time from contact (the receipt) to the first joint meeting
    (median and 90th percentile, days), invited against attended, families' feedback, the recorded
    adoption stage beside an indicator of what actually happens (meetings held with the family present,
    follow-ups on time), and how late onward services start. Aggregates only (any staff role,
    statisticians too). As JSON rows, CSV text or an SVG chart labelled in fi, sv or en."""

    access: ClassVar[Access] = Access("aggregate", personal=False, case=None)

    municipality: ShortText | None = Field(default=None, description="Only this municipality.")
    from_month: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}$")] | None = Field(
        default=None, description=f"First month (YYYY-MM, Helsinki). {MONTHS_READ}"
    )
    to_month: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}$")] | None = Field(
        default=None, description="Last month (YYYY-MM, Helsinki)."
    )
    format: Literal["json", "csv", "svg"] = Field(
        default="json", description="json: rows; csv: rows and CSV text; svg: rows and a chart."
    )
    language: Language = Field(default="fi", description="The chart's language (fi, sv or en).")


class JointWorkRow(Contract):
    municipality: str
    month: str = Field(description="YYYY-MM (Helsinki).")
    first_meetings: int = Field(description="Cases whose first joint meeting (the first held) was this month.")
    contact_to_first_meeting_median_days: float | None = Field(
        description="Median days from the contact (the receipt the front door recorded) to the first meeting's start."
    )
    contact_to_first_meeting_p90_days: float | None = Field(
        description="90th percentile of the same days (linear interpolation between closest ranks, inclusive)."
    )
    meetings_held: int = Field(description="Joint meetings held this month (by their start, Helsinki).")
    invited: int = Field(description="People invited to those meetings (the tracking form's 'kutsuttu').")
    attended: int = Field(description="Of them, recorded present ('osallistui').")
    attendance_share: float | None = Field(description="attended / invited.")
    invited_per_meeting: float | None = Field(description="Mean people invited per meeting held.")
    attended_per_meeting: float | None = Field(description="Mean people present per meeting held.")
    meetings_fully_attended: int = Field(description="Meetings held where everyone invited was present.")
    invited_by_kind: dict[str, int] = Field(description="Invited per kind: family, professional, referrer.")
    attended_by_kind: dict[str, int] = Field(description="Attended per kind: family, professional, referrer.")
    meetings_with_family: int = Field(description="Meetings held with a family member present.")
    feedback_given: int = Field(description="Feedback answers on meetings held this month (family's and workers').")
    feedback_mean_rating: float | None = Field(description="Mean score 1-5.")
    felt_heard_share: float | None = Field(description="Share of answers where the family felt heard.")
    adoption_stage: AdoptionStage | None = Field(
        description="The adoption stage recorded for the municipality, in force at the month's end (null: none recorded)."
    )
    family_present_share: float | None = Field(description="meetings_with_family / meetings_held.")
    followups_recorded: int = Field(description="Follow-ups recorded this month (followup.recorded).")
    followups_overdue: int = Field(description="Follow-ups due this month not recorded within the grace (followup.overdue).")
    followups_on_time_share: float | None = Field(description="followups_recorded / (followups_recorded + followups_overdue).")
    practice_indicator: float | None = Field(
        description="What actually happens, 0-1: the mean of family_present_share and followups_on_time_share (those known)."
    )
    services_started: int = Field(description="Onward services started this month.")
    services_started_late: int = Field(description="Of them, started after their agreed day.")
    service_start_delay_mean_days: float | None = Field(
        description="Mean days after the agreed day the services with one started (0 when on time)."
    )
    service_start_delay_max_days: int | None = Field(description="The longest of those delays.")
    services_start_overdue: int = Field(
        description="Onward services whose agreed start day fell this month and passed without a start (the late-start alert)."
    )


class JointWorkStatistics(Contract):
    """``data`` of ``query.meetings.joint_work_statistics.v1``."""

    rows: list[JointWorkRow] = Field(description="One per municipality and month, oldest first.")
    csv: Annotated[str, MULTILINE] | None = Field(default=None, description="format csv: the rows as CSV (header row first).")
    content_type: str | None = Field(default=None, description="format svg: image/svg+xml.")
    svg: Annotated[str, MULTILINE] | None = Field(default=None, description="format svg: a chart of the shares per month.")


class AdoptionStageReply(Contract):
    """``data`` of ``cmd.meetings.record_adoption_stage.v1``."""

    municipality: str
    stage: AdoptionStage
    previous_stage: AdoptionStage | None


RecordFeedback.reply_data = None
RecordAdoptionStage.reply_data = AdoptionStageReply
JointWorkStatisticsQuery.reply_data = JointWorkStatistics


# (event, producer, consumers outside the four services); the services' own subscriptions are
# read from their bootstraps (infra.wiring).
class ResponsibleWorkerDeactivated(Event):
    """A professional responsible for this case's plan (vastuutyöntekijä) was deactivated in the roster
    (left, moved, long leave). One event per case they are responsible for; the plans service opens a
    handover for each of their plans."""

    event_type: ClassVar[str] = "meeting.responsible_worker_deactivated"
    stream: ClassVar[str] = "MEETINGS"

    worker_id: str = Field(description="Staff id of the deactivated professional.")
    successor: ResponsibleWorker | None = Field(
        default=None, description="Who takes over, when the roster change named one (from the roster: unit, contact)."
    )
    recorded_by: str = Field(description="Staff id of the verified caller who changed the roster.")


EVENTS = (
    (MeetingConvened, "meetings", ()),
    (MeetingResponseRecorded, "meetings", ("staff apps",)),
    (MeetingResponseRecordedV2, "meetings", ("staff apps",)),
    (MeetingRescheduled, "meetings", ()),
    (MeetingCancelled, "meetings", ()),
    (MeetingReminderDue, "meetings (durable timer)", ()),
    (MeetingHeld, "meetings", ("staff apps",)),
    (ResponsibleWorkerDeactivated, "meetings (roster)", ()),
    (RosterProfessionalChanged, "meetings", ()),
    (RosterRoomChanged, "meetings", ()),
    (FeedbackRecorded, "meetings", ("statistics",)),
    (AdoptionStageRecorded, "meetings", ("statistics",)),
)

# -- version 2: the actor from the verified token, the case named, a purpose on every read ----------
ConveneMeetingV2 = successor(ConveneMeeting, "cmd.meetings.convene.v2", Access("write"))
RecordMeetingHeldV2 = successor(RecordMeetingHeld, "cmd.meetings.record_held.v2", Access("write"), add_case=True)
MeetingCaseQueryV2 = successor(MeetingCaseQuery, "query.meetings.case.v2", Access("read", guardian=True))
MeetingsAccessLogQueryV2 = successor(
    MeetingsAccessLogQuery, "query.meetings.access_log.v2", Access("read", case="case_ids", guardian=True)
)
UpsertProfessionalV2 = successor(
    UpsertProfessional, "cmd.meetings.upsert_professional.v2", Access("roster_admin", personal=False, case=None)
)
UpsertRoomV2 = successor(UpsertRoom, "cmd.meetings.upsert_room.v2", Access("roster_admin", personal=False, case=None))
RosterQueryV2 = successor(RosterQuery, "query.meetings.roster.v2", Access("read", personal=False, case=None))
ProposeMeetingV2 = successor(ProposeMeeting, "cmd.meetings.propose.v2", Access("write"))
AcceptProposalV2 = successor(AcceptProposal, "cmd.meetings.accept_proposal.v2", Access("write"), add_case=True)
RespondToInvitationV2 = successor(RespondToInvitation, "cmd.meetings.respond.v2", Access("write"), add_case=True)
RescheduleMeetingV2 = successor(RescheduleMeeting, "cmd.meetings.reschedule.v2", Access("write"), add_case=True)
CancelMeetingV2 = successor(CancelMeeting, "cmd.meetings.cancel.v2", Access("write"), add_case=True)
MeetingStatisticsQueryV2 = successor(
    MeetingStatisticsQuery, "query.meetings.statistics.v2", Access("aggregate", personal=False, case=None)
)

REQUESTS = (
    ("cmd.meetings.convene.v1", ConveneMeeting, "Retired: use cmd.meetings.convene.v2. Convene a joint meeting."),
    ("cmd.meetings.record_held.v1", RecordMeetingHeld, "Retired: use cmd.meetings.record_held.v2. Record a meeting as held."),
    ("query.meetings.case.v1", MeetingCaseQuery, "Retired: use query.meetings.case.v2. Meetings of one case (audited)."),
    (
        "query.meetings.access_log.v1",
        MeetingsAccessLogQuery,
        "Retired: use query.meetings.access_log.v2. Who has read these cases' meetings: the append-only audit log (audited).",
    ),
    (
        "cmd.meetings.upsert_professional.v1",
        UpsertProfessional,
        "Retired: use cmd.meetings.upsert_professional.v2. Add or change a professional in the roster.",
    ),
    ("cmd.meetings.upsert_room.v1", UpsertRoom, "Retired: use cmd.meetings.upsert_room.v2. Add or change a meeting room."),
    ("query.meetings.roster.v1", RosterQuery, "Retired: use query.meetings.roster.v2. The roster of one municipality."),
    (
        "cmd.meetings.propose.v1",
        ProposeMeeting,
        "Retired: use cmd.meetings.propose.v2. Propose people and the earliest common slot.",
    ),
    (
        "cmd.meetings.accept_proposal.v1",
        AcceptProposal,
        "Retired: use cmd.meetings.accept_proposal.v2. Accept a proposal (convene, substitute or move).",
    ),
    ("cmd.meetings.respond.v1", RespondToInvitation, "Retired: use cmd.meetings.respond.v2. Accept or decline an invitation."),
    ("cmd.meetings.reschedule.v1", RescheduleMeeting, "Retired: use cmd.meetings.reschedule.v2. Move a meeting."),
    ("cmd.meetings.cancel.v1", CancelMeeting, "Retired: use cmd.meetings.cancel.v2. Cancel a meeting."),
    (
        "query.meetings.statistics.v1",
        MeetingStatisticsQuery,
        "Retired: use query.meetings.statistics.v2. Joint-meeting statistics (JSON or CSV).",
    ),
    ("cmd.meetings.convene.v2", ConveneMeetingV2, "Convene a joint meeting."),
    ("cmd.meetings.record_held.v2", RecordMeetingHeldV2, "Record a meeting as held."),
    ("query.meetings.case.v2", MeetingCaseQueryV2, "Meetings of one case (audited)."),
    (
        "query.meetings.access_log.v2",
        MeetingsAccessLogQueryV2,
        "Who has read these cases' meetings: the append-only audit log (audited).",
    ),
    ("cmd.meetings.upsert_professional.v2", UpsertProfessionalV2, "Add or change a professional in the roster."),
    ("cmd.meetings.upsert_room.v2", UpsertRoomV2, "Add or change a meeting room."),
    ("query.meetings.roster.v2", RosterQueryV2, "The roster of one municipality."),
    ("cmd.meetings.propose.v2", ProposeMeetingV2, "Propose people and the earliest common slot."),
    ("cmd.meetings.accept_proposal.v2", AcceptProposalV2, "Accept a proposal (convene, substitute or move)."),
    (
        "cmd.meetings.respond.v2",
        RespondToInvitationV2,
        "Record a participant's answer to an invitation (accepted or declined), as a worker of the case "
        "heard it (by phone, in person); the verified worker is who recorded it (the command log keeps them). "
        "Answers from calendars arrive by e-mail instead (notification.invitation_answered).",
    ),
    ("cmd.meetings.reschedule.v2", RescheduleMeetingV2, "Move a meeting."),
    ("cmd.meetings.cancel.v2", CancelMeetingV2, "Cancel a meeting."),
    ("query.meetings.statistics.v2", MeetingStatisticsQueryV2, "Joint-meeting statistics (JSON or CSV)."),
    ("cmd.meetings.record_feedback.v1", RecordFeedback, "Record feedback on a held joint meeting (score, felt heard)."),
    (
        "cmd.meetings.record_adoption_stage.v1",
        RecordAdoptionStage,
        "Record a municipality's adoption stage of the model (audited).",
    ),
    (
        "query.meetings.joint_work_statistics.v1",
        JointWorkStatisticsQuery,
        "Joint-work statistics per municipality and month (JSON, CSV or SVG chart).",
    ),
)
