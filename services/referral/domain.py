"""Referral domain: screening a submission, opening or linking a case, consent ledger, statutory deadlines.

Plain Python: no I/O, no framework. The handlers turn the results into stored rows and events.
"""

from __future__ import annotations

import calendar as _cal
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4

import phonenumbers
from pydantic import ValidationError

from shared.calendar import add_working_days, helsinki_date, is_working_day
from shared.clock import HELSINKI
from shared.contracts.base import FieldError, field_errors, time_ordered_id
from shared.contracts.common import normalised_email
from shared.contracts.referral import CHANNEL_DETAILS, ReferralSubmission
from shared.errors import DomainError, message

from .hetu import InvalidHetu, parse_hetu

STATUTORY_CHANNELS = {"child_protection_notification", "assessment_request", "joint_contact"}
"""Channels after which a social worker must decide on a service-need assessment within 7 working days."""

VOLUNTARY_CHANNELS = {"phone", "e_contact", "guidance", "concern_with_family"}

CHANNEL_DETAIL = {
    "phone": "phone_call",
    "e_contact": "e_contact",
    "guidance": "guidance",
    "concern_with_family": "concern_with_family",
    "assessment_request": "assessment_request",
    "child_protection_notification": "child_protection_notification",
    "joint_contact": "joint_contact",
}
"""Channel -> the name of its channel-specific sub-object in the submission."""

DETAIL_REQUIRED = {"phone", "guidance", "joint_contact"}
"""Channels whose sub-object must be given (the operator, the adviser, the guardian's presence)."""

PROFESSIONAL_CHANNELS = {"concern_with_family", "assessment_request", "child_protection_notification", "joint_contact"}
"""Channels made by a professional: a referrer other than the family is required."""

DECISION_WORKING_DAYS = 7
ASSESSMENT_MONTHS = 3

DECISION_OUTCOMES = ("start_assessment", "not_needed", "child_protection_client")
"""The 7-working-day decision (LSL 26 §, SHL 36 §): start the service-need assessment; no assessment,
it is evidently unnecessary (ilmeisen tarpeeton); the child becomes a child-protection client at once."""

URGENCY_CHANNELS = {"child_protection_notification"}
"""Channels whose urgency the social worker assesses at once (LSL 26 §), besides any urgent-flagged referral."""


@dataclass(frozen=True)
class Problem:
    field: str
    code: str

    def messages(self) -> dict[str, str]:
        return message(self.code)

    def error(self) -> FieldError:
        return FieldError(field=self.field, code=self.code, message=self.messages())


def normalise_phone(raw: str) -> str | None:
    """A phone number to E.164 (Finnish numbers without a country code); None when it is not a valid number."""
    try:
        number = phonenumbers.parse(raw, "FI")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def check_submission(sub: Any, today: date) -> list[Problem]:
    """Rules beyond the contract's shape. ``sub`` is a ReferralSubmission."""
    problems: list[Problem] = []
    if sub.submitted_at.tzinfo is None:
        problems.append(Problem("submitted_at", "naive_datetime"))
    seen: set[str] = set()
    for i, child in enumerate(sub.children):
        path = f"children.{i}"
        born = child.date_of_birth
        if child.personal_id:
            try:
                hetu = parse_hetu(child.personal_id)
            except InvalidHetu as exc:
                problems.append(Problem(f"{path}.personal_id", exc.code))
            else:
                if born and born != hetu.birth_date:
                    problems.append(Problem(f"{path}.date_of_birth", "birth_date_mismatch"))
                born = hetu.birth_date
        elif not born:
            problems.append(Problem(path, "identity_missing"))
        if born and born > today:
            problems.append(
                Problem(f"{path}.date_of_birth" if child.date_of_birth else f"{path}.personal_id", "birth_date_in_future")
            )
        elif born and _age_on(born, today) >= 18:
            problems.append(Problem(f"{path}.date_of_birth" if child.date_of_birth else f"{path}.personal_id", "not_a_child"))
        key = _child_key(child)
        if key is not None:
            if key in seen:
                problems.append(Problem(path, "duplicate_child"))
            seen.add(key)
    for i, g in enumerate(sub.guardians):
        path = f"guardians.{i}"
        if g.personal_id:
            try:
                parse_hetu(g.personal_id)
            except InvalidHetu as exc:
                problems.append(Problem(f"{path}.personal_id", exc.code))
        if g.phone and normalise_phone(g.phone) is None:
            problems.append(Problem(f"{path}.phone", "invalid_phone"))
        if g.email and normalised_email(g.email) is None:
            problems.append(Problem(f"{path}.email", "invalid_email"))
        if not g.phone and not g.email:
            problems.append(Problem(path, "contact_missing"))
    if sub.referrer is not None:
        if sub.referrer.phone and normalise_phone(sub.referrer.phone) is None:
            problems.append(Problem("referrer.phone", "invalid_phone"))
        if sub.referrer.email and normalised_email(sub.referrer.email) is None:
            problems.append(Problem("referrer.email", "invalid_email"))
    if sub.language == "other" and not sub.interpreter_needed and not sub.other_language:
        problems.append(Problem("other_language", "language_unspecified"))
    problems.extend(_channel_problems(sub))
    return problems


