"""The event catalogue: every stream, event subject, command and query in one place.

Services import contracts only from here; no service imports another service's code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .base import Contract, Event, FieldError, Reply, field_errors, parse_event
from .meetings import (
    ConveneMeeting,
    MeetingCaseQuery,
    MeetingConvened,
    MeetingHeld,
    RecordMeetingHeld,
)
from .notifications import NotificationCaseQuery, NotificationSent
from .plans import AgreePlan, FollowupDue, PlanAgreed, PlanCaseQuery
from .referral import INTAKE_SUBJECT, CaseQuery, ReferralReceived, ReferralRejected, ReferralSubmission


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    owner: str
    schedules: bool = False  # holds durable timers (JetStream message schedules)
    description: str = ""


STREAMS: dict[str, StreamSpec] = {
    s.name: s
    for s in (
        StreamSpec("INTAKE", ("intake.>",), "front door", description="Submissions from front-door systems."),
        StreamSpec("REFERRAL", ("referral.>", "timers.referral.>"), "referral", schedules=True),
        StreamSpec("MEETINGS", ("meeting.>", "timers.meetings.>"), "meetings", schedules=True),
        StreamSpec("PLANS", ("plan.>", "followup.>", "timers.plans.>"), "plans", schedules=True),
        StreamSpec("NOTIFICATIONS", ("notification.>",), "notifications"),
        StreamSpec("DEADLETTER", ("deadletter.>",), "operations", description="Messages that failed max deliveries."),
    )
}


@dataclass(frozen=True)
class EventSpec:
    model: type[Event]
    producer: str
    consumers: tuple[str, ...] = field(default_factory=tuple)

    @property
    def subject(self) -> str:
        return self.model.subject()


EVENTS: tuple[EventSpec, ...] = (
    EventSpec(ReferralReceived, "referral", ("meetings", "notifications")),
    EventSpec(ReferralRejected, "referral", ("front door",)),
    EventSpec(MeetingConvened, "meetings", ("notifications",)),
    EventSpec(MeetingHeld, "meetings", ("staff apps",)),
    EventSpec(PlanAgreed, "plans", ("notifications",)),
    EventSpec(FollowupDue, "plans (JetStream message schedule)", ("plans", "notifications")),
    EventSpec(NotificationSent, "notifications", ("staff apps",)),
)


@dataclass(frozen=True)
class RequestSpec:
    subject: str
    model: type[Contract]
    service: str
    description: str


REQUESTS: tuple[RequestSpec, ...] = (
    RequestSpec("query.referral.case.v1", CaseQuery, "referral", "One case with its referral."),
    RequestSpec("cmd.meetings.convene.v1", ConveneMeeting, "meetings", "Convene a joint meeting."),
    RequestSpec("cmd.meetings.record_held.v1", RecordMeetingHeld, "meetings", "Record a meeting as held."),
    RequestSpec("query.meetings.case.v1", MeetingCaseQuery, "meetings", "Meetings of one case."),
    RequestSpec("cmd.plans.agree.v1", AgreePlan, "plans", "Record the joint plan."),
    RequestSpec("query.plans.case.v1", PlanCaseQuery, "plans", "Plans of one case."),
    RequestSpec("query.notifications.case.v1", NotificationCaseQuery, "notifications", "Notifications of one case."),
)


def stream_for_subject(subject: str) -> str:
    for spec in STREAMS.values():
        for pattern in spec.subjects:
            if pattern.endswith(">") and subject.startswith(pattern[:-1]):
                return spec.name
            if pattern == subject:
                return spec.name
    raise KeyError(f"no stream holds subject {subject!r}")


__all__ = [
    "EVENTS",
    "INTAKE_SUBJECT",
    "REQUESTS",
    "STREAMS",
    "AgreePlan",
    "CaseQuery",
    "Contract",
    "ConveneMeeting",
    "Event",
    "EventSpec",
    "FieldError",
    "FollowupDue",
    "MeetingCaseQuery",
    "MeetingConvened",
    "MeetingHeld",
    "NotificationCaseQuery",
    "NotificationSent",
    "PlanAgreed",
    "PlanCaseQuery",
    "RecordMeetingHeld",
    "ReferralReceived",
    "ReferralRejected",
    "ReferralSubmission",
    "Reply",
    "StreamSpec",
    "field_errors",
    "parse_event",
    "stream_for_subject",
]
