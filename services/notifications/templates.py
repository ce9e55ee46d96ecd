"""Message texts in Finnish, Swedish and English. Plain Python: no I/O beyond reading the catalogues
once at import.

The texts are gettext messages. The English source is written here (``N_`` marks it for ``pybabel
extract``); the Finnish and Swedish texts live in translation catalogues,
``services/notifications/locale/<language>/LC_MESSAGES/messages.po``, that a translator edits without
touching code (docs/translations.md). The catalogues are compiled in memory (shared/catalogue.py), so
no compiled ``.mo`` file is committed or built at install.

A message is paragraphs of lines. A line with ``%(name)s`` placeholders is left out when any of its
values is missing, so one template serves a meeting whose place is known and one whose is not.
Values are made from the notification's parameters in the recipient's language: Helsinki dates and
times as people in Finland write them (shared/datetext.py), role names and terms from the glossary
(shared/glossary.py), phone numbers formatted for Finland. No id, room id or role code is ever a value
shown to a person; the case reference (``case_ref``) is shown to staff only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import phonenumbers

from shared.catalogue import N_, Catalogue
from shared.datetext import day_text, time_text, when_text
from shared.glossary import role_name

LANGUAGES = ("fi", "sv", "en")
LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "messages"


@dataclass(frozen=True)
class Value:
    """A line that is a value itself (e.g. the contact people, one a line): nothing to translate."""

    name: str


@dataclass(frozen=True)
class If:
    """A line shown only when the value ``flag`` is true."""

    flag: str
    text: str | Value


Line = str | If | Value


@dataclass(frozen=True)
class Template:
    subject: str
    paragraphs: tuple[tuple[Line, ...], ...]


def _t(subject: str, *paragraphs: Line | tuple[Line, ...]) -> Template:
    return Template(subject, tuple(p if isinstance(p, tuple) else (p,) for p in paragraphs))


# Paragraphs shared by the meeting messages: where, who, whom to ask.
_PLACE: tuple[Line, ...] = (
    N_("Place: %(place)s"),
    N_("Address: %(address)s"),
    If("no_place", N_("Place: the worker who invited you will tell you the place.")),
)
_PEOPLE: tuple[Line, ...] = (
    N_("Invited by: %(convener)s"),
    N_("Also taking part: %(participants)s"),
    If("interpreter_needed", N_("An interpreter will be there.")),
)
_CONTACT: tuple[Line, ...] = (
    If("contacts", N_("If you have questions or the time does not suit you, please contact:")),
    Value("contacts"),
)
# The family's contact people; a worker reading the same message does not need them.
_PLAN_CONTACT: tuple[Line, ...] = (
    If("to_family", N_("Your responsible worker, whom you can contact about the plan:")),
    If("to_family", Value("contacts")),
)

TEMPLATES: dict[str, Template] = {
    "referral_ack": _t(
        N_("Your referral was received"),
        N_("The family centre received your referral on %(received)s."),
        N_("A worker from the family centre will contact you."),
    ),
    "referral_assigned": _t(
        N_("New referral for your team"),
        N_("A new referral was routed to your team (case %(case_ref)s). The details are in the Koolle staff app."),
    ),
    "referral_urgent": _t(
        N_("URGENT referral"),
        N_("Urgent referral, %(municipality)s (case %(case_ref)s). It is to be assessed at once in the Koolle staff app."),
    ),
    "case_transferred": _t(
        N_("A case was transferred to your team"),
        N_("Case %(case_ref)s (%(municipality)s) was transferred to your team. The details are in the Koolle staff app."),
    ),
    "referral_linked": _t(
        N_("New referral on an open case"),
        N_("Open case %(case_ref)s received another referral (no. %(repeat_count)s)."),
    ),
    "deadline_approaching": _t(
        N_("Deadline approaching"),
        N_("Deadline approaching: %(deadline)s, by %(due_by)s (case %(case_ref)s)."),
    ),
    "deadline_breached": _t(
        N_("Deadline breached"),
        N_("Deadline breached: %(deadline)s, due by %(due_by)s (case %(case_ref)s)."),
    ),
    "meeting_invitation": _t(
        N_("Invitation to a joint meeting"),
        N_("You are invited to a joint meeting on %(when)s."),
        If(
            "first_assessment_meeting",
            N_("This is the first meeting of the service-need assessment: together we find out what support your family needs."),
        ),
        N_(
            "In the meeting your family and the professionals look together at how everyday life is going, and agree on what would help. You can bring up anything you think matters."
        ),
        _PLACE,
        _PEOPLE,
        _CONTACT,
    ),
    "meeting_rescheduled": _t(
        N_("The joint meeting has moved"),
        N_("The joint meeting has moved to a new time: %(when)s."),
        _PLACE,
        _PEOPLE,
        _CONTACT,
    ),
    "meeting_cancelled": _t(
        N_("The joint meeting is cancelled"),
        N_("The joint meeting is cancelled. A new time will be agreed with you."),
        _CONTACT,
    ),
    "meeting_reminder": _t(
        N_("Reminder: joint meeting"),
        N_("A reminder of the joint meeting on %(when)s."),
        _PLACE,
        _CONTACT,
    ),
    "plan_agreed": _t(
        N_("The joint plan was recorded"),
        N_("Your family's joint plan was recorded. It says what will be done, who does it and when you are next in touch."),
        _PLAN_CONTACT,
    ),
    "plan_shared": _t(
        N_("A joint plan was shared with you"),
        N_("The family's joint plan (version %(plan_version)s) was shared with you."),
        _PLAN_CONTACT,
    ),
    "plan_revised": _t(
        N_("The joint plan was updated"),
        N_("There is a new version (%(plan_version)s) of your family's joint plan."),
        _PLAN_CONTACT,
    ),
    "plan_closed": _t(
        N_("The joint plan was closed"),
        N_("The work under the joint plan has ended. Thank you for working together."),
        _PLAN_CONTACT,
    ),
    "handover_opened": _t(
        N_("A family has no responsible worker"),
        N_(
            "The family's responsible worker has left and no successor was named (case %(case_ref)s). A new responsible worker is to be named in the Koolle staff app."
        ),
    ),
    "responsible_worker_changed": _t(
        N_("You have a new responsible worker"),
        N_("Your family has a new responsible worker."),
        (
            N_("Your new responsible worker's organisation: %(organisation)s"),
            N_("Phone: %(phone)s"),
            N_("E-mail: %(email)s"),
        ),
        N_("Your joint plan and the agreed follow-up contacts stay as they were."),
    ),
    "handover_received": _t(
        N_("You are now a family's responsible worker"),
        N_(
            "You are now the family's responsible worker in place of the previous worker (case %(case_ref)s). The joint plan and the agreed follow-up contacts are in the Koolle staff app."
        ),
    ),
    "service_not_started": _t(
        N_("The agreed service has not started"),
        If("to_family", N_("The service agreed in your joint plan had not started by %(start_by)s.")),
        If("to_staff", N_("A service agreed in the family's joint plan had not started by %(start_by)s (case %(case_ref)s).")),
        If("to_family", N_("Your responsible worker is looking into it and will be in touch.")),
        If("to_staff", N_("The reason is to be found out with the family and the service provider.")),
    ),
    "followup_reminder": _t(
        N_("Reminder: agreed follow-up"),
        N_("The agreed follow-up contact is on %(when)s."),
        _PLAN_CONTACT,
    ),
    "followup_due": _t(
        N_("The agreed follow-up is due"),
        N_("The agreed follow-up contact is due %(when)s."),
        _PLAN_CONTACT,
    ),
    "followup_overdue": _t(
        N_("The agreed follow-up is overdue"),
        N_("The agreed follow-up contact (%(when)s) has not happened yet. The responsible worker will be in touch."),
        _PLAN_CONTACT,
    ),
    "followup_rescheduled": _t(
        N_("The agreed follow-up has moved"),
        N_("The agreed follow-up contact has moved to %(when)s."),
        _PLAN_CONTACT,
    ),
    "assessment_completed": _t(
        N_("The service-need assessment is complete"),
        N_("The assessment following your referral is complete. Outcome: %(outcome)s."),
    ),
    "assessment_done": _t(
        N_("The service-need assessment is complete"),
        N_("The assessment following your referral is complete (case %(case_ref)s). Thank you for the referral."),
    ),
    "urgency_overdue": _t(
        N_("URGENCY NOT ASSESSED"),
        N_(
            "Urgency not assessed in time (%(when)s), %(municipality)s (case %(case_ref)s). It is to be assessed at once in the Koolle staff app."
        ),
    ),
    "urgency_overdue_lead": _t(
        N_("URGENCY STILL NOT ASSESSED"),
        N_(
            "The on-duty social worker has not assessed the urgency (due %(when)s), %(municipality)s (case %(case_ref)s). The assessment is to be secured at once."
        ),
    ),
    "notification_received": _t(
        N_("A child welfare notification was received"),
        N_("A child welfare notification about your child was received on %(received)s."),
        N_("A social worker will contact you. You can ask the family centre for more (case %(case_ref)s)."),
    ),
}

# An SMS to a family says only that there is a message and where to read it.
PORTAL_NOTICE = N_("You have a new message in the Koolle service. Read it at %(portal_url)s")

DEADLINES = {
    "assessment_decision": N_("decision on starting the service-need assessment"),
    "assessment_completion": N_("completion of the service-need assessment"),
}

OUTCOMES = {
    "services_started": N_("services were started"),
    "no_need_for_services": N_("no need for services"),
    "referred_elsewhere": N_("referred to another service"),
    "child_welfare_client": N_("child welfare client"),
    "other": N_("other"),
}

_PHONE_LABEL = N_("phone %(phone)s")
_EMAIL_LABEL = N_("e-mail %(email)s")


# -- catalogues --------------------------------------------------------------------------------------
CATALOGUE = Catalogue(LOCALE_DIR, DOMAIN)


def gettext(language: str, message: str) -> str:
    return CATALOGUE.gettext(language, message)


# -- values shown to people --------------------------------------------------------------------------
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def phone_text(phone: str | None, language: str) -> str | None:
    """A phone number as people in Finland write it: national form for a Finnish number read in
    Finnish or Swedish ('040 7654321'), international form otherwise ('+358 40 7654321')."""
    if not phone:
        return None
    try:
        number = phonenumbers.parse(phone, "FI")
    except phonenumbers.NumberParseException:
        return None
    fmt = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if language in ("fi", "sv") and number.country_code == 358
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    # No-break spaces: a mail program never wraps a number in the middle.
    return phonenumbers.format_number(number, fmt).replace(" ", "\u00a0")


def person_title(person: dict[str, Any], language: str) -> str:
    """A professional's title in the language: the roster's title, else the glossary's name of the role."""
    titles = person.get("title") or {}
    return str(titles.get(language) or role_name(str(person.get("role") or ""), language))


