"""Referral domain: a received referral, opening or linking a case, and the case's decisions.

Plain Python: no I/O, no framework. The handlers turn the results into stored rows and events. The
intake's rules are in screening.py, the child keys in children.py, the statutory deadlines in
deadlines.py, the consent ledger in consent.py and routing in routing.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from shared.calendar import helsinki_date
from shared.contracts.base import time_ordered_id
from shared.contracts.common import normalised_email
from shared.errors import DomainError

from .children import Pseudonym, child_keys
from .deadlines import completion_due, decision_due
from .hetu import parse_hetu
from .screening import normalise_phone

STATUTORY_CHANNELS = {"child_protection_notification", "assessment_request", "joint_contact"}
"""Channels after which a social worker must decide on a service-need assessment within 7 working days."""

VOLUNTARY_CHANNELS = {"phone", "e_contact", "guidance", "concern_with_family"}

DECISION_OUTCOMES = ("start_assessment", "not_needed", "child_protection_client")
"""The 7-working-day decision (LSL 26 §, SHL 36 §): start the service-need assessment; no assessment,
it is evidently unnecessary (ilmeisen tarpeeton); the child becomes a child-protection client at once."""

URGENCY_CHANNELS = {"child_protection_notification"}
"""Channels whose urgency the social worker assesses at once (LSL 26 §), besides any urgent-flagged referral."""


def same_submission(earlier: Referral, again: Referral) -> bool:
    """Whether a referral stored under a submission id came from the same content as a new one with
    that id (a harmless resend) or not (the id was reused for another submission). Referrals stored
    before fingerprints were kept are compared by their children."""
    if earlier.fingerprint and again.fingerprint:
        return earlier.fingerprint == again.fingerprint
    return sorted(earlier.child_keys) == sorted(again.child_keys)


@dataclass
class Contact:
    contact_id: str
    role: str
    language: str
    email: str | None
    phone: str | None


@dataclass
class Referral:
    """A received referral (yhteydenotto); ``case_id`` is the case (asiakkuus) it opened or was linked to."""

    referral_id: UUID
    case_id: UUID
    submission_id: str
    channel: str
    municipality: str
    received_at: datetime
    language: str
    interpreter_needed: bool
    urgent: bool
    consent_to_convene: bool
    referrer_type: str | None
    child_count: int
    contacts: list[Contact] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # the normalised submission (personal data)
    status: str = "open"
    child_keys: list[str] = field(default_factory=list)
    guardian_keys: list[str] = field(default_factory=list)  # keyed hashes of the guardians' henkilötunnus
    concern_category: str | None = None
    linked: bool = False
    handled_at: datetime | None = None  # when the referral service handled it; ``received_at`` is the receipt
    urgency: dict[str, Any] | None = None  # the urgency assessment: by, at, urgent_protection_needed
    fingerprint: str | None = None  # keyed digest of the submission's content (a reused id is told apart)

    @property
    def statutory(self) -> bool:
        return self.channel in STATUTORY_CHANNELS

    @property
    def needs_urgency_assessment(self) -> bool:
        """A child-protection notification, or any referral flagged urgent, is assessed at once."""
        return self.urgent or self.channel in URGENCY_CHANNELS

    @property
    def guardian_ids(self) -> list[str]:
        return [c.contact_id for c in self.contacts if c.role == "guardian"]

    def name_referrer(self, contact_id: str) -> None:
        """A linked referral's referrer is a person of their own in the case (``referrer-N``), not the
        first referral's ``referrer``: each is told of the receipt and when the assessment is done."""
        for c in self.contacts:
            if c.role == "referrer":
                c.contact_id = contact_id

    def assess_urgency(
        self, urgent_protection_needed: bool, by: str, at: datetime, now: datetime, guardians_endangered: bool, reason: str
    ) -> None:
        """Record who assessed the urgency, when, and the outcome; and whether telling the guardians
        that a child-protection notification was received would endanger the child (with a reason)."""
        if self.urgency is not None:
            raise DomainError("urgency_already_assessed", "referral_id")
        if at > now:
            raise DomainError("assessed_in_future", "assessed_at")
        if at < self.received_at:
            raise DomainError("assessed_before_receipt", "assessed_at")
        if guardians_endangered and not reason.strip():
            raise DomainError("reason_required", "endangerment_reason")
        self.urgency = {
            "by": by,
            "at": at.astimezone(UTC).isoformat(),
            "urgent_protection_needed": urgent_protection_needed,
            "guardians_endangered": guardians_endangered,
            "endangerment_reason": reason.strip() if guardians_endangered else "",
        }

    @property
    def guardians_may_be_told(self) -> bool:
        """Guardians are told of a child-protection notification once its urgency is assessed, unless
        the social worker recorded that telling them would endanger the child."""
        return (
            self.channel == "child_protection_notification"
            and self.urgency is not None
            and not self.urgency.get("guardians_endangered", False)
            and bool(self.guardian_ids)
        )


