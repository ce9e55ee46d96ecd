"""Contracts of the plans service: the joint plan (yhteinen suunnitelma) and its follow-up (seuranta)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID

from pydantic import Field, StringConstraints

from shared.policy import Access

from .audit import CaseAccessLogQuery
from .base import MULTILINE, Contract, Event
from .common import ContactPoint, Id, Language, ShortText, StarArea
from .personal import Personal
from .versions import successor

FrameText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200), MULTILINE]
"""A part of the plan frame. May arrive blank: the plans service then refuses the plan and names every
missing part at once (code ``plan_incomplete``), instead of stopping at the first one."""

WellbeingScores = dict[StarArea, Annotated[int, Field(ge=1, le=10)]]
"""The wellbeing star (Hyvinvoinnin tähti): area -> score 1 (serious worry) .. 10 (all is well)."""


class PlannedAction(Contract):
    what: FrameText = Field(default="", description="What is done (required; blank is refused as missing).")
    who: FrameText = Field(default="", description="Who does it (required; blank is refused as missing).")
    where: FrameText | None = Field(
        default=None,
        description="Where: required for actions elsewhere; optional at home and in the everyday environment (which ECEC unit or school).",
    )
    start_by: date | None = Field(
        default=None,
        description="Actions elsewhere: the day (Helsinki) by which the service should have started, as agreed. "
        "When it has not started by then, the responsible worker and the family are told (plan.service_start_overdue).",
    )


class PlanParty(Contract):
    """Another party the family wants the plan to go to. It is shared ONLY while the family's
    ``share_plan`` consent for this ``party_id`` is on record (consent.given, not withdrawn)."""

    party_id: Id = Field(description="Matches ConsentGiven.recipient.")
    role: ShortText = Field(description="e.g. school_social_worker, family_counselling.")
    contact: ContactPoint | None = Field(default=None, description="How to reach the party.")


class ResponsibleWorker(Contract):
    """Vastuutyöntekijä: named by the family, a professional in a public service."""

    worker_id: Id
    organisation: ShortText
    public_service: bool = Field(description="Must be true: the responsible worker works in a public service.")
    contact: ContactPoint | None = None
    name: ShortText | None = Field(default=None, description="The worker's name as the family's copy shows it.")
    title: ShortText | None = Field(
        default=None, description="Job title as the family's copy shows it, e.g. 'sosiaaliohjaaja' (in the family's language)."
    )
    role: ShortText | None = Field(
        default=None,
        description="Role code (e.g. social_worker); the family's copy shows its translated name when no title is given.",
    )


class AgreePlan(Contract):
    """``cmd.plans.agree.v1``: record the joint plan agreed with the family."""

    command_id: UUID
    case_id: UUID
    meeting_id: UUID | None = None
    recorded_by: Id
    changes_needed: list[FrameText] = Field(
        default_factory=list, description="Concrete things in everyday life that need change (required)."
    )
    actions_at_home: list[PlannedAction] = Field(default_factory=list)
    actions_in_everyday_environment: list[PlannedAction] = Field(
        default_factory=list, description="In early childhood education or school."
    )
    actions_elsewhere: list[PlannedAction] = Field(default_factory=list)
    worker_contacts_family: FrameText = Field(default="", description="How the worker contacts the family (required).")
    family_contacts_worker: FrameText = Field(default="", description="How the family contacts the worker (required).")
    responsible_workers: list[ResponsibleWorker] = Field(
        default_factory=list, max_length=2, description="One worker or a pair (required)."
    )
    next_contact_at: datetime | None = Field(
        default=None, description="Next contact, agreed with the family (aware datetime; required)."
    )
    family_contacts: list[ContactPoint] = Field(default_factory=list, description="Family members who receive the plan.")
    other_parties: list[PlanParty] = Field(
        default_factory=list,
        max_length=20,
        description="Other parties the family wants the plan to go to; shared only with consent on record.",
    )
    family_language: Language | None = Field(
        default=None, description="Language of the family's copy; default: the first family contact's language."
    )


class PlanAgreed(Event):
    """A joint plan was agreed with a named responsible worker. Carries references, not the plan's content."""

    event_type: ClassVar[str] = "plan.agreed"
    stream: ClassVar[str] = "PLANS"

    plan_id: UUID
    plan_version: int = Field(description="1 for the first version.")
    meeting_id: UUID | None
    responsible_workers: list[ResponsibleWorker]
    next_contact_at: datetime = Field(description="When the follow-up is due (UTC).")
    family_contacts: Personal[list[ContactPoint]] = Field(default_factory=list)


