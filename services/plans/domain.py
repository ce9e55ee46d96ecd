"""Plans domain. Plain Python, no I/O.

A joint plan (yhteinen suunnitelma) is recorded with the frame of the practice model: the concrete
things that need change, actions at home / in the child's everyday environment / elsewhere (who does
what, where), how follow-up is done (how the worker contacts the family and the family the worker),
the responsible worker or pair (vastuutyöntekijä) from a public service, and the next contact time
agreed with the family. A plan is never overwritten: a revision is a new version. The next contact
is a follow-up round (seuranta): due -> recorded (or overdue after a grace period).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4

from shared.catalogue import N_
from shared.clock import HELSINKI
from shared.errors import DomainError

ACTION_KINDS = ("home", "everyday_environment", "elsewhere")
ACTION_FIELDS = {
    "home": "actions_at_home",
    "everyday_environment": "actions_in_everyday_environment",
    "elsewhere": "actions_elsewhere",
}
OUTCOMES = ("goals_met", "family_ended", "moved_to_other_service", "other")
MAX_AHEAD = timedelta(days=366)


@dataclass(frozen=True)
class FollowupPolicy:
    """How far before the next contact the reminder goes, and how long after it a follow-up that was
    not recorded becomes overdue (visible to the team)."""

    reminder_lead: timedelta = timedelta(days=1)
    overdue_grace: timedelta = timedelta(days=2)


@dataclass
class Plan:
    plan_id: UUID
    case_id: UUID
    version: int
    meeting_id: UUID | None
    recorded_by: str
    agreed_at: datetime
    changes_needed: list[str]
    actions: dict[str, list[dict[str, Any]]]  # home | everyday_environment | elsewhere
    worker_contacts_family: str
    family_contacts_worker: str
    responsible_workers: list[dict[str, Any]]
    next_contact_at: datetime | None  # the open follow-up round's due time; None when none is open
    family_contacts: list[dict[str, Any]] = field(default_factory=list)
    other_parties: list[dict[str, Any]] = field(default_factory=list)
    family_language: str | None = None
    status: str = "active"  # active | closed
    followup_due_fired_at: datetime | None = None
    overdue_at: datetime | None = None
    version_recorded_at: datetime | None = None
    version_recorded_by: str | None = None
    agreed_next_contact_at: datetime | None = None  # as agreed in this version
    closed_at: datetime | None = None
    outcome: str | None = None
    closed_by: str | None = None
    followups_recorded: int = 0
    handovers: list[dict[str, Any]] = field(default_factory=list)  # a responsible worker left: who took over
    services: list[dict[str, Any]] = field(default_factory=list)  # onward services (actions elsewhere) followed

    def timer_subject(self) -> str:
        """The durable timer's identity: one follow-up timer per plan; rescheduling replaces it."""
        return f"timers.plans.followup.{self.plan_id}"

    def reminder_subject(self) -> str:
        return f"timers.plans.reminder.{self.plan_id}"

    def grace_subject(self) -> str:
        return f"timers.plans.grace.{self.plan_id}"

    def timer_subjects(self) -> tuple[str, str, str]:
        return (self.reminder_subject(), self.timer_subject(), self.grace_subject())

    @property
    def responsible_worker_ids(self) -> list[str]:
        return [w["worker_id"] for w in self.responsible_workers]

    @property
    def family_contact_ids(self) -> list[str]:
        return [c["contact_id"] for c in self.family_contacts]

    def language(self) -> str:
        """The family's document language (fi/sv/en). A family served in another language gets English."""
        lang = self.family_language or (self.family_contacts[0].get("language") if self.family_contacts else None) or "fi"
        return lang if lang in ("fi", "sv", "en") else "en"

    def snapshot(self) -> dict[str, Any]:
        """This version's content, kept for ever (a plan is never overwritten)."""
        return {
            "plan_id": str(self.plan_id),
            "case_id": str(self.case_id),
            "version": self.version,
            "meeting_id": str(self.meeting_id) if self.meeting_id else None,
            "recorded_by": self.version_recorded_by or self.recorded_by,
            "recorded_at": (self.version_recorded_at or self.agreed_at).isoformat(),
            "changes_needed": list(self.changes_needed),
            "actions": {k: list(v) for k, v in self.actions.items()},
            "worker_contacts_family": self.worker_contacts_family,
            "family_contacts_worker": self.family_contacts_worker,
            "responsible_workers": list(self.responsible_workers),
            "next_contact_at": _iso(self.agreed_next_contact_at or self.next_contact_at),
            "family_contacts": list(self.family_contacts),
            "other_parties": list(self.other_parties),
            "family_language": self.language(),
        }


