"""Pictures of what a family receives, for reviewers: the meeting invitation e-mail and the printable
joint plan in Finnish, Swedish and English, made by the real templates, catalogues and printable page
for an invented Porvoo case (the roster's own place and people), photographed by headless Chromium.

    python -m infra.samples [out_dir]    # or: make samples; default docs/samples

Writes ``invitation-<language>.html|png`` and ``plan-<language>.html|png``. Needs Chromium
(``apt-get install -y chromium``; shared/screenshots.py). This command composes two services'
renderers, which the services themselves never do (they share only shared.contracts).
"""

from __future__ import annotations

import json
import sys
from html import escape
from pathlib import Path
from typing import Any

from services.notifications.config import NotificationsConfig
from services.notifications.templates import place_text, render
from services.plans import printable
from shared.screenshots import screenshot

ROOT = Path(__file__).parents[1]
OUT = ROOT / "docs" / "samples"
ROSTER = ROOT / "services" / "meetings" / "roster.json"
LANGUAGES = ("fi", "sv", "en")
GUARDIAN = "Maija Testinen <maija.testinen@example.com>"  # invented
SIZES = {"invitation": (820, 740), "plan": (900, 1320)}  # the window Chromium photographs, CSS pixels


def _roster() -> dict[str, Any]:
    return dict(json.loads(ROSTER.read_text(encoding="utf-8")))


def _person(pid: str) -> dict[str, Any]:
    p = next(x for x in _roster()["professionals"] if x["professional_id"] == pid)
    c = p.get("contact") or {}
    role = next((r for r in p["roles"] if r != "close_worker"), p["roles"][0])
    return {"name": p.get("name"), "title": p.get("title") or {}, "role": role, "unit": p["unit"], **c}


def invitation_case() -> dict[str, Any]:
    """The invitation's parameters as the notifications service keeps them for the invented case:
    the close worker convenes the psychologist and the school social worker in the family centre."""
    room = next(r for r in _roster()["rooms"] if r["room_id"] == "pv-neuvotteluhuone-1")
    convener = _person("staff-close-1")
    return {
        "meeting_id": "0f6b1c1e-4d1c-4b8e-9a55-0c1d2e3f4a5b",
        "starts_at": "2026-12-09T10:00:00+00:00",
        "ends_at": "2026-12-09T11:30:00+00:00",
        "place": {"name": room["location"], "names": room.get("names", {}), "address": room.get("address")},
        "convener": convener,
        "participants": [_person("pv-psy-1"), _person("pv-ssw-1")],
        "contacts": [convener],
        "interpreter_needed": False,
        "first_assessment_meeting": True,
    }


# What the family and the workers wrote into the plan at the joint meeting, in the family's language.
_PLAN_TEXTS: dict[str, dict[str, Any]] = {
    "fi": {
        "changes": ["Aamut sujuvat ilman riitaa, ja Eetu ehtii kouluun ajoissa.", "Eetu jaksaa koulupäivän ja nukkuu yönsä."],
        "home": (
            "Iltarutiini ja ruutuaika sovitaan yhdessä; kuvallinen päiväjärjestys jääkaapin oveen.",
            "Maija Testinen",
            "kotona",
        ),
        "school": (
            "Tukijakso koulussa ja viikoittainen tapaaminen koulukuraattorin kanssa.",
            "Mikko Peltonen",
            "Kevätkummun koulu",
        ),
        "elsewhere": ("Perheneuvolan vanhempainryhmä keväällä.", "Johanna Lindqvist", "Porvoon perheneuvola"),
        "worker": "Anna Virtanen soittaa perheelle joka toinen tiistai.",
        "family": "Perhe soittaa tai lähettää sähköpostia arkisin klo 8–16.",
    },
    "sv": {
        "changes": [
            "Morgnarna går utan gräl, och Eetu hinner till skolan i tid.",
            "Eetu orkar med skoldagen och sover om nätterna.",
        ],
        "home": (
            "Kvällsrutin och skärmtid kommer vi överens om tillsammans; ett bildschema på kylskåpsdörren.",
            "Maija Testinen",
            "hemma",
        ),
        "school": ("Stödperiod i skolan och ett möte med skolkuratorn varje vecka.", "Mikko Peltonen", "Vårbergets skola"),
        "elsewhere": ("Familjerådgivningens föräldragrupp i vår.", "Johanna Lindqvist", "Borgå familjerådgivning"),
        "worker": "Anna Virtanen ringer familjen varannan tisdag.",
        "family": "Familjen ringer eller skickar e-post vardagar kl. 8–16.",
    },
    "en": {
        "changes": [
            "Mornings go without quarrels, and Eetu gets to school on time.",
            "Eetu copes with the school day and sleeps at night.",
        ],
        "home": (
            "An evening routine and screen time agreed together; a picture schedule on the fridge door.",
            "Maija Testinen",
            "at home",
        ),
        "school": (
            "A support period at school and a weekly meeting with the school social worker.",
            "Mikko Peltonen",
            "Kevätkumpu school",
        ),
        "elsewhere": (
            "The family counselling clinic's parents' group in the spring.",
            "Johanna Lindqvist",
            "Porvoo family counselling",
        ),
        "worker": "Anna Virtanen calls the family every other Tuesday.",
        "family": "The family calls or e-mails on weekdays 8–16.",
    },
}