class FollowupDue(Event):
    """The agreed next-contact time has come. Fired by a durable JetStream message schedule."""

    event_type: ClassVar[str] = "followup.due"
    stream: ClassVar[str] = "PLANS"

    plan_id: UUID
    plan_version: int
    due_at: datetime
    responsible_worker_ids: list[str]
    family_contact_ids: list[str]


class FollowupMeetingRequested(Event):
    """The responsible worker asks for a follow-up meeting from a plan; the meetings service convenes it."""

    event_type: ClassVar[str] = "followup.meeting_requested"
    stream: ClassVar[str] = "PLANS"

    plan_id: UUID
    plan_version: int
    requested_by: str = Field(description="Staff id of the responsible worker.")
    roles_needed: list[str] = Field(default_factory=list, description="Professional roles to invite, e.g. psychologist.")
    participant_ids: list[str] = Field(
        default_factory=list, description="People already agreed to invite (family contact ids, staff ids)."
    )
    not_before: datetime | None = Field(default=None, description="Earliest time for the meeting (UTC).")


class PlanCaseQuery(Contract):
    """``query.plans.case.v1``: the plans of one case."""

    case_id: UUID
    requested_by: Id = Field(description="Staff id of the reader (written to the audit log).")
    purpose: ShortText = Field(default="case work", description="Why the data is read (written to the audit log).")


class PlanRevised(Event):
    """A new version of the plan; the old version is kept (a plan is never overwritten)."""

    event_type: ClassVar[str] = "plan.revised"
    stream: ClassVar[str] = "PLANS"

    plan_id: UUID
    plan_version: int
    responsible_workers: list[ResponsibleWorker]
    next_contact_at: datetime
    family_contacts: Personal[list[ContactPoint]] = Field(default_factory=list)


PlanOutcome = Literal["goals_met", "family_ended", "moved_to_other_service", "other"]


class PlanClosed(Event):
    """The work ended: goals met or the family ended it. Follow-up timers are cancelled."""

    event_type: ClassVar[str] = "plan.closed"
    stream: ClassVar[str] = "PLANS"

    plan_id: UUID
    plan_version: int
    outcome: PlanOutcome


class PlanHandoverOpened(Event):
    """A responsible worker of this plan was deactivated: a handover (vastuun siirto) opened. It
    completes at once when the roster change named a successor, else when the team names one
    (``cmd.plans.complete_handover.v1``)."""

    event_type: ClassVar[str] = "plan.handover_opened"
    stream: ClassVar[str] = "PLANS"

    plan_id: UUID
    plan_version: int
    handover_id: UUID
    from_worker_id: str = Field(description="Staff id of the worker who left.")
    successor_named: bool = Field(description="The roster change named who takes over (plan.handed_over follows).")


class PlanHandedOver(Event):
    """The plan has a new responsible worker in place of one who left. Their follow-up timers now name
    the new worker; the family is told its new contact in its language."""

    event_type: ClassVar[str] = "plan.handed_over"
    stream: ClassVar[str] = "PLANS"

    plan_id: UUID
    plan_version: int
    handover_id: UUID
    from_worker_id: str = Field(description="Staff id of the worker who left.")
    responsible_worker: ResponsibleWorker = Field(description="The new responsible worker (with contact, for the family).")
    responsible_worker_ids: list[str] = Field(description="The plan's responsible workers now.")
    family_contact_ids: list[str] = Field(description="Contact ids of the family (addresses are in the directory).")
    family_language: Language = Field(description="The family's language (fi, sv or en).")