def receipt_moment(submitted_at: datetime, handled_at: datetime) -> datetime:
    """The receipt (vireilletulo) that starts the statutory clocks: the moment the front door recorded
    (``submitted_at``), in UTC. It cannot be later than the moment the service handled it: a front
    door's clock running ahead does not push the deadlines later."""
    return min(submitted_at.astimezone(UTC), handled_at.astimezone(UTC))


def guardian_ids(sub: Any) -> list[str]:
    """The guardians' henkilötunnus as given (normalised), to be turned into keyed hashes at once."""
    return [parse_hetu(g.personal_id).value for g in sub.guardians if g.personal_id]


def open_referral(sub: Any, now: datetime, pseudonym: Pseudonym, checked: dict[str, str | None] | None = None) -> Referral:
    """A referral from a valid submission, with a case id of its own (replaced when it is linked).
    ``pseudonym`` keys the children's index entries and the content's fingerprint; ``checked`` holds
    the addresses its screening checked (:func:`normalised_email`)."""
    contacts = [
        Contact(
            contact_id=f"guardian-{i + 1}",
            role="guardian",
            language=g.language,
            email=normalised_email(g.email, checked) if g.email else None,
            phone=normalise_phone(g.phone) if g.phone else None,
        )
        for i, g in enumerate(sub.guardians)
    ]
    if sub.referrer is not None and (sub.referrer.email or sub.referrer.phone) and sub.referrer.organisation_type != "family":
        contacts.append(
            Contact(
                contact_id="referrer",
                role="referrer",
                language="fi",
                email=normalised_email(sub.referrer.email, checked) if sub.referrer.email else None,
                phone=normalise_phone(sub.referrer.phone) if sub.referrer.phone else None,
            )
        )
    details = sub.model_dump(mode="json")
    for c in details.get("children", []):
        if c.get("personal_id"):
            hetu = parse_hetu(c["personal_id"])
            c["personal_id"] = hetu.value
            c["personal_id_temporary"] = hetu.temporary  # individual number 900-999: a temporary code
    for g in details.get("guardians", []):
        g.pop("personal_id", None)  # kept only as a keyed hash (Referral.guardian_keys, set by the handler)
        if g.get("phone"):
            g["phone"] = normalise_phone(g["phone"])
    if details.get("referrer") and details["referrer"].get("phone"):
        details["referrer"]["phone"] = normalise_phone(details["referrer"]["phone"])
    return Referral(
        referral_id=time_ordered_id(),
        case_id=time_ordered_id(),  # see Case.case_id
        submission_id=sub.submission_id,
        channel=sub.channel,
        municipality=sub.municipality,
        received_at=receipt_moment(sub.submitted_at, now),
        language=sub.language,
        interpreter_needed=sub.interpreter_needed,
        urgent=sub.urgent,
        consent_to_convene=sub.consent_to_convene,
        referrer_type=sub.referrer.organisation_type if sub.referrer else "family",
        child_count=len(sub.children),
        contacts=contacts,
        details=details,
        child_keys=child_keys(sub, pseudonym),
        concern_category=sub.concern_category,
        handled_at=now,
        fingerprint=pseudonym("submission:" + sub.model_dump_json()),
    )


# -- the case ---------------------------------------------------------------------------------------


