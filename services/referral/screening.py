"""Intake screening (seulonta): raw intake bytes to a valid submission, or the reasons it was rejected.

Plain Python: no I/O. The rules beyond the contract's shape: identity codes, ages, contacts, each
channel's own fields, and how far ``submitted_at`` may lie from the moment of receipt.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import phonenumbers
from pydantic import ValidationError

from shared.contracts.base import FieldError, field_errors
from shared.contracts.common import normalised_email
from shared.contracts.referral import CHANNEL_DETAILS, ReferralSubmission
from shared.errors import message

from .children import child_key
from .hetu import InvalidHetu, parse_hetu

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


def check_submission(sub: Any, today: date, checked: dict[str, str | None] | None = None) -> list[Problem]:
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
        key = child_key(child)
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
        if g.email and normalised_email(g.email, checked) is None:
            problems.append(Problem(f"{path}.email", "invalid_email"))
        if not g.phone and not g.email:
            problems.append(Problem(path, "contact_missing"))
    if sub.referrer is not None:
        if sub.referrer.phone and normalise_phone(sub.referrer.phone) is None:
            problems.append(Problem("referrer.phone", "invalid_phone"))
        if sub.referrer.email and normalised_email(sub.referrer.email, checked) is None:
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
    checked: dict[str, str | None] | None = None,
) -> Screening:
    """Parse and validate raw intake bytes. Never raises: any payload gives a submission or reasons.
    ``msg_id`` (the message's Nats-Msg-Id) names a rejection whose body has no readable id. With
    ``now`` (the moment of receipt), ``submitted_at`` is held to ``limits``. ``checked``: the
    addresses checked so far in the transaction (:func:`normalised_email`)."""
    try:
        sub = ReferralSubmission.model_validate_json(data)
    except ValidationError as exc:
        return Screening(_submission_id_of(data, msg_id), None, field_errors(exc))
    except (ValueError, RecursionError):  # e.g. nesting too deep for the parser
        return Screening(_submission_id_of(data, msg_id), None, [Problem("$", "json_invalid").error()])
    try:
        problems = check_submission(sub, today, checked)
        if now is not None:
            late = check_submitted_at(sub.submitted_at, now, limits or SubmittedAtLimits())
            problems += [late] if late else []
    except Exception:  # noqa: BLE001 - a rule that trips on odd input must not kill the worker
        problems = [Problem("$", "unprocessable")]
    if problems:
        return Screening(sub.submission_id, None, [p.error() for p in problems])
    return Screening(sub.submission_id, sub, [])