ServiceStatus = Literal["planned", "sent", "accepted", "started", "declined"]
"""planned: named in the plan; sent: the referral to the service went out; accepted: the service took
the family on; started: the service began; declined: the service (or the family) said no."""


class ServiceStatusRecorded(Event):
    """An onward service of the plan (an action elsewhere) moved on: sent → accepted → started, or
    declined. The action's own words stay in the plan; the event carries ids, status and dates."""

    event_type: ClassVar[str] = "plan.service_status_recorded"
    stream: ClassVar[str] = "PLANS"

    plan_id: UUID
    service_id: UUID = Field(description="The followed service (one per action elsewhere).")
    status: ServiceStatus
    previous_status: ServiceStatus
    on: date = Field(description="Helsinki date of the step.")
    start_by: date | None = Field(description="The agreed last day for the service to start.")
    days_late: int | None = Field(
        default=None, description="Status started: days after start_by it started (0 when on time; none without a date)."
    )
    recorded_by: str = Field(description="Staff id of the verified caller.")


class ServiceStartOverdue(Event):
    """An onward service had not started by its agreed day (durable timer, fired the next morning,
    Helsinki): the responsible worker(s) and the family are told."""

    event_type: ClassVar[str] = "plan.service_start_overdue"
    stream: ClassVar[str] = "PLANS"

    plan_id: UUID
    service_id: UUID
    start_by: date = Field(description="The agreed last day (Helsinki date).")
    responsible_worker_ids: list[str]
    family_contact_ids: list[str]


class PlanShared(Event):
    """The plan (this version) was shared with one recipient, on the basis named."""

    event_type: ClassVar[str] = "plan.shared"
    stream: ClassVar[str] = "PLANS"

    plan_id: UUID
    plan_version: int
    recipient_id: str = Field(description="Contact id / party id of the recipient.")
    recipient_role: str = Field(description="family, responsible_worker, or the consented party's role.")
    basis: Literal["family", "responsible_worker", "consent"] = Field(description="Why this recipient may have it.")
    consent_id: UUID | None = None
    contact: Personal[ContactPoint | None] = Field(default=None, description="How to reach the recipient.")
    language: str = Field(default="fi", description="Language of the shared version.")


class FollowupReminderDue(Event):
    """Reminder before the agreed next contact (durable timer)."""

    event_type: ClassVar[str] = "followup.reminder_due"
    stream: ClassVar[str] = "PLANS"

    plan_id: UUID
    plan_version: int
    due_at: datetime
    responsible_worker_ids: list[str]
    family_contact_ids: list[str]


class FollowupRecorded(Event):
    """The responsible worker recorded the follow-up contact (seuranta)."""

    event_type: ClassVar[str] = "followup.recorded"
    stream: ClassVar[str] = "PLANS"

    plan_id: UUID
    plan_version: int
    recorded_by: str
    wellbeing_scores: dict[StarArea, int] = Field(default_factory=dict, description="Wellbeing star again: area -> 1-10.")
    next_contact_at: datetime | None = None
    followup_meeting_requested: bool = False


class FollowupOverdue(Event):
    """A follow-up was due and not recorded within the grace period: visible to the team."""

    event_type: ClassVar[str] = "followup.overdue"
    stream: ClassVar[str] = "PLANS"

    plan_id: UUID
    plan_version: int
    due_at: datetime
    responsible_worker_ids: list[str]


class FollowupRescheduled(Event):
    """The agreed next contact moved (without a new plan version); the follow-up timers moved with it."""

    event_type: ClassVar[str] = "followup.rescheduled"
    stream: ClassVar[str] = "PLANS"

    plan_id: UUID
    plan_version: int
    previous_due_at: datetime | None
    due_at: datetime
    responsible_worker_ids: list[str]
    family_contact_ids: list[str]


