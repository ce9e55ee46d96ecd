"""Referral domain: receiving a submission, validating it beyond its shape, opening a case.

Plain Python: no I/O, no framework. The handler turns the result into stored rows and events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from .hetu import InvalidHetu, parse_hetu

STATUTORY_CHANNELS = {"child_protection_notification", "assessment_request", "joint_contact"}
"""Channels after which a social worker must decide on a service-need assessment within 7 working days."""

VOLUNTARY_CHANNELS = {"phone", "e_contact", "guidance", "concern_with_family"}

_MESSAGES = {
    "invalid_length": ("Henkilötunnuksen pituus on väärä.", "Personbeteckningen har fel längd.", "Personal identity code has the wrong length."),
    "invalid_century_sign": ("Henkilötunnuksen välimerkki on väärä.", "Fel skiljetecken i personbeteckningen.", "Invalid century sign in personal identity code."),
    "invalid_format": ("Henkilötunnus on väärässä muodossa.", "Personbeteckningen har fel format.", "Personal identity code has the wrong format."),
    "invalid_date": ("Henkilötunnuksen päivämäärä on mahdoton.", "Datumet i personbeteckningen är omöjligt.", "Personal identity code has an impossible date."),
    "invalid_individual_number": ("Henkilötunnuksen yksilönumero on väärä.", "Fel individnummer i personbeteckningen.", "Invalid individual number in personal identity code."),
    "invalid_checksum": ("Henkilötunnuksen tarkistusmerkki ei täsmää.", "Kontrolltecknet i personbeteckningen stämmer inte.", "Personal identity code checksum does not match."),
    "identity_missing": ("Anna lapsen henkilötunnus tai syntymäaika.", "Ange barnets personbeteckning eller födelsedatum.", "Give the child's personal identity code or date of birth."),
    "birth_date_mismatch": ("Syntymäaika ei vastaa henkilötunnusta.", "Födelsedatumet stämmer inte med personbeteckningen.", "Date of birth does not match the personal identity code."),
    "birth_date_in_future": ("Syntymäaika on tulevaisuudessa.", "Födelsedatumet ligger i framtiden.", "Date of birth is in the future."),
    "invalid_phone": ("Puhelinnumero on virheellinen.", "Telefonnumret är ogiltigt.", "Invalid phone number."),
    "invalid_email": ("Sähköpostiosoite on virheellinen.", "E-postadressen är ogiltig.", "Invalid e-mail address."),
    "contact_missing": ("Huoltajalle tarvitaan puhelinnumero tai sähköposti.", "Vårdnadshavaren behöver telefonnummer eller e-post.", "A guardian needs a phone number or an e-mail address."),
    "referrer_required": ("Ilmoittajan tiedot puuttuvat.", "Anmälarens uppgifter saknas.", "The referrer is required for this channel."),
    "naive_datetime": ("Aikaleima tarvitsee aikavyöhykkeen.", "Tidsstämpeln behöver en tidszon.", "Timestamp needs a time zone."),
}


@dataclass(frozen=True)
class Problem:
    field: str
    code: str

    def messages(self) -> dict[str, str]:
        fi, sv, en = _MESSAGES.get(self.code, ("Virheellinen arvo.", "Ogiltigt värde.", "Invalid value."))
        return {"fi": fi, "sv": sv, "en": en}


_PHONE_CLEAN = re.compile(r"[\s().-]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalise_phone(raw: str) -> str | None:
    """Finnish and international numbers to E.164; None when it cannot be a phone number."""
    s = _PHONE_CLEAN.sub("", raw)
    if s.startswith("00"):
        s = "+" + s[2:]
    elif s.startswith("0"):
        s = "+358" + s[1:]
    if not re.fullmatch(r"\+[1-9][0-9]{6,14}", s):
        return None
    return s


@dataclass
class Contact:
    contact_id: str
    role: str
    language: str
    email: str | None
    phone: str | None


@dataclass
class Referral:
    """A received referral (yhteydenotto) and the case (asiakkuus) it opened."""

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

    @property
    def statutory(self) -> bool:
        return self.channel in STATUTORY_CHANNELS


def check_submission(sub: Any, today: Any) -> list[Problem]:
    """Rules beyond the contract's shape. ``sub`` is a ReferralSubmission."""
    problems: list[Problem] = []
    if sub.submitted_at.tzinfo is None:
        problems.append(Problem("submitted_at", "naive_datetime"))
    for i, child in enumerate(sub.children):
        path = f"children.{i}"
        if child.personal_id:
            try:
                hetu = parse_hetu(child.personal_id)
            except InvalidHetu as exc:
                problems.append(Problem(f"{path}.personal_id", exc.code))
            else:
                if child.date_of_birth and child.date_of_birth != hetu.birth_date:
                    problems.append(Problem(f"{path}.date_of_birth", "birth_date_mismatch"))
        elif not child.date_of_birth:
            problems.append(Problem(path, "identity_missing"))
        if child.date_of_birth and child.date_of_birth > today:
            problems.append(Problem(f"{path}.date_of_birth", "birth_date_in_future"))
    for i, g in enumerate(sub.guardians):
        path = f"guardians.{i}"
        if g.phone and normalise_phone(g.phone) is None:
            problems.append(Problem(f"{path}.phone", "invalid_phone"))
        if g.email and not _EMAIL.match(g.email):
            problems.append(Problem(f"{path}.email", "invalid_email"))
        if not g.phone and not g.email:
            problems.append(Problem(path, "contact_missing"))
    if sub.channel in {"child_protection_notification", "assessment_request"} and sub.referrer is None:
        problems.append(Problem("referrer", "referrer_required"))
    if sub.referrer is not None:
        if sub.referrer.phone and normalise_phone(sub.referrer.phone) is None:
            problems.append(Problem("referrer.phone", "invalid_phone"))
        if sub.referrer.email and not _EMAIL.match(sub.referrer.email):
            problems.append(Problem("referrer.email", "invalid_email"))
    return problems


def open_referral(sub: Any, now: datetime) -> Referral:
    """Open a case from a valid submission."""
    contacts = [
        Contact(
            contact_id=f"guardian-{i + 1}",
            role="guardian",
            language=g.language,
            email=g.email,
            phone=normalise_phone(g.phone) if g.phone else None,
        )
        for i, g in enumerate(sub.guardians)
    ]
    if sub.referrer is not None and (sub.referrer.email or sub.referrer.phone):
        contacts.append(
            Contact(
                contact_id="referrer",
                role="referrer",
                language="fi",
                email=sub.referrer.email,
                phone=normalise_phone(sub.referrer.phone) if sub.referrer.phone else None,
            )
        )
    details = sub.model_dump(mode="json")
    for i, g in enumerate(details.get("guardians", [])):
        if g.get("phone"):
            g["phone"] = normalise_phone(g["phone"])
    return Referral(
        referral_id=uuid4(),
        case_id=uuid4(),
        submission_id=sub.submission_id,
        channel=sub.channel,
        municipality=sub.municipality,
        received_at=now,
        language=sub.language,
        interpreter_needed=sub.interpreter_needed,
        urgent=sub.urgent,
        consent_to_convene=sub.consent_to_convene,
        referrer_type=sub.referrer.organisation_type if sub.referrer else "family",
        child_count=len(sub.children),
        contacts=contacts,
        details=details,
    )