def person_text(person: dict[str, Any], language: str) -> str:
    """'Anna Virtanen, lähityöntekijä, Porvoon varhaiskasvatus' (the name only when the roster has one)."""
    parts = [person.get("name"), person_title(person, language), person.get("unit")]
    return ", ".join(str(p) for p in parts if p)


def contact_text(person: dict[str, Any], language: str) -> str:
    line = person_text(person, language)
    phone = phone_text(person.get("phone"), language)
    reach = []
    if phone:
        reach.append(gettext(language, _PHONE_LABEL) % {"phone": phone})
    if person.get("email"):
        reach.append(gettext(language, _EMAIL_LABEL) % {"email": person["email"]})
    return line + (", " + ", ".join(reach) if reach else "")


def _values(template: str, language: str, params: dict[str, Any], audience: str) -> dict[str, Any]:
    p = params
    v: dict[str, Any] = {k: p[k] for k in ("case_ref", "municipality", "repeat_count", "plan_version") if p.get(k) is not None}
    v["to_family"] = audience == "family"
    v["to_staff"] = audience == "staff"
    moment = p.get("starts_at") or p.get("due_at")
    if moment:
        v["when"] = when_text(moment, language)
    if moment and p.get("ends_at"):
        v["when"] += "–" + time_text(p["ends_at"], language)  # ke 9.12.2026 klo 12.00–13.30
    if p.get("received_at"):
        v["received"] = when_text(p["received_at"], language)
    if p.get("due_by"):
        v["due_by"] = day_text(p["due_by"], language)
    if p.get("start_by"):
        v["start_by"] = day_text(p["start_by"], language)
    # The new responsible worker's organisation and work contact (plan.handed_over).
    for k in ("organisation", "email"):
        if p.get(k):
            v[k] = p[k]
    if p.get("phone"):
        v["phone"] = phone_text(p["phone"], language)
    if p.get("deadline"):
        v["deadline"] = gettext(language, DEADLINES.get(p["deadline"], N_("statutory deadline")))
    if "outcome" in p:
        v["outcome"] = gettext(language, OUTCOMES.get(p["outcome"], OUTCOMES["other"]))
    place = p.get("place")
    if place:
        names = place.get("names") or {}
        v["place"] = names.get(language) or place.get("name")
        v["address"] = place.get("address")
    elif template in ("meeting_invitation", "meeting_rescheduled", "meeting_reminder"):
        v["no_place"] = True
    if p.get("convener"):
        v["convener"] = person_text(p["convener"], language)
    others = [person_text(x, language) for x in p.get("participants") or []]
    if others:
        v["participants"] = "; ".join(others)
    contacts = [contact_text(x, language) for x in p.get("contacts") or []]
    if contacts:
        v["contacts"] = "\n".join(contacts)
    for flag in ("interpreter_needed", "first_assessment_meeting"):
        v[flag] = bool(p.get(flag))
    return v