class FollowupGraceEnded(Event):
    """Internal durable timer of the plans service: the grace after a due follow-up has ended. The plans
    service checks whether the follow-up was recorded and, if not, emits ``followup.overdue``."""

    event_type: ClassVar[str] = "followup.grace_ended"
    stream: ClassVar[str] = "PLANS"

    plan_id: UUID
    plan_version: int
    due_at: datetime


class RevisePlan(Contract):
    """``cmd.plans.revise.v1``: a new version of the plan (the whole frame again; earlier versions are kept)."""

    command_id: UUID
    plan_id: UUID
    recorded_by: Id
    expected_version: int | None = Field(default=None, description="Refused if the plan has moved on (optimistic concurrency).")
    changes_needed: list[FrameText] = Field(default_factory=list)
    actions_at_home: list[PlannedAction] = Field(default_factory=list)
    actions_in_everyday_environment: list[PlannedAction] = Field(default_factory=list)
    actions_elsewhere: list[PlannedAction] = Field(default_factory=list)
    worker_contacts_family: FrameText = ""
    family_contacts_worker: FrameText = ""
    responsible_workers: list[ResponsibleWorker] = Field(default_factory=list, max_length=2)
    next_contact_at: datetime | None = None
    family_contacts: list[ContactPoint] = Field(default_factory=list)
    other_parties: list[PlanParty] = Field(default_factory=list, max_length=20)
    family_language: Language | None = None


class ClosePlan(Contract):
    """``cmd.plans.close.v1``: end the work with an outcome; the follow-up timers are cancelled."""

    command_id: UUID
    plan_id: UUID
    recorded_by: Id
    outcome: PlanOutcome


class RescheduleFollowup(Contract):
    """``cmd.plans.reschedule_followup.v1``: move the agreed next contact (same plan version)."""

    command_id: UUID
    plan_id: UUID
    recorded_by: Id
    next_contact_at: datetime = Field(description="New time of the next contact (aware datetime, in the future).")


class FollowupMeetingRequest(Contract):
    roles_needed: list[ShortText] = Field(default_factory=list, description="Professional roles to invite.")
    participant_ids: list[Id] = Field(default_factory=list, description="People already agreed to invite.")
    not_before: datetime | None = None


class RecordFollowup(Contract):
    """``cmd.plans.record_followup.v1``: the responsible worker records the follow-up contact."""

    command_id: UUID
    plan_id: UUID
    recorded_by: Id = Field(description="Staff id: one of the plan's responsible workers.")
    what_happened: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=4000), MULTILINE] = Field(
        description="What happened (kept in the plans service only; never in an event)."
    )
    wellbeing_scores: WellbeingScores = Field(default_factory=dict, description="The wellbeing star looked at again.")
    next_contact_at: datetime | None = Field(default=None, description="Next contact (a new follow-up timer).")
    followup_meeting: FollowupMeetingRequest | None = Field(default=None, description="A follow-up meeting to convene.")


class CompleteHandover(Contract):
    """``cmd.plans.complete_handover.v1``: name the new responsible worker of an open handover (a worker
    of the plan left without a successor in the roster). By a worker of the case (the verified caller)."""

    access: ClassVar[Access] = Access("write")

    command_id: UUID = Field(description="Idempotency key chosen by the staff app.")
    case_id: UUID
    plan_id: UUID
    handover_id: UUID = Field(description="From plan.handover_opened (or the plan's handovers).")
    responsible_worker: ResponsibleWorker = Field(description="Who takes over: a professional in a public service.")


class RecordServiceStatus(Contract):
    """``cmd.plans.record_service_status.v1``: an onward service of the plan (an action elsewhere) moved
    on: sent, accepted, started, or declined. Each action elsewhere is followed from ``planned``; a step
    back is refused. By a worker of the case (the verified caller)."""

    access: ClassVar[Access] = Access("write")

    command_id: UUID = Field(description="Idempotency key chosen by the staff app.")
    case_id: UUID
    plan_id: UUID
    service_id: UUID = Field(description="The followed service (the plan's ``services``).")
    status: Literal["sent", "accepted", "started", "declined"]
    on: date | None = Field(default=None, description="Helsinki date of the step; today when empty. Not in the future.")
    start_by: date | None = Field(
        default=None, description="A new agreed last day for the service to start (e.g. given when it accepted)."
    )


