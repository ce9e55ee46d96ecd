"""Contracts of the plans service: the joint plan (yhteinen suunnitelma) and its follow-up (seuranta)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from .base import Contract, Event
from .common import ContactPoint, Id, ShortText, StarArea


class PlannedAction(Contract):
    what: ShortText = Field(description="What is done.")
    who: ShortText = Field(description="Who does it.")
    where: ShortText | None = Field(default=None, description="Where, for actions elsewhere.")


class ResponsibleWorker(Contract):
    """Vastuutyöntekijä: named by the family, a professional in a public service."""

    worker_id: Id
    organisation: ShortText
    public_service: bool = Field(description="Must be true: the responsible worker works in a public service.")
    contact: ContactPoint | None = None


class AgreePlan(Contract):
    """``cmd.plans.agree.v1``: record the joint plan agreed with the family."""

    command_id: UUID
    case_id: UUID
    meeting_id: UUID | None = None
    recorded_by: Id
    changes_needed: list[ShortText] = Field(description="Concrete things in everyday life that need change.")
    actions_at_home: list[PlannedAction] = Field(default_factory=list)
    actions_in_everyday_environment: list[PlannedAction] = Field(
        default_factory=list, description="In early childhood education or school."
    )
    actions_elsewhere: list[PlannedAction] = Field(default_factory=list)
    worker_contacts_family: ShortText = Field(description="How the worker contacts the family.")
    family_contacts_worker: ShortText = Field(description="How the family contacts the worker.")
    responsible_workers: list[ResponsibleWorker] = Field(min_length=1, max_length=2)
    next_contact_at: datetime = Field(description="Next contact, agreed with the family (aware datetime).")
    family_contacts: list[ContactPoint] = Field(default_factory=list, description="Family members who receive the plan.")


class PlanAgreed(Event):
    """A joint plan was agreed with a named responsible worker. Carries references, not the plan's content."""

    event_type: ClassVar[str] = "plan.agreed"
    stream: ClassVar[str] = "PLANS"

    plan_id: UUID
    plan_version: int = Field(description="1 for the first version.")
    meeting_id: UUID | None
    responsible_workers: list[ResponsibleWorker]
    next_contact_at: datetime = Field(description="When the follow-up is due (UTC).")
    family_contacts: list[ContactPoint] = Field(default_factory=list)


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
    participant_ids: list[str] = Field(default_factory=list, description="People already agreed to invite (family contact ids, staff ids).")
    not_before: datetime | None = Field(default=None, description="Earliest time for the meeting (UTC).")


class PlanCaseQuery(Contract):
    """``query.plans.case.v1``: the plans of one case."""

    case_id: UUID
    requested_by: Id


class PlanRevised(Event):
    """A new version of the plan; the old version is kept (a plan is never overwritten)."""

    event_type: ClassVar[str] = "plan.revised"
    stream: ClassVar[str] = "PLANS"

    plan_id: UUID
    plan_version: int
    responsible_workers: list[ResponsibleWorker]
    next_contact_at: datetime
    family_contacts: list[ContactPoint] = Field(default_factory=list)


PlanOutcome = Literal["goals_met", "family_ended", "moved_to_other_service", "other"]


class PlanClosed(Event):
    """The work ended: goals met or the family ended it. Follow-up timers are cancelled."""

    event_type: ClassVar[str] = "plan.closed"
    stream: ClassVar[str] = "PLANS"

    plan_id: UUID
    plan_version: int
    outcome: PlanOutcome


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
    contact: ContactPoint | None = Field(default=None, description="How to reach the recipient.")
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


EVENTS = (
    (PlanAgreed, "plans", ("notifications",)),
    (PlanRevised, "plans", ("notifications",)),
    (PlanClosed, "plans", ("notifications",)),
    (PlanShared, "plans", ("notifications",)),
    (FollowupReminderDue, "plans (durable timer)", ("notifications",)),
    (FollowupRecorded, "plans", ("staff apps",)),
    (FollowupOverdue, "plans", ("notifications",)),
    (FollowupDue, "plans (JetStream message schedule)", ("plans", "notifications")),
    (FollowupMeetingRequested, "plans", ("meetings",)),
)
REQUESTS = (
    ("cmd.plans.agree.v1", AgreePlan, "Record the joint plan."),
    ("query.plans.case.v1", PlanCaseQuery, "Plans of one case."),
)
