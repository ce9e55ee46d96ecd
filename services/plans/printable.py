"""The family's printable copy of the joint plan (HTML, fi/sv/en). Plain Python, no I/O.

The close worker records the plan and prints it for the family ("kirjaa ja tulostaa yhteisen
suunnitelman perheelle"). The document holds the plan version's content only: no identity numbers,
nothing about the family beyond what the plan says. Every value is HTML-escaped.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

import phonenumbers

from shared.clock import local

ROLE_NAMES: dict[str, dict[str, str]] = {
    "fi": {
        "close_worker": "lähityöntekijä",
        "social_worker": "sosiaalityöntekijä",
        "social_counsellor": "sosiaaliohjaaja",
        "family_worker": "perhetyöntekijä",
        "family_counsellor": "perheneuvoja",
        "family_counselling": "perheneuvola",
        "psychologist": "psykologi",
        "home_help": "lapsiperheiden kotipalvelu",
        "school_social_worker": "koulukuraattori",
        "child_health_nurse": "neuvolan terveydenhoitaja",
        "early_childhood_education": "varhaiskasvatus",
        "responsible_worker": "vastuutyöntekijä",
        "family": "perhe",
    },
    "sv": {
        "close_worker": "närarbetare",
        "social_worker": "socialarbetare",
        "social_counsellor": "socialhandledare",
        "family_worker": "familjearbetare",
        "family_counsellor": "familjerådgivare",
        "family_counselling": "familjerådgivningen",
        "psychologist": "psykolog",
        "home_help": "hemservice för barnfamiljer",
        "school_social_worker": "skolkurator",
        "child_health_nurse": "hälsovårdare vid rådgivningen",
        "early_childhood_education": "småbarnspedagogiken",
        "responsible_worker": "ansvarig arbetare",
        "family": "familjen",
    },
    "en": {
        "close_worker": "close worker",
        "social_worker": "social worker",
        "social_counsellor": "social counsellor",
        "family_worker": "family worker",
        "family_counsellor": "family counsellor",
        "family_counselling": "family counselling clinic",
        "psychologist": "psychologist",
        "home_help": "home help for families with children",
        "school_social_worker": "school social worker",
        "child_health_nurse": "child health clinic nurse",
        "early_childhood_education": "early childhood education",
        "responsible_worker": "responsible worker",
        "family": "the family",
    },
}
"""Role codes as a family reads them; a code not listed is shown with its words, never as a code."""


def role_name(code: str, language: str) -> str:
    names = ROLE_NAMES.get(language, ROLE_NAMES["en"])
    return names.get(code) or code.replace("_", " ").strip()


def phone_for_people(number: str | None) -> str:
    """A phone number as people in Finland write it: '040 7654321' for a Finnish number, the
    international form ('+46 70 123 45 67') for another country's."""
    if not number:
        return ""
    try:
        parsed = phonenumbers.parse(number, "FI")
    except phonenumbers.NumberParseException:
        return number
    fmt = phonenumbers.PhoneNumberFormat.NATIONAL if parsed.country_code == 358 else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(parsed, fmt)


def worker_lines(w: dict[str, Any], language: str) -> tuple[str, str, str]:
    """(who, organisation, how to reach) of a responsible worker: a name and title, never an id."""
    title = w.get("title") or (role_name(w["role"], language) if w.get("role") else role_name("responsible_worker", language))
    who = ", ".join(x for x in (w.get("name"), title) if x)
    c = w.get("contact") or {}
    how = ", ".join(x for x in (phone_for_people(c.get("phone")), c.get("email")) if x)
    return who, w.get("organisation", ""), how


LABELS: dict[str, dict[str, str]] = {
    "fi": {
        "title": "Yhteinen suunnitelma",
        "version": "Versio",
        "recorded": "Kirjattu",
        "changes": "Mihin arjen asioihin tarvitaan muutosta",
        "actions": "Mitä tehdään",
        "home": "Kotona",
        "everyday_environment": "Lapsen arjen ympäristössä (varhaiskasvatus, koulu)",
        "elsewhere": "Muualla",
        "what": "Mitä",
        "who": "Kuka",
        "where": "Missä",
        "none": "Ei sovittuja toimia.",
        "followup": "Miten seuranta tehdään",
        "worker_contacts_family": "Työntekijä on yhteydessä perheeseen",
        "family_contacts_worker": "Perhe on yhteydessä työntekijään",
        "responsible": "Vastuutyöntekijä",
        "organisation": "Organisaatio",
        "contact": "Yhteystiedot",
        "next_contact": "Seuraava yhteydenotto",
        "shared": "Suunnitelma annetaan perheen luvalla myös",
        "footer": "Suunnitelma on tehty yhdessä perheen kanssa. Se annetaan perheelle ja vastuutyöntekijälle, "
        "ja muille vain perheen luvalla.",
    },
    "sv": {
        "title": "Gemensam plan",
        "version": "Version",
        "recorded": "Registrerad",
        "changes": "Vad i vardagen behöver förändras",
        "actions": "Vad som görs",
        "home": "Hemma",
        "everyday_environment": "I barnets vardagsmiljö (småbarnspedagogik, skola)",
        "elsewhere": "Någon annanstans",
        "what": "Vad",
        "who": "Vem",
        "where": "Var",
        "none": "Inga överenskomna åtgärder.",
        "followup": "Hur uppföljningen görs",
        "worker_contacts_family": "Arbetstagaren kontaktar familjen",
        "family_contacts_worker": "Familjen kontaktar arbetstagaren",
        "responsible": "Ansvarig arbetstagare",
        "organisation": "Organisation",
        "contact": "Kontaktuppgifter",
        "next_contact": "Nästa kontakt",
        "shared": "Med familjens samtycke ges planen också till",
        "footer": "Planen har gjorts tillsammans med familjen. Den ges till familjen och den ansvariga arbetstagaren, "
        "och till andra endast med familjens samtycke.",
    },
    "en": {
        "title": "Joint plan",
        "version": "Version",
        "recorded": "Recorded",
        "changes": "What in everyday life needs to change",
        "actions": "What will be done",
        "home": "At home",
        "everyday_environment": "In the child's everyday environment (early childhood education, school)",
        "elsewhere": "Elsewhere",
        "what": "What",
        "who": "Who",
        "where": "Where",
        "none": "No actions agreed.",
        "followup": "How follow-up is done",
        "worker_contacts_family": "The worker contacts the family",
        "family_contacts_worker": "The family contacts the worker",
        "responsible": "Responsible worker",
        "organisation": "Organisation",
        "contact": "Contact",
        "next_contact": "Next contact",
        "shared": "With the family's consent the plan also goes to",
        "footer": "The plan was made together with the family. It goes to the family and the responsible worker, "
        "and to others only with the family's consent.",
    },
}