class PlanQuery(Contract):
    """``query.plans.plan.v1``: one plan, a given version (default: the current one) and its version list."""

    plan_id: UUID
    version: int | None = None
    requested_by: Id = Field(description="Staff id of the reader (written to the audit log).")
    purpose: ShortText = Field(default="case work", description="Why the data is read (written to the audit log).")


class PrintablePlanQuery(Contract):
    """``query.plans.printable.v1``: the family's printable copy (HTML) of a plan version."""

    plan_id: UUID
    version: int | None = None
    language: Literal["fi", "sv", "en"] | None = Field(default=None, description="Default: the family's language.")
    requested_by: Id = Field(description="Staff id of the reader (written to the audit log).")
    purpose: ShortText = Field(default="case work", description="Why the data is read (written to the audit log).")


class OverdueQuery(Contract):
    """``query.plans.overdue.v1``: follow-ups due and not recorded within the grace period (the team's list)."""

    requested_by: Id = Field(description="Staff id of the reader (written to the audit log).")
    purpose: ShortText = Field(default="follow-up work", description="Why the data is read (written to the audit log).")
    responsible_worker_id: Id | None = Field(default=None, description="Only this worker's plans.")


class EffectivenessQuery(Contract):
    """``query.plans.effectiveness.v1``: the wellbeing star over time, area by area, for one family."""

    case_id: UUID
    requested_by: Id = Field(description="Staff id of the reader (written to the audit log).")
    purpose: ShortText = Field(default="case work", description="Why the data is read (written to the audit log).")


class EffectivenessChartQuery(Contract):
    """``query.plans.effectiveness_chart.v1``: the same as an SVG picture to show the family."""

    case_id: UUID
    requested_by: Id = Field(description="Staff id of the reader (written to the audit log).")
    purpose: ShortText = Field(default="case work", description="Why the data is read (written to the audit log).")
    kind: Literal["radar", "lines"] = "radar"
    language: Literal["fi", "sv", "en"] = "fi"


class PlansAccessLogQuery(CaseAccessLogQuery):
    """``query.plans.access_log.v1``: who has read these cases' plans and wellbeing star, and to whom a plan
    was shared or withheld (audit log). This read is audited too."""


# -- replies: the ``data`` of each request's Reply -----------------------------------------------------


class HandoverCompletedReply(Contract):
    """``data`` of ``cmd.plans.complete_handover.v1`` (the reply's ``id`` is the plan)."""

    responsible_worker_ids: list[str] = Field(description="The plan's responsible workers now.")


class ServiceStatusReply(Contract):
    """``data`` of ``cmd.plans.record_service_status.v1`` (the reply's ``id`` is the service)."""

    status: ServiceStatus
    start_by: date | None = Field(description="The agreed last day for the service to start.")
    days_late: int | None = Field(description="Status started: days after start_by (0 on time).")


class PlanVersionReply(Contract):
    """``data`` of ``cmd.plans.agree.v2``, ``cmd.plans.revise.v1`` and ``cmd.plans.close.v1`` (the reply's ``id`` is the plan)."""

    version: int = Field(description="The plan's version now.")


class FollowupRecordedReply(Contract):
    """``data`` of ``cmd.plans.record_followup.v2`` (the reply's ``id`` is the follow-up record)."""

    plan_id: UUID


class PlanSummary(Contract):
    plan_id: UUID
    version: int
    status: str = Field(description="active or closed.")
    outcome: PlanOutcome | None
    next_contact_at: datetime | None = Field(description="The agreed next contact (UTC).")
    followup_due_fired_at: datetime | None = Field(description="When the follow-up came due (UTC), if it has.")
    overdue: bool = Field(description="Due and not recorded within the grace period.")
    followups_recorded: int
    responsible_worker_ids: list[str]