def place_text(params: dict[str, Any], language: str) -> str | None:
    """The meeting's place and address in one line (a calendar entry's LOCATION), or None."""
    place = params.get("place") or {}
    name = (place.get("names") or {}).get(language) or place.get("name")
    return ", ".join(x for x in (name, place.get("address")) if x) or None


def _line(language: str, line: Line, values: dict[str, Any]) -> str | None:
    if isinstance(line, If):
        return _line(language, line.text, values) if values.get(line.flag) else None
    if isinstance(line, Value):
        return str(values.get(line.name) or "") or None
    names = _PLACEHOLDER.findall(line)
    if any(values.get(n) in (None, "") for n in names):
        return None
    return gettext(language, line) % {n: values[n] for n in names}


def template_language(template: str, language: str | None) -> str:
    """The recipient's language when we have it. A person served in another language ('other') gets
    English, as the family's plan copy does (families with integration challenges need English, the
    domain says); an interpreter helps in the meeting. Unknown: Finnish."""
    return language if language in LANGUAGES else "en" if language == "other" else "fi"


def render(template: str, language: str, params: dict[str, Any], audience: str = "family") -> tuple[str, str]:
    """(subject, body) of the message in the language, for a recipient of the ``audience`` (family,
    staff or referrer: the notification's recipient_kind). Paragraphs are separated by an empty line."""
    language = template_language(template, language)
    t = TEMPLATES[template]
    values = _values(template, language, params, audience)
    paragraphs = []
    for para in t.paragraphs:
        lines = [s for s in (_line(language, line, values) for line in para) if s]
        if lines:
            paragraphs.append("\n".join(lines))
    return gettext(language, t.subject), "\n\n".join(paragraphs)


def render_portal_notice(language: str, portal_url: str) -> str:
    language = template_language("portal_notice", language)
    return gettext(language, PORTAL_NOTICE) % {"portal_url": portal_url}


def catalogue_texts() -> list[str]:
    """Every source text of the messages (for the tests: each is in every catalogue)."""
    from .plan_copy import ATTACHED, ONLINE  # the plan message's own lines (plan_copy imports this module)

    out = [
        PORTAL_NOTICE,
        ATTACHED,
        ONLINE,
        _PHONE_LABEL,
        _EMAIL_LABEL,
        N_("statutory deadline"),
        *DEADLINES.values(),
        *OUTCOMES.values(),
    ]
    for t in TEMPLATES.values():
        out.append(t.subject)
        for para in t.paragraphs:
            for line in para:
                text = line.text if isinstance(line, If) else line
                if isinstance(text, str):
                    out.append(text)
    return list(dict.fromkeys(out))