def guardian_view(content: dict[str, Any]) -> dict[str, Any]:
    """A plan version as a guardian reads it: the plan, without the family members' or the other
    parties' e-mail addresses and phone numbers (a custody dispute or a non-disclosure order must not
    hand one guardian the other's details, nor a third party's). The responsible workers' work
    contacts stay: they are the family's way to reach them."""
    out = dict(content)
    out["family_contacts"] = [
        {k: v for k, v in c.items() if k not in ("email", "phone")} for c in content.get("family_contacts", [])
    ]
    out["other_parties"] = [{**party, "contact": None} for party in content.get("other_parties", [])]
    return out


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


# -- validation -----------------------------------------------------------------------------------


class PlanIncomplete(DomainError):
    """The plan frame is missing parts. ``problems`` names every one (the first is the main error)."""

    def __init__(self, problems: list[DomainError]) -> None:
        first = problems[0]
        super().__init__(first.code, first.field)
        self.message = first.message
        self.problems = problems


def _missing(field_name: str, en: str) -> DomainError:
    return DomainError("plan_incomplete", field_name, en=en)


def check_frame(
    *,
    now: datetime,
    changes_needed: list[str],
    actions: dict[str, list[dict[str, Any]]],
    worker_contacts_family: str,
    family_contacts_worker: str,
    responsible_workers: list[dict[str, Any]],
    next_contact_at: datetime | None,
    **_: Any,
) -> list[DomainError]:
    """Every problem with the frame, in the frame's order (empty when the plan is complete)."""
    p: list[DomainError] = []
    if not [c for c in changes_needed if c and c.strip()]:
        p.append(_missing("changes_needed", N_("Name at least one concrete thing in everyday life that needs change.")))
    for i, c in enumerate(changes_needed):
        if not (c and c.strip()):
            p.append(_missing(f"changes_needed.{i}", N_("This change is blank.")))
    if not any(actions.get(k) for k in ACTION_KINDS):
        p.append(
            _missing("actions", N_("Record at least one action: at home, in the child's everyday environment or elsewhere."))
        )
    for kind in ACTION_KINDS:
        for i, a in enumerate(actions.get(kind, [])):
            base = f"{ACTION_FIELDS[kind]}.{i}"
            if not (a.get("what") or "").strip():
                p.append(_missing(f"{base}.what", N_("Say what is done.")))
            if not (a.get("who") or "").strip():
                p.append(_missing(f"{base}.who", N_("Say who does it.")))
            if kind == "elsewhere" and not (a.get("where") or "").strip():
                p.append(_missing(f"{base}.where", N_("Say where (which service or place).")))
    if not (worker_contacts_family or "").strip():
        p.append(_missing("worker_contacts_family", N_("Say how the worker contacts the family.")))
    if not (family_contacts_worker or "").strip():
        p.append(_missing("family_contacts_worker", N_("Say how the family contacts the worker.")))
    if not responsible_workers:
        p.append(_missing("responsible_workers", N_("Name the responsible worker (or pair).")))
    elif len(responsible_workers) > 2:
        p.append(DomainError("too_many_responsible", "responsible_workers"))
    seen: set[str] = set()
    for i, w in enumerate(responsible_workers):
        if not w.get("public_service"):
            p.append(DomainError("responsible_not_public", f"responsible_workers.{i}.public_service"))
        if w.get("worker_id") in seen:
            p.append(DomainError("duplicate", f"responsible_workers.{i}.worker_id"))
        seen.add(w.get("worker_id", ""))
    p.extend(check_next_contact(next_contact_at, now))
    return p


