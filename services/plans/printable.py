"""The family's printable copy of the joint plan (HTML, fi/sv/en). Plain Python: no I/O beyond
reading the ``plans`` catalogue once.

The close worker records the plan and prints it for the family ("kirjaa ja tulostaa yhteisen
suunnitelman perheelle"). The document holds the plan version's content only: no identity numbers,
nothing about the family beyond what the plan says. Every value is HTML-escaped.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

import phonenumbers

from shared import glossary
from shared.catalogue import N_, Catalogue
from shared.datetext import when_text

LANGUAGES = ("fi", "sv", "en")
CATALOGUE = Catalogue(Path(__file__).with_name("locale"), "plans")

LABELS: dict[str, str] = {
    "title": N_("Joint plan"),
    "version": N_("Version"),
    "recorded": N_("Recorded"),
    "changes": N_("What in everyday life needs to change"),
    "actions": N_("What will be done"),
    "home": N_("At home"),
    "everyday_environment": N_("In the child's everyday environment (early childhood education, school)"),
    "elsewhere": N_("Elsewhere"),
    "what": N_("What"),
    "who": N_("Who"),
    "where": N_("Where"),
    "none": N_("No actions agreed."),
    "followup": N_("How follow-up is done"),
    "worker_contacts_family": N_("The worker contacts the family"),
    "family_contacts_worker": N_("The family contacts the worker"),
    "responsible": N_("Responsible worker"),
    "organisation": N_("Organisation"),
    "contact": N_("Contact"),
    "next_contact": N_("Next agreed follow-up contact"),
    "shared": N_("With the family's consent the plan also goes to"),
    "footer": N_(
        "The plan was made together with the family. It goes to the family and the responsible worker, "
        "and to others only with the family's consent."
    ),
}
"""The page's texts in English; the Finnish and Swedish are in the ``plans`` catalogue
(services/plans/locale/<language>/LC_MESSAGES/plans.po, docs/translations.md)."""


def labels(language: str) -> dict[str, str]:
    """The page's texts in the language (English for a language without a catalogue)."""
    lang = language if language in LANGUAGES else "en"
    return {key: CATALOGUE.gettext(lang, text) for key, text in LABELS.items()}


def role_name(code: str, language: str) -> str:
    """A role as the family reads it, from the glossary; never the code."""
    return glossary.role_name(code, language if language in LANGUAGES else "en")


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
    if isinstance(title, dict):  # the roster's title by language
        title = title.get(language) or title.get("fi") or ""
    who = ", ".join(x for x in (w.get("name"), title) if x)
    c = w.get("contact") or {}
    how = ", ".join(x for x in (phone_for_people(c.get("phone")), c.get("email")) if x)
    return who, w.get("organisation", ""), how


_CSS = """
body{font-family:Georgia,'Times New Roman',serif;max-width:46em;margin:2em auto;padding:0 1em;color:#111;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.15em;border-bottom:1px solid #999;margin-top:1.4em}
h3{font-size:1em;margin:.8em 0 .3em}.meta{color:#444;font-size:.9em}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #bbb;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f0f0f0}.next{font-size:1.2em;font-weight:bold}footer{margin-top:2em;font-size:.85em;color:#444}
dt{font-weight:bold;margin-top:.5em}dd{margin:.1em 0 .3em 1.5em}.nowrap{white-space:nowrap}
@media print{body{margin:0;max-width:none}h2{page-break-after:avoid}table,tr{page-break-inside:avoid}}
"""


def format_time(dt: datetime, language: str) -> str:
    """Europe/Helsinki time as people in Finland write it: 'ke 9.12.2026 klo 12.00' (shared/datetext.py)."""
    return when_text(dt, language if language in LANGUAGES else "en")


def render(content: dict[str, Any], language: str, shared_roles: list[str] | None = None) -> str:
    lang = language if language in LANGUAGES else "en"
    L = labels(lang)
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
        reach = "<br>".join(f'<span class="nowrap">{e(x)}</span>' for x in how.split(", ") if x)  # phone, e-mail
        parts.append(f"<tr><td>{e(who)}</td><td>{e(organisation)}</td><td>{reach}</td></tr>")
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