@dataclass
class Case:
    """A family's case (asiakkuus) at the referral stage: its referrals, team and statutory steps."""

    # Time-ordered (version 7, time_ordered_id) since issue 22: every access record, consent and
    # referral is indexed by its case id in each service, and a random id put each of them on a
    # random page of indexes that grow with the whole history (a team list: 50 records, 50 pages).
    # Today's open cases now share the last pages. The creation time the id carries is no news:
    # the case's first referral id (also version 7) was made at the same moment.
    case_id: UUID
    municipality: str
    opened_at: datetime
    team_id: str | None = None
    status: str = "open"
    referral_ids: list[str] = field(default_factory=list)
    decision_due_by: date | None = None
    assessment_started_on: date | None = None
    assessment_complete_by: date | None = None
    assessment_completed_on: date | None = None
    outcome: str | None = None
    social_worker_id: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    received_at: datetime | None = None  # vireilletulo: the receipt that starts the statutory clocks
    decision: dict[str, Any] | None = None  # the 7-working-day decision: outcome, decided_on, by, at

    @property
    def repeat_count(self) -> int:
        return len(self.referral_ids)

    @property
    def decision_pending(self) -> bool:
        """The 7-working-day clock runs: a statutory referral came, and neither a decision nor the
        assessment's start is recorded."""
        return self.decision_due_by is not None and self.decision is None and self.assessment_started_on is None

    def note(self, at: datetime, what: str, **detail: Any) -> None:
        self.history.append({"at": at.isoformat(), "what": what, **detail})

    def transfer(self, team_id: str, municipality: str | None, by: str, now: datetime, reason: str) -> tuple[str | None, str]:
        """Hand the case to another team (and municipality). Returns the previous team and
        municipality. The deadlines stay: the law counts them from the receipt, not from the team."""
        municipality = municipality or self.municipality
        if team_id == self.team_id and municipality == self.municipality:
            raise DomainError("already_on_team", "team_id")
        previous = (self.team_id, self.municipality)
        self.team_id, self.municipality = team_id, municipality
        self.note(
            now, "case_transferred", by=by, from_team=previous[0], to_team=team_id, to_municipality=municipality, reason=reason
        )
        return previous

    def open_deadlines(self) -> list[tuple[str, date]]:
        out = []
        if self.decision_pending:
            assert self.decision_due_by is not None
            out.append(("assessment_decision", self.decision_due_by))
        if self.assessment_complete_by and self.assessment_completed_on is None:
            out.append(("assessment_completion", self.assessment_complete_by))
        return out

    def add_referral(self, r: Referral, *, linked: bool) -> bool:
        """Add a referral; True when it starts (or moves) the 7-working-day decision deadline.

        The clock starts at the earliest receipt of a statutory referral not yet decided on: a
        referral that a front door sends late, with an earlier receipt, moves the deadline earlier."""
        self.referral_ids.append(str(r.referral_id))
        self.note(
            r.received_at, "referral_linked" if linked else "referral_received", referral_id=str(r.referral_id), channel=r.channel
        )
        if self.received_at is None:
            self.received_at = r.received_at
        if not r.statutory or self.decision is not None or self.assessment_started_on is not None:
            return False
        if self.decision_due_by is not None and self.received_at is not None and self.received_at <= r.received_at:
            return False
        self.received_at = r.received_at
        self.decision_due_by = decision_due(r.received_at)
        return True

    def recompute_deadlines(self, referrals: list[Referral]) -> dict[str, tuple[str | None, str | None]]:
        """The statutory clocks again from the referrals' receipts (the migration to counting from
        receipt, and after an unlink). Returns the deadlines that changed: kind -> (old, new)."""
        statutory = sorted(r.received_at for r in referrals if r.statutory)
        every = sorted(r.received_at for r in referrals)
        self.received_at = statutory[0] if statutory else (every[0] if every else self.received_at)
        before = dict(self.open_deadlines())
        if self.decision is None and self.assessment_started_on is None:
            self.decision_due_by = decision_due(statutory[0]) if statutory else None
        if self.assessment_started_on is not None and self.assessment_completed_on is None and self.received_at is not None:
            self.assessment_complete_by = completion_due(self.received_at)
        after = dict(self.open_deadlines())
        changed = {}
        for kind in sorted(set(before) | set(after)):
            old, new = before.get(kind), after.get(kind)
            if old != new:
                changed[kind] = (old.isoformat() if old else None, new.isoformat() if new else None)
        return changed

    def record_decision(self, outcome: str, on: date, by: str, at: datetime, reason: str = "") -> date | None:
        """Record the 7-working-day decision; it stops the decision clock. Returns the last day to
        complete the assessment when the outcome starts it (3 months of receipt)."""
        if self.status != "open":
            raise DomainError("case_closed", "case_id")
        if self.decision is not None or self.assessment_started_on is not None:
            raise DomainError("decision_already_recorded", "case_id")
        if self.decision_due_by is None:
            raise DomainError("no_decision_pending", "case_id")
        if self.received_at is not None and on < helsinki_date(self.received_at):
            raise DomainError("decided_before_receipt", "decided_on")
        if on > helsinki_date(at):
            raise DomainError("decided_in_future", "decided_on")
        self.decision = {
            "outcome": outcome,
            "decided_on": on.isoformat(),
            "by": by,
            "at": at.isoformat(),
            "due_by": self.decision_due_by.isoformat(),
        }
        self.note(at, "decision_recorded", by=by, outcome=outcome, decided_on=on.isoformat(), reason=reason)
        if outcome == "not_needed":
            # Evidently unnecessary: the matter ends; a later referral about the child opens a new case.
            self.status = "closed"
            self.note(at, "case_closed", by=by)
            return None
        if outcome == "start_assessment" and self.received_at is not None:
            self.assessment_complete_by = completion_due(self.received_at)
            return self.assessment_complete_by
        return None

    @property
    def decided_within_time(self) -> bool | None:
        if self.decision is None or self.decision_due_by is None:
            return None
        return date.fromisoformat(self.decision["decided_on"]) <= self.decision_due_by

    def remove_referral(self, referral_id: UUID, at: datetime, by: str) -> None:
        self.referral_ids.remove(str(referral_id))
        self.note(at, "referral_unlinked", referral_id=str(referral_id), by=by)

    def start_assessment(self, on: date, by: str, at: datetime) -> date:
        if self.status != "open":
            raise DomainError("case_closed", "case_id")
        if self.assessment_started_on is not None:
            raise DomainError("assessment_already_started", "case_id")
        if self.received_at is not None and on < helsinki_date(self.received_at):
            raise DomainError("started_before_receipt", "started_on")
        if on > helsinki_date(at):  # a statutory date is recorded when it happened, not ahead of it
            raise DomainError("started_in_future", "started_on")
        self.assessment_started_on = on
        # 3 months of receipt, not of the start (LSL 27 §); a case without a recorded receipt (none
        # after the migration) counts from the start.
        self.assessment_complete_by = completion_due(self.received_at or on)
        self.social_worker_id = by
        self.note(at, "assessment_started", by=by, started_on=on.isoformat())
        return self.assessment_complete_by

    def complete_assessment(self, on: date, outcome: str, by: str, at: datetime) -> None:
        if self.assessment_started_on is None:
            raise DomainError("assessment_not_started", "case_id")
        if self.assessment_completed_on is not None:
            raise DomainError("assessment_already_completed", "case_id")
        if on < self.assessment_started_on:
            raise DomainError("completed_before_start", "completed_on")
        if on > helsinki_date(at):
            raise DomainError("completed_in_future", "completed_on")
        self.assessment_completed_on = on
        self.outcome = outcome
        self.note(at, "assessment_completed", by=by, outcome=outcome)


def referrer_may_be_told(referrals: list[Referral], active_purposes: set[str]) -> bool:
    """The referrer may be told the outcome category when the family consented, or when a professional
    under the duty to notify made a child-protection notification (LSL 25 § 5 mom.)."""
    if "tell_referrer_outcome" in active_purposes:
        return True
    return any(r.channel == "child_protection_notification" and r.referrer_type not in (None, "family") for r in referrals)