def plan_content(language: str) -> dict[str, Any]:
    """A plan version as the plans service keeps it: the close worker is the responsible worker."""
    t = _PLAN_TEXTS[language]
    anna = _person("staff-close-1")

    def action(x: tuple[str, str, str]) -> dict[str, str]:
        return {"what": x[0], "who": x[1], "where": x[2]}

    return {
        "version": 1,
        "recorded_at": "2026-12-09T11:20:00+00:00",
        "changes_needed": t["changes"],
        "actions": {
            "home": [action(t["home"])],
            "everyday_environment": [action(t["school"])],
            "elsewhere": [action(t["elsewhere"])],
        },
        "worker_contacts_family": t["worker"],
        "family_contacts_worker": t["family"],
        "responsible_workers": [
            {
                "worker_id": "staff-close-1",
                "organisation": anna["unit"],
                "public_service": True,
                "name": anna["name"],
                "title": anna["title"].get(language),
                "role": "close_worker",
                "contact": {"phone": anna["phone"], "email": anna["email"]},
            }
        ],
        "next_contact_at": "2026-12-22T08:00:00+00:00",
    }


_LABELS = {
    "fi": {"from": "Lähettäjä", "to": "Vastaanottaja", "date": "Päivämäärä", "attachment": "Liite: kutsu.ics (kalenterikutsu)"},
    "sv": {"from": "Från", "to": "Till", "date": "Datum", "attachment": "Bilaga: inbjudan.ics (kalenderinbjudan)"},
    "en": {"from": "From", "to": "To", "date": "Date", "attachment": "Attachment: invitation.ics (calendar invitation)"},
}
"""The mail program's own words around the message (not our texts)."""
_SENT = {"fi": "ma 30.11.2026 klo 14.05", "sv": "mån 30.11.2026 kl. 14.05", "en": "Mon 30 Nov 2026 at 14:05"}

_CSS = """
body{margin:0;background:#e9ecef;font-family:'DejaVu Sans',Arial,sans-serif;color:#1d1d1d}
.mail{max-width:720px;margin:24px auto;background:#fff;border:1px solid #c9ced4;border-radius:6px}
.head{padding:18px 24px;border-bottom:1px solid #dde1e5;background:#f7f8fa;border-radius:6px 6px 0 0}
h1{font-size:20px;margin:0 0 10px}.meta{font-size:13px;color:#444;line-height:1.6}
.meta b{display:inline-block;width:110px;color:#666;font-weight:normal}
.body{padding:20px 24px;font-size:15px;line-height:1.55;white-space:pre-wrap}
.att{margin:0 24px 20px;padding:8px 12px;border:1px solid #c9ced4;border-radius:4px;font-size:13px;display:inline-block;background:#f7f8fa}
"""


def email_html(language: str, params: dict[str, Any]) -> str:
    """The invitation e-mail as a mail program shows it: subject, sender, body, the calendar file."""
    subject, body = render("meeting_invitation", language, params, "family")
    lab = _LABELS[language]
    sender = NotificationsConfig().mail_from
    e = escape
    return (
        f'<!DOCTYPE html><html lang="{language}"><head><meta charset="utf-8"><title>{e(subject)}</title>'
        f'<style>{_CSS}</style></head><body><div class="mail"><div class="head"><h1>{e(subject)}</h1>'
        f'<div class="meta"><b>{e(lab["from"])}</b>{e(sender)}<br><b>{e(lab["to"])}</b>{e(GUARDIAN)}<br>'
        f"<b>{e(lab['date'])}</b>{e(_SENT[language])}</div></div>"
        f'<div class="body">{e(body)}</div>'
        f'<div class="att">{e(lab["attachment"])} · {e(place_text(params, language) or "")}</div>'
        "</div></body></html>"
    )


def pages() -> dict[str, str]:
    """File name (without extension) -> the HTML page, for every sample and language."""
    out = {}
    case = invitation_case()
    for language in LANGUAGES:
        out[f"invitation-{language}"] = email_html(language, case)
        out[f"plan-{language}"] = printable.render(plan_content(language), language, shared_roles=["school_social_worker"])
    return out


def write(out: Path = OUT) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, page in pages().items():
        html = out / f"{name}.html"
        html.write_text(page, encoding="utf-8")
        png = out / f"{name}.png"
        screenshot(html, png, *SIZES[name.split("-")[0]])
        written += [html, png]
    return written


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else OUT
    for path in write(out):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