def _channel_problems(sub: Any) -> list[Problem]:
    """Each channel carries its own fields: what a phone operator, the family's form, a professional gives."""
    out: list[Problem] = []
    mine = CHANNEL_DETAIL[sub.channel]
    for name in CHANNEL_DETAILS:
        if name != mine and getattr(sub, name, None) is not None:
            out.append(Problem(name, "channel_details_mismatch"))
    details = getattr(sub, mine, None)
    if sub.channel in DETAIL_REQUIRED and details is None:
        out.append(Problem(mine, "channel_details_required"))
    if sub.channel in PROFESSIONAL_CHANNELS:
        if sub.referrer is None:
            out.append(Problem("referrer", "referrer_required"))
        elif sub.referrer.organisation_type == "family":
            out.append(Problem("referrer.organisation_type", "referrer_must_be_professional"))
    if sub.channel == "e_contact":
        if sub.referrer is not None and sub.referrer.organisation_type != "family":
            out.append(Problem("referrer", "referrer_not_allowed"))
        if not sub.guardians:
            out.append(Problem("guardians", "guardian_required"))
    if sub.channel in {"phone", "guidance", "joint_contact", "concern_with_family"} and not sub.guardians:
        out.append(Problem("guardians", "guardian_required"))
    if sub.channel in {"assessment_request", "child_protection_notification", "concern_with_family"}:
        observed = getattr(details, "observed", "") if details is not None else ""
        if not sub.concern and not observed:
            out.append(Problem("concern", "concern_required"))
    if sub.channel == "joint_contact" and details is not None and not details.guardian_present:
        out.append(Problem("joint_contact.guardian_present", "guardian_not_present"))
    if (
        sub.channel == "phone"
        and details is not None
        and details.call_started_at is not None
        and details.call_started_at.tzinfo is None
    ):
        out.append(Problem("phone_call.call_started_at", "naive_datetime"))
    return out


@dataclass(frozen=True)
class SubmittedAtLimits:
    """How far ``submitted_at`` may lie from the moment of receipt: ahead by the front door's clock
    skew at most, and back by how long a front door may have been offline. The statutory clocks
    start at ``submitted_at``, so an implausible value would move every deadline."""

    max_ahead: timedelta = timedelta(minutes=5)
    max_age: timedelta = timedelta(days=30)


def check_submitted_at(submitted_at: datetime, now: datetime, limits: SubmittedAtLimits) -> Problem | None:
    if submitted_at.tzinfo is None:
        return None  # reported as naive_datetime
    if submitted_at > now + limits.max_ahead:
        return Problem("submitted_at", "submitted_at_in_future")
    if submitted_at < now - limits.max_age:
        return Problem("submitted_at", "submitted_at_too_old")
    return None


@dataclass(frozen=True)
class Screening:
    """The result of screening raw intake bytes: a valid submission, or the reasons it was rejected."""

    submission_id: str
    submission: ReferralSubmission | None
    reasons: list[FieldError]

    @property
    def accepted(self) -> bool:
        return self.submission is not None and not self.reasons


_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


def _submission_id_of(data: bytes, msg_id: str | None = None) -> str:
    """Best effort, for the rejection: the front door needs the id to fix and resend. The body's
    ``submission_id`` when it can be read, else the message's ``Nats-Msg-Id`` (which the contract
    says carries the same id), else 'unknown'."""
    try:
        value = json.loads(data).get("submission_id")
    except (ValueError, AttributeError, TypeError, RecursionError):
        value = None
    for candidate in (value, msg_id):
        if isinstance(candidate, str) and _ID.fullmatch(candidate.strip()):
            return candidate.strip()
    return "unknown"


def screen(
    data: bytes,
    today: date,
    msg_id: str | None = None,
    *,
    now: datetime | None = None,
    limits: SubmittedAtLimits | None = None,
) -> Screening:
    """Parse and validate raw intake bytes. Never raises: any payload gives a submission or reasons.
    ``msg_id`` (the message's Nats-Msg-Id) names a rejection whose body has no readable id. With
    ``now`` (the moment of receipt), ``submitted_at`` is held to ``limits``."""
    try:
        sub = ReferralSubmission.model_validate_json(data)
    except ValidationError as exc:
        return Screening(_submission_id_of(data, msg_id), None, field_errors(exc))
    except (ValueError, RecursionError):  # e.g. nesting too deep for the parser
        return Screening(_submission_id_of(data, msg_id), None, [Problem("$", "json_invalid").error()])
    try:
        problems = check_submission(sub, today)
        if now is not None:
            late = check_submitted_at(sub.submitted_at, now, limits or SubmittedAtLimits())
            problems += [late] if late else []
    except Exception:  # noqa: BLE001 - a rule that trips on odd input must not kill the worker
        problems = [Problem("$", "unprocessable")]
    if problems:
        return Screening(sub.submission_id, None, [p.error() for p in problems])
    return Screening(sub.submission_id, sub, [])