class CasePlans(Contract):
    """``data`` of ``query.plans.case.v2``."""

    plans: list[PlanSummary]


class PlanVersionInfo(Contract):
    version: int
    recorded_at: datetime
    recorded_by: str


class ShareInfo(Contract):
    recipient_id: str
    recipient_role: str
    basis: Literal["family", "responsible_worker", "consent"]
    consent_id: UUID | None
    language: str
    shared_at: datetime


class FollowupRecordView(Contract):
    record_id: str
    plan_version: int
    recorded_by: str
    recorded_at: datetime
    what_happened: str
    wellbeing_scores: dict[StarArea, int]
    next_contact_at: datetime | None
    followup_meeting: dict[str, Any] | None = Field(
        description="The follow-up meeting asked for: roles_needed, participant_ids, not_before."
    )


class PlanDetail(Contract):
    """``data`` of ``query.plans.plan.v2``."""

    plan: dict[str, Any] = Field(
        description="The version's frame as recorded: version, changes_needed, actions {home, everyday_environment, "
        "elsewhere}, worker_contacts_family, family_contacts_worker, responsible_workers, next_contact_at, "
        "family_contacts, other_parties, family_language, ..."
    )
    current_version: int
    status: str
    outcome: PlanOutcome | None
    versions: list[PlanVersionInfo]
    shared_with: list[ShareInfo] = Field(description="Who this version went to, and on what basis.")
    withheld_for_lack_of_consent: list[str] = Field(description="Parties named in the plan without consent in force.")
    followups: list[FollowupRecordView]
    next_contact_at: datetime | None
    responsible_worker_ids: list[str] = Field(
        default_factory=list, description="The plan's responsible workers now (after any handover)."
    )
    services: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Onward services followed (one per action elsewhere): {service_id, what, where, status "
        "(planned|sent|accepted|started|declined), start_by, steps [{status, on, by}], days_late, overdue_at}.",
    )
    handovers: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Handovers from workers who left: {handover_id, from_worker_id, status (open|completed), opened_at, "
        "to_worker_id, completed_at, completed_by}.",
    )


class PrintablePlan(Contract):
    """``data`` of ``query.plans.printable.v2``."""

    content_type: str = Field(description="text/html; charset=utf-8")
    language: str
    version: int
    html: str


class OverdueFollowup(Contract):
    plan_id: UUID
    case_id: UUID
    plan_version: int
    due_at: datetime
    overdue_since: datetime
    responsible_worker_ids: list[str]


class OverdueFollowups(Contract):
    """``data`` of ``query.plans.overdue.v2``."""

    overdue: list[OverdueFollowup]
    grace_seconds: float = Field(description="The grace after a due follow-up before it counts as overdue.")


class StarPoint(Contract):
    at: datetime
    source: str = Field(description="meeting or followup.")
    score: int


class StarMeasurement(Contract):
    at: datetime
    source: str = Field(description="meeting or followup.")
    scores: dict[StarArea, int]


class AreaSeries(Contract):
    series: list[StarPoint]
    first: int | None
    latest: int | None
    change: int | None = Field(description="latest - first.")


class Effectiveness(Contract):
    """``data`` of ``query.plans.effectiveness.v2``."""

    measurements: list[StarMeasurement] = Field(description="Oldest first.")
    areas: dict[StarArea, AreaSeries] = Field(description="Area -> its series, first, latest and change.")


class EffectivenessChart(Contract):
    """``data`` of ``query.plans.effectiveness_chart.v2``."""

    content_type: str = Field(description="image/svg+xml")
    kind: Literal["radar", "lines"]
    svg: str