_MONTHS = {
    "fi": None,
    "sv": [
        "januari",
        "februari",
        "mars",
        "april",
        "maj",
        "juni",
        "juli",
        "augusti",
        "september",
        "oktober",
        "november",
        "december",
    ],
    "en": [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
}

_CSS = """
body{font-family:Georgia,'Times New Roman',serif;max-width:46em;margin:2em auto;padding:0 1em;color:#111;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.15em;border-bottom:1px solid #999;margin-top:1.4em}
h3{font-size:1em;margin:.8em 0 .3em}.meta{color:#444;font-size:.9em}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #bbb;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f0f0f0}.next{font-size:1.2em;font-weight:bold}footer{margin-top:2em;font-size:.85em;color:#444}
@media print{body{margin:0;max-width:none}h2{page-break-after:avoid}table,tr{page-break-inside:avoid}}
"""


def format_time(dt: datetime, language: str) -> str:
    """Europe/Helsinki time in the family's language, e.g. '5.12.2026 klo 10.00' / '5 December 2026 at 10:00'."""
    t = local(dt)
    if language == "fi":
        return f"{t.day}.{t.month}.{t.year} klo {t.hour}.{t.minute:02d}"
    months = _MONTHS[language] or []
    if language == "sv":
        return f"{t.day} {months[t.month - 1]} {t.year} kl. {t.hour}.{t.minute:02d}"
    return f"{t.day} {months[t.month - 1]} {t.year} at {t.hour:02d}:{t.minute:02d}"


def render(content: dict[str, Any], language: str, shared_roles: list[str] | None = None) -> str:
    lang = language if language in LABELS else "en"
    L = LABELS[lang]
    e = escape
    parts: list[str] = [
        "<!DOCTYPE html>",
        f'<html lang="{lang}"><head><meta charset="utf-8">',
        f"<title>{e(L['title'])}</title><style>{_CSS}</style></head><body>",
        f"<h1>{e(L['title'])}</h1>",
    ]
    recorded = datetime.fromisoformat(content["recorded_at"])
    parts.append(
        f'<p class="meta">{e(L["version"])} {int(content["version"])} · {e(L["recorded"])} {e(format_time(recorded, lang))}</p>'
    )

    parts.append(f"<h2>{e(L['changes'])}</h2><ul>")
    parts += [f"<li>{e(c)}</li>" for c in content.get("changes_needed", [])]
    parts.append("</ul>")

    parts.append(f"<h2>{e(L['actions'])}</h2>")
    for kind in ("home", "everyday_environment", "elsewhere"):
        actions = content.get("actions", {}).get(kind, [])
        parts.append(f"<h3>{e(L[kind])}</h3>")
        if not actions:
            parts.append(f"<p>{e(L['none'])}</p>")
            continue
        parts.append(f"<table><tr><th>{e(L['what'])}</th><th>{e(L['who'])}</th><th>{e(L['where'])}</th></tr>")
        for a in actions:
            parts.append(
                f"<tr><td>{e(a.get('what') or '')}</td><td>{e(a.get('who') or '')}</td><td>{e(a.get('where') or '')}</td></tr>"
            )
        parts.append("</table>")

    parts.append(f"<h2>{e(L['followup'])}</h2><dl>")
    parts.append(f"<dt>{e(L['worker_contacts_family'])}</dt><dd>{e(content.get('worker_contacts_family', ''))}</dd>")
    parts.append(f"<dt>{e(L['family_contacts_worker'])}</dt><dd>{e(content.get('family_contacts_worker', ''))}</dd></dl>")

    parts.append(
        f"<h2>{e(L['responsible'])}</h2><table><tr><th>{e(L['responsible'])}</th><th>{e(L['organisation'])}</th><th>{e(L['contact'])}</th></tr>"
    )
    for w in content.get("responsible_workers", []):
        who, organisation, how = worker_lines(w, lang)
        parts.append(f"<tr><td>{e(who)}</td><td>{e(organisation)}</td><td>{e(how)}</td></tr>")
    parts.append("</table>")

    if content.get("next_contact_at"):
        nxt = datetime.fromisoformat(content["next_contact_at"])
        parts.append(f'<h2>{e(L["next_contact"])}</h2><p class="next">{e(format_time(nxt, lang))}</p>')
    if shared_roles:
        parts.append(
            f"<h2>{e(L['shared'])}</h2><ul>" + "".join(f"<li>{e(role_name(r, lang))}</li>" for r in shared_roles) + "</ul>"
        )
    parts.append(f"<footer>{e(L['footer'])}</footer></body></html>")
    return "\n".join(parts)