# -- children and linking ----------------------------------------------------------------------------


def _fold(s: str | None) -> str:
    s = unicodedata.normalize("NFKC", s or "").casefold()
    return " ".join(s.split())


def _child_key(child: Any) -> str | None:
    if child.personal_id:
        try:
            return "hetu:" + parse_hetu(child.personal_id).value
        except InvalidHetu:
            return None
    if child.date_of_birth and child.family_name:
        return f"name:{_fold(child.given_name)}|{_fold(child.family_name)}|{child.date_of_birth.isoformat()}"
    return None


Pseudonym = Callable[[str], str]
"""A keyed one-way function (shared.pseudonyms.pseudonym), given to the domain by the handlers."""


def child_keys(sub: Any, pseudonym: Pseudonym) -> list[str]:
    """Keys that identify each child across referrals, pseudonymised (a keyed HMAC) so the index
    holds no identity codes: the full 11-character henkilötunnus, or for a child without one, name
    and date of birth. ``pseudonym("hetu:" + code)`` is ``shared.pseudonyms.person_key(code)``."""
    keys = []
    for c in sub.children:
        k = _child_key(c)
        if k is not None:
            keys.append(pseudonym(k))
    return keys


def child_keys_of_details(details: dict[str, Any], pseudonym: Pseudonym) -> list[str]:
    """The child keys of a stored referral, recomputed from its details (the normalised submission):
    a change of key or scheme re-keys the index from what is stored."""
    from types import SimpleNamespace

    children = []
    for c in details.get("children", []):
        born = c.get("date_of_birth")
        children.append(
            SimpleNamespace(
                given_name=c.get("given_name"),
                family_name=c.get("family_name"),
                personal_id=c.get("personal_id"),
                date_of_birth=date.fromisoformat(born) if isinstance(born, str) else born,
            )
        )
    return child_keys(SimpleNamespace(children=children), pseudonym)


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