# Each request's reply data (``Reply.data``).
AgreePlan.reply_data = PlanVersionReply
RevisePlan.reply_data = PlanVersionReply
ClosePlan.reply_data = PlanVersionReply
RescheduleFollowup.reply_data = None
CompleteHandover.reply_data = HandoverCompletedReply
RecordServiceStatus.reply_data = ServiceStatusReply
RecordFollowup.reply_data = FollowupRecordedReply
PlanCaseQuery.reply_data = CasePlans
PlanQuery.reply_data = PlanDetail
PrintablePlanQuery.reply_data = PrintablePlan
OverdueQuery.reply_data = OverdueFollowups
EffectivenessQuery.reply_data = Effectiveness
EffectivenessChartQuery.reply_data = EffectivenessChart


# (event, producer, consumers outside the four services); the services' own subscriptions are
# read from their bootstraps (infra.wiring).
class PlanCopyPrepared(Event):
    """The family's copy of an agreed or revised plan version (perheen kappale suunnitelmasta), for the
    notifications service only: it carries the plan's content, so that the plan itself reaches the
    family with the plan-agreed message (HTML body, PDF and HTML to print). Published with
    ``plan.agreed`` / ``plan.revised`` in the same transaction; only the notifications service
    consumes it, and it keeps the copy only until the messages are out (data minimisation)."""

    event_type: ClassVar[str] = "plan.copy_prepared"
    stream: ClassVar[str] = "PLANS"
    private: ClassVar[bool] = True  # published as directory.plan.copy_prepared.v1 only

    plan_id: UUID
    plan_version: int
    language: Literal["fi", "sv", "en"] = Field(description="The family's language of the copy.")
    html: Personal[str] = Field(description="The printable copy as a standalone HTML page (the same as query.plans.printable).")
    pdf_base64: Personal[str] = Field(description="The printable copy as an A4 PDF, base64-encoded.")


EVENTS = (
    (PlanAgreed, "plans", ()),
    (PlanCopyPrepared, "plans", ()),
    (PlanRevised, "plans", ()),
    (PlanClosed, "plans", ()),
    (PlanShared, "plans", ()),
    (PlanHandoverOpened, "plans", ("staff apps",)),
    (PlanHandedOver, "plans", ()),
    (ServiceStatusRecorded, "plans", ("staff apps", "statistics")),
    (ServiceStartOverdue, "plans (durable timer)", ()),
    (FollowupReminderDue, "plans (durable timer)", ()),
    (FollowupRecorded, "plans", ("staff apps",)),
    (FollowupOverdue, "plans", ()),
    (FollowupDue, "plans (JetStream message schedule)", ()),
    (FollowupMeetingRequested, "plans", ()),
    (FollowupRescheduled, "plans", ()),
    (FollowupGraceEnded, "plans (durable timer)", ()),
)

# -- version 2: the actor from the verified token, the case named, a purpose on every read ----------
AgreePlanV2 = successor(AgreePlan, "cmd.plans.agree.v2", Access("write"))
RevisePlanV2 = successor(RevisePlan, "cmd.plans.revise.v2", Access("write"), add_case=True)
ClosePlanV2 = successor(ClosePlan, "cmd.plans.close.v2", Access("write"), add_case=True)
RescheduleFollowupV2 = successor(RescheduleFollowup, "cmd.plans.reschedule_followup.v2", Access("write"), add_case=True)
RecordFollowupV2 = successor(RecordFollowup, "cmd.plans.record_followup.v2", Access("write"), add_case=True)
PlanCaseQueryV2 = successor(PlanCaseQuery, "query.plans.case.v2", Access("read", guardian=True))
PlanQueryV2 = successor(PlanQuery, "query.plans.plan.v2", Access("read", guardian=True), add_case=True)
PrintablePlanQueryV2 = successor(PrintablePlanQuery, "query.plans.printable.v2", Access("read", guardian=True), add_case=True)
OverdueQueryV2 = successor(OverdueQuery, "query.plans.overdue.v2", Access("read", case=None))
EffectivenessQueryV2 = successor(EffectivenessQuery, "query.plans.effectiveness.v2", Access("read"))
EffectivenessChartQueryV2 = successor(EffectivenessChartQuery, "query.plans.effectiveness_chart.v2", Access("read"))
PlansAccessLogQueryV2 = successor(
    PlansAccessLogQuery, "query.plans.access_log.v2", Access("read", case="case_ids", guardian=True)
)