def check_next_contact(next_contact_at: datetime | None, now: datetime, field_name: str = "next_contact_at") -> list[DomainError]:
    if next_contact_at is None:
        return [_missing(field_name, N_("Agree the time of the next contact with the family."))]
    if next_contact_at.tzinfo is None:
        return [DomainError("naive_datetime", field_name, en=N_("Time needs a time zone."))]
    if next_contact_at <= now:
        return [DomainError("in_past", field_name, en=N_("The next contact must be in the future."))]
    if next_contact_at > now + MAX_AHEAD:
        return [DomainError("too_far", field_name)]
    return []


def _refuse_if(problems: list[DomainError]) -> None:
    if problems:
        raise PlanIncomplete(problems)


def _clean_actions(actions: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {k: [dict(a) for a in actions.get(k, [])] for k in ACTION_KINDS}


def agree(
    *,
    case_id: UUID,
    meeting_id: UUID | None,
    recorded_by: str,
    now: datetime,
    changes_needed: list[str],
    actions: dict[str, list[dict[str, Any]]],
    worker_contacts_family: str,
    family_contacts_worker: str,
    responsible_workers: list[dict[str, Any]],
    next_contact_at: datetime | None,
    family_contacts: list[dict[str, Any]],
    other_parties: list[dict[str, Any]] | None = None,
    family_language: str | None = None,
) -> Plan:
    """Validate the plan frame and create version 1. Refusal names every missing part."""
    _refuse_if(
        check_frame(
            now=now,
            changes_needed=changes_needed,
            actions=actions,
            worker_contacts_family=worker_contacts_family,
            family_contacts_worker=family_contacts_worker,
            responsible_workers=responsible_workers,
            next_contact_at=next_contact_at,
        )
    )
    assert next_contact_at is not None
    return Plan(
        plan_id=uuid4(),
        case_id=case_id,
        version=1,
        meeting_id=meeting_id,
        recorded_by=recorded_by,
        agreed_at=now,
        changes_needed=[c.strip() for c in changes_needed],
        actions=_clean_actions(actions),
        worker_contacts_family=worker_contacts_family.strip(),
        family_contacts_worker=family_contacts_worker.strip(),
        responsible_workers=responsible_workers,
        next_contact_at=next_contact_at,
        family_contacts=family_contacts,
        other_parties=other_parties or [],
        family_language=family_language,
        version_recorded_at=now,
        version_recorded_by=recorded_by,
        agreed_next_contact_at=next_contact_at,
    )


def _must_be_active(plan: Plan) -> None:
    if plan.status != "active":
        raise DomainError("plan_closed", "plan_id")


def revise(
    plan: Plan,
    *,
    recorded_by: str,
    now: datetime,
    expected_version: int | None,
    changes_needed: list[str],
    actions: dict[str, list[dict[str, Any]]],
    worker_contacts_family: str,
    family_contacts_worker: str,
    responsible_workers: list[dict[str, Any]],
    next_contact_at: datetime | None,
    family_contacts: list[dict[str, Any]],
    other_parties: list[dict[str, Any]] | None = None,
    family_language: str | None = None,
) -> None:
    """Make the next version (the caller keeps the earlier one). The follow-up round restarts at the
    revised next contact."""
    _must_be_active(plan)
    if expected_version is not None and expected_version != plan.version:
        raise DomainError("version_conflict", "expected_version")
    _refuse_if(
        check_frame(
            now=now,
            changes_needed=changes_needed,
            actions=actions,
            worker_contacts_family=worker_contacts_family,
            family_contacts_worker=family_contacts_worker,
            responsible_workers=responsible_workers,
            next_contact_at=next_contact_at,
        )
    )
    plan.version += 1
    plan.changes_needed = [c.strip() for c in changes_needed]
    plan.actions = _clean_actions(actions)
    plan.worker_contacts_family = worker_contacts_family.strip()
    plan.family_contacts_worker = family_contacts_worker.strip()
    plan.responsible_workers = responsible_workers
    plan.family_contacts = family_contacts
    plan.other_parties = other_parties or []
    plan.family_language = family_language if family_language is not None else plan.family_language
    plan.version_recorded_at = now
    plan.version_recorded_by = recorded_by
    plan.agreed_next_contact_at = next_contact_at
    _open_round(plan, next_contact_at)


def _open_round(plan: Plan, due: datetime | None) -> None:
    plan.next_contact_at = due
    plan.followup_due_fired_at = None
    plan.overdue_at = None


def close(plan: Plan, *, outcome: str, recorded_by: str, now: datetime) -> None:
    _must_be_active(plan)
    if outcome not in OUTCOMES:
        raise DomainError("invalid_outcome", "outcome")
    plan.status = "closed"
    plan.outcome = outcome
    plan.closed_at = now
    plan.closed_by = recorded_by
    plan.next_contact_at = None


def reschedule(plan: Plan, *, next_contact_at: datetime, now: datetime) -> datetime | None:
    """Move the open follow-up round (or open one); returns the previous due time."""
    _must_be_active(plan)
    problems = check_next_contact(next_contact_at, now)
    if problems:
        raise problems[0]
    previous = plan.next_contact_at
    _open_round(plan, next_contact_at)
    return previous


# -- handover: a responsible worker leaves ---------------------------------------------------------


def open_handover(plan: Plan, *, from_worker_id: str, now: datetime) -> dict[str, Any] | None:
    """A handover of the plan from a deactivated responsible worker; None when the plan is closed, the
    worker is not responsible for it, or one is already open for them."""
    if plan.status != "active" or from_worker_id not in plan.responsible_worker_ids:
        return None
    if any(h["from_worker_id"] == from_worker_id and h["status"] == "open" for h in plan.handovers):
        return None
    h = {"handover_id": str(uuid4()), "from_worker_id": from_worker_id, "status": "open", "opened_at": now.isoformat()}
    plan.handovers.append(h)
    return h


def complete_handover(plan: Plan, handover_id: str, successor: dict[str, Any], *, by: str, now: datetime) -> dict[str, Any]:
    """The new responsible worker takes the leaver's place (a pair keeps its other member). The
    follow-up round stays as agreed with the family; only who follows it changes."""
    _must_be_active(plan)
    h = next((h for h in plan.handovers if h["handover_id"] == handover_id), None)
    if h is None:
        raise DomainError("not_found", "handover_id")
    if h["status"] != "open":
        raise DomainError("handover_completed", "handover_id")
    if not successor.get("public_service"):
        raise DomainError("responsible_not_public", "responsible_worker.public_service")
    if successor["worker_id"] == h["from_worker_id"]:
        raise DomainError("unknown_successor", "responsible_worker.worker_id")
    kept = [w for w in plan.responsible_workers if w["worker_id"] not in (h["from_worker_id"], successor["worker_id"])]
    plan.responsible_workers = [*kept, successor]
    h.update(status="completed", to_worker_id=successor["worker_id"], completed_at=now.isoformat(), completed_by=by)
    return h


# -- onward services: each action elsewhere followed ------------------------------------------------

SERVICE_STEPS = ("planned", "sent", "accepted", "started")
SERVICE_ENDS = frozenset({"started", "declined"})


def track_services(plan: Plan, now: datetime) -> list[dict[str, Any]]:
    """Follow every action elsewhere not followed yet (matched by what and where); returns the new
    ones. A revision that drops an action keeps its service's record: what happened stays known."""
    known = {(x["what"], x["where"]) for x in plan.services}
    new = []
    for a in plan.actions.get("elsewhere", []):
        key = (a.get("what", ""), a.get("where") or "")
        if key in known:
            continue
        known.add(key)
        new.append(
            {
                "service_id": str(uuid4()),
                "what": key[0],
                "where": key[1],
                "status": "planned",
                "start_by": a.get("start_by"),
                "steps": [{"status": "planned", "on": now.date().isoformat()}],
            }
        )
    plan.services.extend(new)
    return new


def service_start_overdue_at(svc: dict[str, Any]) -> datetime | None:
    """When a service not started is overdue: the start of the day after ``start_by`` (Helsinki)."""
    if not svc.get("start_by") or svc["status"] in SERVICE_ENDS:
        return None
    day = date.fromisoformat(svc["start_by"]) + timedelta(days=1)
    return datetime.combine(day, time(0, 0), tzinfo=HELSINKI)


def record_service_status(
    plan: Plan, service_id: str, status: str, *, on: date, today: date, start_by: date | None, by: str
) -> tuple[dict[str, Any], str]:
    """Move a service on (sent → accepted → started, or declined); returns it and its previous status.
    A step back or a step after the end is refused."""
    svc = next((x for x in plan.services if x["service_id"] == service_id), None)
    if svc is None:
        raise DomainError("not_found", "service_id")
    previous = svc["status"]
    if previous in SERVICE_ENDS:
        raise DomainError("service_closed", "status")
    if status != "declined" and SERVICE_STEPS.index(status) <= SERVICE_STEPS.index(previous):
        raise DomainError("service_step_back", "status")
    if on > today:
        raise DomainError("recorded_in_future", "on")
    if start_by is not None:
        svc["start_by"] = start_by.isoformat()
    svc["status"] = status
    svc["steps"].append({"status": status, "on": on.isoformat(), "by": by})
    if status == "started" and svc.get("start_by"):
        svc["days_late"] = max(0, (on - date.fromisoformat(svc["start_by"])).days)
    return svc, previous


def service_overdue(plan: Plan | None, service_id: str, start_by: date, now: datetime) -> dict[str, Any] | None:
    """The start-by timer fired: the service, marked overdue, when it still has not started by that day."""
    svc = next((x for x in plan.services if x["service_id"] == service_id), None) if plan else None
    if svc is None or svc["status"] in SERVICE_ENDS or svc.get("start_by") != start_by.isoformat() or svc.get("overdue_at"):
        return None
    svc["overdue_at"] = now.isoformat()
    return svc


def _must_be_responsible(plan: Plan, worker_id: str) -> None:
    if worker_id not in plan.responsible_worker_ids:
        raise DomainError("not_responsible_worker", "recorded_by")


def record_followup(
    plan: Plan, *, recorded_by: str, now: datetime, next_contact_at: datetime | None, meeting_requested: bool
) -> None:
    """Close the open follow-up round; open the next one at ``next_contact_at`` (or none: a follow-up
    meeting is convened instead)."""
    _must_be_active(plan)
    _must_be_responsible(plan, recorded_by)
    if next_contact_at is None and not meeting_requested:
        raise _missing("next_contact_at", N_("Agree the next contact or ask for a follow-up meeting."))
    if next_contact_at is not None:
        problems = check_next_contact(next_contact_at, now)
        if problems:
            raise problems[0]
    plan.followups_recorded += 1
    _open_round(plan, next_contact_at)


def _current_round(plan: Plan | None, plan_version: int, due_at: datetime) -> bool:
    return (
        plan is not None
        and plan.status == "active"
        and plan.version == plan_version
        and plan.next_contact_at is not None
        and int(plan.next_contact_at.timestamp()) == int(due_at.timestamp())
    )


def followup_fired(plan: Plan | None, *, plan_version: int, now: datetime, due_at: datetime | None = None) -> bool:
    """Record that the follow-up timer fired; False for a stale, repeated or unknown timer."""
    if plan is None or plan.status != "active" or plan.version != plan_version or plan.followup_due_fired_at is not None:
        return False
    if due_at is not None and not _current_round(plan, plan_version, due_at):
        return False
    plan.followup_due_fired_at = now
    return True


def grace_ended(plan: Plan | None, *, plan_version: int, due_at: datetime, now: datetime) -> bool:
    """The grace after the due time ended: True (and the plan marked overdue) when the round is still open."""
    if not _current_round(plan, plan_version, due_at) or plan.overdue_at is not None:  # type: ignore[union-attr]
        return False
    plan.overdue_at = now  # type: ignore[union-attr]
    return True


def is_overdue(plan: Plan, now: datetime, grace: timedelta) -> bool:
    return plan.status == "active" and plan.next_contact_at is not None and plan.next_contact_at + grace <= now


def timers(plan: Plan, now: datetime, policy: FollowupPolicy) -> dict[str, datetime | None]:
    """When each follow-up timer of the open round fires (None: no such timer, cancel it)."""
    due = plan.next_contact_at if plan.status == "active" else None
    if due is None:
        return {"reminder": None, "due": None, "grace": None}
    reminder = due - policy.reminder_lead
    return {
        "reminder": reminder if policy.reminder_lead > timedelta(0) and reminder > now else None,
        "due": due,
        "grace": due + policy.overdue_grace,
    }


# -- sharing --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Consent:
    """One entry of the family's consent ledger, as the plans service knows it (share_plan only)."""

    consent_id: UUID
    case_id: UUID
    recipient: str
    withdrawn: bool = False
    valid_until: date | None = None

    def in_force(self, today: date) -> bool:
        return not self.withdrawn and (self.valid_until is None or today <= self.valid_until)


@dataclass(frozen=True)
class ShareTarget:
    recipient_id: str
    recipient_role: str
    basis: str  # family | responsible_worker | consent
    contact: dict[str, Any] | None
    language: str
    consent_id: UUID | None = None


def consent_for(consents: list[Consent], recipient: str, today: date) -> Consent | None:
    for c in consents:
        if c.recipient == recipient and c.in_force(today):
            return c
    return None


def share_targets(plan: Plan, consents: list[Consent], today: date) -> list[ShareTarget]:
    """Who receives this version: the family (in its language), the responsible worker(s), and every
    other party ONLY while the family's consent for that party is in force. Nobody else."""
    lang = plan.language()
    out: dict[str, ShareTarget] = {}
    for c in plan.family_contacts:
        out.setdefault(c["contact_id"], ShareTarget(c["contact_id"], "family", "family", c, lang))
    for w in plan.responsible_workers:
        contact = w.get("contact")
        wlang = (contact or {}).get("language") or "fi"
        out.setdefault(w["worker_id"], ShareTarget(w["worker_id"], "responsible_worker", "responsible_worker", contact, wlang))
    parties = {p["party_id"]: p for p in plan.other_parties}
    recipients = list(parties) + [c.recipient for c in consents if c.recipient not in parties]
    for rid in recipients:
        if rid in out:
            continue
        consent = consent_for(consents, rid, today)
        if consent is None:
            continue
        party = parties.get(rid, {})
        contact = party.get("contact")
        out[rid] = ShareTarget(
            rid,
            party.get("role") or "consented_party",
            "consent",
            contact,
            (contact or {}).get("language") or "fi",
            consent.consent_id,
        )
    return list(out.values())


def withheld_parties(plan: Plan, consents: list[Consent], today: date) -> list[str]:
    """Parties named in the plan without consent in force: the plan does not go to them."""
    return [p["party_id"] for p in plan.other_parties if consent_for(consents, p["party_id"], today) is None]


# -- effectiveness --------------------------------------------------------------------------------


STAR_AREAS = (
    "child_health_growth_development",
    "child_relationships_safety",
    "child_self_view",
    "child_family_daycare_school_leisure_friends",
    "parenting_relationship_with_child",
    "social_wellbeing_family_environment",
)


@dataclass(frozen=True)
class Measurement:
    measured_at: datetime
    source: str  # meeting | followup
    scores: dict[str, int]


def effectiveness(measurements: list[Measurement]) -> dict[str, Any]:
    """The wellbeing star over time, area by area: each area's series, first, latest and change."""
    ms = sorted(measurements, key=lambda m: m.measured_at)
    areas: dict[str, Any] = {}
    for area in STAR_AREAS:
        series = [{"at": m.measured_at.isoformat(), "source": m.source, "score": m.scores[area]} for m in ms if area in m.scores]
        scores = [m.scores[area] for m in ms if area in m.scores]
        first = scores[0] if scores else None
        latest = scores[-1] if scores else None
        areas[area] = {
            "series": series,
            "first": first,
            "latest": latest,
            "change": (latest - first) if latest is not None and first is not None else None,
        }
    return {
        "measurements": [{"at": m.measured_at.isoformat(), "source": m.source, "scores": dict(m.scores)} for m in ms],
        "areas": areas,
    }