def open_referral(sub: Any, now: datetime, pseudonym: Pseudonym) -> Referral:
    """A referral from a valid submission, with a case id of its own (replaced when it is linked).
    ``pseudonym`` keys the children's index entries and the content's fingerprint."""
    contacts = [
        Contact(
            contact_id=f"guardian-{i + 1}",
            role="guardian",
            language=g.language,
            email=normalised_email(g.email) if g.email else None,
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
                email=normalised_email(sub.referrer.email) if sub.referrer.email else None,
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
        case_id=uuid4(),
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


# -- deadlines --------------------------------------------------------------------------------------


def add_months(d: date, months: int) -> date:
    """The same day ``months`` later, or the month's last day when it has no such day (31.8. + 3 -> 30.11.)."""
    m = d.month - 1 + months
    y, m = d.year + m // 12, m % 12 + 1
    return date(y, m, min(d.day, _cal.monthrange(y, m)[1]))


def decision_due(received_at: datetime) -> date:
    """Decide on a service-need assessment within 7 working days of receipt (LSL 26 §, SHL 36 §); the
    day of receipt is not counted. Days are Helsinki calendar days: a referral received at 23:30 UTC
    on a Friday in winter was received on Saturday in Helsinki, and Monday is its first day."""
    return add_working_days(helsinki_date(received_at), DECISION_WORKING_DAYS)


def completion_due(received: datetime | date) -> date:
    """Complete the service-need assessment within 3 months of receipt (asian vireilletulosta; LSL 27 §,
    SHL 36 §), not of the assessment's start.

    Month arithmetic follows the Act on the Calculation of Statutory Time Limits (laki säädettyjen
    määräaikain laskemisesta 150/1930): the period ends on the day of the third month with the same
    number as the day of receipt; a month without such a day ends it on its last day (30.11. ->
    28.2., or 29.2. in a leap year). A last day on a Saturday, Sunday, public holiday, Christmas Eve
    or Midsummer Eve moves to the next working day (5 §)."""
    start = helsinki_date(received) if isinstance(received, datetime) else received
    d = add_months(start, ASSESSMENT_MONTHS)
    while not is_working_day(d):
        d += timedelta(days=1)
    return d


def urgency_timer_moments(received_at: datetime, within: timedelta, escalate_after: timedelta) -> tuple[datetime, datetime]:
    """(due, escalation): the urgency is assessed within ``within`` of receipt, any hour of the week
    (not working hours); past ``due`` the on-duty social worker is paged, past the escalation the
    team lead."""
    due = received_at + within
    return due, due + escalate_after


def working_days_before(d: date, n: int) -> date:
    """The n-th working day before ``d`` (``d`` itself not counted); ``d`` when n == 0."""
    while n > 0:
        d -= timedelta(days=1)
        if is_working_day(d):
            n -= 1
    return d


APPROACHING_AT = time(8, 0)
"""Local time of day at which a 'deadline approaching' reminder fires."""


def timer_moments(due: date, lead_working_days: int) -> tuple[datetime, datetime]:
    """(approaching, breached) as aware datetimes: the reminder at 08:00 Helsinki ``lead`` working days
    before the last day; the breach at the start of the day after the last day."""
    approaching = datetime.combine(working_days_before(due, lead_working_days), APPROACHING_AT, tzinfo=HELSINKI)
    breached = datetime.combine(due + timedelta(days=1), time(0, 0), tzinfo=HELSINKI)
    return approaching, breached


def timer_subject(kind: str, case_id: UUID, which: str) -> str:
    return f"timers.referral.{kind}.{case_id}.{which}"


# -- the case ---------------------------------------------------------------------------------------


@dataclass
class Case:
    """A family's case (asiakkuus) at the referral stage: its referrals, team and statutory steps."""

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
        self.assessment_completed_on = on
        self.outcome = outcome
        self.note(at, "assessment_completed", by=by, outcome=outcome)


def referrer_may_be_told(referrals: list[Referral], active_purposes: set[str]) -> bool:
    """The referrer may be told the outcome category when the family consented, or when a professional
    under the duty to notify made a child-protection notification (LSL 25 § 5 mom.)."""
    if "tell_referrer_outcome" in active_purposes:
        return True
    return any(r.channel == "child_protection_notification" and r.referrer_type not in (None, "family") for r in referrals)


# -- consent ledger ---------------------------------------------------------------------------------

RECIPIENT_REQUIRED = {"share_plan"}


@dataclass
class Consent:
    consent_id: UUID
    case_id: UUID
    purpose: str
    recipient: str | None
    given_by: str
    recorded_by: str
    given_at: datetime
    valid_until: date | None = None
    withdrawn_at: datetime | None = None
    withdrawn_by: str | None = None

    def active(self, today: date) -> bool:
        return self.withdrawn_at is None and (self.valid_until is None or today <= self.valid_until)


def give_consent(
    case_id: UUID,
    purpose: str,
    recipient: str | None,
    given_by: str,
    recorded_by: str,
    now: datetime,
    valid_until: date | None = None,
) -> Consent:
    if purpose in RECIPIENT_REQUIRED and not recipient:
        raise DomainError("recipient_required", "recipient")
    if valid_until is not None and valid_until < helsinki_date(now):
        raise DomainError("valid_until_in_past", "valid_until")
    return Consent(time_ordered_id(), case_id, purpose, recipient, given_by, recorded_by, now, valid_until)


def withdraw(consent: Consent, by: str, now: datetime) -> None:
    if consent.withdrawn_at is not None:
        raise DomainError("already_withdrawn", "consent_id")
    consent.withdrawn_at = now
    consent.withdrawn_by = by


# -- routing ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoutingRule:
    team_id: str
    municipality: str = "*"
    concern: str = "*"
    channel: str = "*"


class Router:
    """Routing as data: the first rule matching municipality, concern and channel names the team."""

    def __init__(self, rules: list[RoutingRule], default_team: str, on_duty: dict[str, str] | None = None) -> None:
        self.rules = rules
        self.default_team = default_team
        self._on_duty = {(_fold(k) if k != "*" else "*"): v for k, v in (on_duty or {}).items()}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Router:
        rules = [RoutingRule(**r) for r in data.get("rules", [])]
        return cls(rules, data.get("default_team", "unassigned"), data.get("on_duty"))

    def teams(self) -> set[str]:
        """Every team the routing knows: a case may be transferred only to one of them."""
        return {r.team_id for r in self.rules} | {self.default_team} | set(self._on_duty.values())

    def on_duty(self, municipality: str) -> str | None:
        """The municipality's on-duty social work (sosiaalipäivystys), told at once about an urgent referral."""
        return self._on_duty.get(_fold(municipality)) or self._on_duty.get("*")

    def route(self, municipality: str, concern: str | None, channel: str) -> str:
        m = _fold(municipality)
        for r in self.rules:
            if r.municipality != "*" and _fold(r.municipality) != m:
                continue
            if r.concern != "*" and r.concern != concern:
                continue
            if r.channel != "*" and r.channel != channel:
                continue
            return r.team_id
        return self.default_team
