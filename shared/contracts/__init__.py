"""The event catalogue: every stream, event subject, command and query in one place.

Services import contracts only from here; no service imports another service's code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .base import Contract, Event, FieldError, RefusalDetail, Reply, build, field_errors, parse_event, reply_problems
from .directory import DIRECTORY_PREFIX, DIRECTORY_STREAM, holds_contacts, privatise, route, split
from .meetings import (
    ConveneMeeting,
    MeetingCaseQuery,
    MeetingConvened,
    MeetingHeld,
    RecordMeetingHeld,
)
from .notifications import NotificationCaseQuery, NotificationSent
from .plans import AgreePlan, FollowupDue, FollowupMeetingRequested, PlanAgreed, PlanCaseQuery
from .referral import (
    INTAKE_SUBJECT,
    CaseErased,
    CaseQuery,
    ConsentGiven,
    ConsentWithdrawn,
    ReferralReceived,
    ReferralRejected,
    ReferralSubmission,
)
from .routes import STAFF_FACING


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    owner: str
    schedules: bool = False  # holds durable timers (JetStream message schedules)
    description: str = ""


def _timers(service: str) -> StreamSpec:
    return StreamSpec(
        f"TIMERS_{service.upper()}",
        (f"timers.{service}.>",),
        service,
        schedules=True,
        description=f"Durable timers of the {service} service (JetStream message schedules). A timer fires "
        f"onto timers.{service}.fired here; the service then emits its event through its outbox.",
    )


STREAMS: dict[str, StreamSpec] = {
    s.name: s
    for s in (
        StreamSpec("INTAKE", ("intake.>",), "front door", description="Submissions from front-door systems."),
        StreamSpec("REFERRAL", ("referral.>", "consent.>", "assessment.>"), "referral"),
        StreamSpec("MEETINGS", ("meeting.>", "roster.>"), "meetings"),
        StreamSpec("PLANS", ("plan.>", "followup.>"), "plans"),
        StreamSpec("NOTIFICATIONS", ("notification.>",), "notifications"),
        StreamSpec(
            DIRECTORY_STREAM,
            (f"{DIRECTORY_PREFIX}>",),
            "notifications",
            description="Private copies of events with contact details, for the notifications service's contact "
            "directory only (shared/contracts/directory.py). No staff or front-door identity may read it.",
        ),
        StreamSpec("DEADLETTER", ("deadletter.>",), "operations", description="Messages that failed max deliveries."),
        # Message schedules need rollup and purge on their stream (nats-server forces both), so the
        # timers are kept apart from the event history, which refuses both.
        _timers("referral"),
        _timers("meetings"),
        _timers("plans"),
    )
}


@dataclass(frozen=True)
class EventSpec:
    model: type[Event]
    producer: str
    outside: tuple[str, ...] = field(default_factory=tuple)
    """Consumers outside the four services (front door, staff apps, client portal). Which services
    consume an event is read from their bootstraps (``infra.wiring.consumers``), never declared."""

    @property
    def subject(self) -> str:
        return self.model.subject()

    @property
    def filter_subject(self) -> str:
        """Every subject it is published on (a routed event: all its routes)."""
        return self.model.filter_subject()


from . import meetings as _meetings
from . import notifications as _notifications
from . import plans as _plans
from . import referral as _referral

_MODULES = (_referral, _meetings, _plans, _notifications)


def _published(model: type[Event], producer: str, outside: tuple[str, ...]) -> tuple[EventSpec, ...]:
    """A version with contact details is retired: its public successor and its private directory
    copy are published instead (shared/contracts/directory.py). A staff-facing event is published
    on routed subjects, from its next version on (shared/contracts/routes.py)."""
    staff_facing = f"{model.event_type}.".startswith(STAFF_FACING)
    if model.public_form is not None and model.directory_form is None and not holds_contacts(model):
        return ()  # retired by hand: its successor is declared next to it
    if model.routed:  # declared routed: published as it is
        return (EventSpec(model, producer, outside),)
    if model.private:
        return (EventSpec(privatise(model), producer, ()),)
    if holds_contacts(model):
        public, private = split(model, routed=staff_facing)
        return EventSpec(public, producer, outside), EventSpec(private, producer, ())
    if staff_facing:
        return (EventSpec(route(model), producer, outside),)
    return (EventSpec(model, producer, outside),)


# Each service's contract module lists its own events and requests; the catalogue joins them.
EVENTS: tuple[EventSpec, ...] = tuple(spec for mod in _MODULES for (m, p, c) in mod.EVENTS for spec in _published(m, p, c))
RETIRED_EVENTS: tuple[type[Event], ...] = tuple(
    m for mod in _MODULES for (m, _, _) in mod.EVENTS if m.public_form is not None or m.directory_form is not None
)
"""Event versions no longer published because they carried contact details (docs/operations.md)."""


def produced_by(service: str) -> tuple[type[Event], ...]:
    """Every event model a service builds: its events as declared, and the forms they are published in."""
    declared = tuple(m for mod in _MODULES for (m, p, _) in mod.EVENTS if p == service)
    return declared + tuple(e.model for e in EVENTS if e.producer == service)


def published_subject(event_type: str) -> str:
    """The subject filter an event type is published on now: a retired version's successor (contact
    details, shared/contracts/directory.py), every route of a routed one (shared/contracts/routes.py).
    Read-model rebuilds replay it."""
    return next(e.filter_subject for e in EVENTS if e.model.event_type == event_type)


@dataclass(frozen=True)
class RequestSpec:
    subject: str
    model: type[Contract]
    service: str
    description: str


REQUESTS: tuple[RequestSpec, ...] = tuple(
    RequestSpec(subj, model, mod.__name__.rsplit(".", 1)[1], desc) for mod in _MODULES for (subj, model, desc) in mod.REQUESTS
)

# A request's next version answers with the same data as its predecessor, unless it declares its own.
for _spec in REQUESTS:
    _previous = getattr(_spec.model, "predecessor", None)
    if _previous is not None and "reply_data" not in _spec.model.__dict__:
        _spec.model.reply_data = getattr(_previous, "reply_data", None)


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
    "ConsentGiven",
    "CaseErased",
    "ConsentWithdrawn",
    "ConveneMeeting",
    "Event",
    "EventSpec",
    "FieldError",
    "FollowupDue",
    "FollowupMeetingRequested",
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
    "RefusalDetail",
    "Reply",
    "StreamSpec",
    "build",
    "field_errors",
    "parse_event",
    "produced_by",
    "reply_problems",
    "stream_for_subject",
]