REQUESTS = (
    (
        "cmd.plans.complete_handover.v1",
        CompleteHandover,
        "Name the new responsible worker of an open handover (plan.handed_over; the family is told).",
    ),
    (
        "cmd.plans.record_service_status.v1",
        RecordServiceStatus,
        "Record an onward service's step: sent, accepted, started or declined (plan.service_status_recorded).",
    ),
    ("cmd.plans.agree.v1", AgreePlan, "Retired: use cmd.plans.agree.v2. Record the joint plan."),
    ("cmd.plans.revise.v1", RevisePlan, "Retired: use cmd.plans.revise.v2. Record a new version of a plan."),
    ("cmd.plans.close.v1", ClosePlan, "Retired: use cmd.plans.close.v2. Close a plan with an outcome."),
    (
        "cmd.plans.reschedule_followup.v1",
        RescheduleFollowup,
        "Retired: use cmd.plans.reschedule_followup.v2. Move the agreed next contact.",
    ),
    ("cmd.plans.record_followup.v1", RecordFollowup, "Retired: use cmd.plans.record_followup.v2. Record a follow-up contact."),
    ("query.plans.case.v1", PlanCaseQuery, "Retired: use query.plans.case.v2. Plans of one case (audited)."),
    ("query.plans.plan.v1", PlanQuery, "Retired: use query.plans.plan.v2. One plan version with its version list (audited)."),
    (
        "query.plans.printable.v1",
        PrintablePlanQuery,
        "Retired: use query.plans.printable.v2. The family's printable copy (HTML, fi/sv/en) (audited).",
    ),
    ("query.plans.overdue.v1", OverdueQuery, "Retired: use query.plans.overdue.v2. Overdue follow-ups (audited per case)."),
    (
        "query.plans.effectiveness.v1",
        EffectivenessQuery,
        "Retired: use query.plans.effectiveness.v2. Wellbeing star over time for one family (audited).",
    ),
    (
        "query.plans.effectiveness_chart.v1",
        EffectivenessChartQuery,
        "Retired: use query.plans.effectiveness_chart.v2. Wellbeing star chart (SVG) (audited).",
    ),
    (
        "query.plans.access_log.v1",
        PlansAccessLogQuery,
        "Retired: use query.plans.access_log.v2. Who has read or been given these cases' plans: the append-only audit log (audited).",
    ),
    ("cmd.plans.agree.v2", AgreePlanV2, "Record the joint plan."),
    ("cmd.plans.revise.v2", RevisePlanV2, "Record a new version of a plan."),
    ("cmd.plans.close.v2", ClosePlanV2, "Close a plan with an outcome."),
    ("cmd.plans.reschedule_followup.v2", RescheduleFollowupV2, "Move the agreed next contact."),
    ("cmd.plans.record_followup.v2", RecordFollowupV2, "Record a follow-up contact."),
    ("query.plans.case.v2", PlanCaseQueryV2, "Plans of one case (audited)."),
    ("query.plans.plan.v2", PlanQueryV2, "One plan version with its version list (audited)."),
    ("query.plans.printable.v2", PrintablePlanQueryV2, "The family's printable copy (HTML, fi/sv/en) (audited)."),
    ("query.plans.overdue.v2", OverdueQueryV2, "Overdue follow-ups (audited per case)."),
    ("query.plans.effectiveness.v2", EffectivenessQueryV2, "Wellbeing star over time for one family (audited)."),
    ("query.plans.effectiveness_chart.v2", EffectivenessChartQueryV2, "Wellbeing star chart (SVG) (audited)."),
    (
        "query.plans.access_log.v2",
        PlansAccessLogQueryV2,
        "Who has read or been given these cases' plans: the append-only audit log (audited).",
    ),
)
