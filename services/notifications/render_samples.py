"""Pictures of what a family receives, for reviewers: the meeting invitation e-mail in Finnish, Swedish
and English, rendered from the real templates and catalogues for an invented Porvoo case (the roster's
own rooms and people), shown as a mail program shows it and photographed by headless Chromium.

    python -m services.notifications.render_samples [out_dir]    # default docs/messages

Writes ``invitation-<language>.html`` and ``invitation-<language>.png``. Needs Debian's ``chromium``
(``apt-get install -y chromium``) or ``KOOLLE_CHROMIUM`` pointing at a Chromium/Chrome binary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from html import escape
from pathlib import Path
from typing import Any

from .config import NotificationsConfig
from .templates import LANGUAGES, place_text, render

ROOT = Path(__file__).parents[2]
OUT = ROOT / "docs" / "messages"
ROSTER = Path(__file__).parents[1] / "meetings" / "roster.json"
GUARDIAN = "Maija Testinen <maija.testinen@example.com>"  # invented


def _person(roster: dict[str, Any], pid: str) -> dict[str, Any]:
    p = next(x for x in roster["professionals"] if x["professional_id"] == pid)
    c = p.get("contact") or {}
    role = next((r for r in p["roles"] if r != "close_worker"), p["roles"][0])
    return {"name": p.get("name"), "title": p.get("title") or {}, "role": role, "unit": p["unit"], **c}


def sample_case() -> dict[str, Any]:
    """The invitation's parameters as the notifications service stores them for an invented case."""
    roster = json.loads(ROSTER.read_text(encoding="utf-8"))
    room = next(r for r in roster["rooms"] if r["room_id"] == "pv-neuvotteluhuone-1")
    convener = _person(roster, "staff-close-1")
    return {
        "meeting_id": "0f6b1c1e-4d1c-4b8e-9a55-0c1d2e3f4a5b",
        "starts_at": "2026-12-09T10:00:00+00:00",
        "ends_at": "2026-12-09T11:30:00+00:00",
        "place": {"name": room["location"], "names": room.get("names", {}), "address": room.get("address")},
        "convener": convener,
        "participants": [_person(roster, "pv-psy-1"), _person(roster, "pv-ssw-1")],
        "contacts": [convener],
        "interpreter_needed": False,
        "first_assessment_meeting": True,
    }


_LABELS = {
    "fi": {"from": "Lähettäjä", "to": "Vastaanottaja", "date": "Päivämäärä", "attachment": "Liite: kutsu.ics (kalenterikutsu)"},
    "sv": {"from": "Från", "to": "Till", "date": "Datum", "attachment": "Bilaga: inbjudan.ics (kalenderinbjudan)"},
    "en": {"from": "From", "to": "To", "date": "Date", "attachment": "Attachment: invitation.ics (calendar invitation)"},
}
_SENT = {"fi": "ma 30.11.2026 klo 14.05", "sv": "mån 30.11.2026 kl. 14.05", "en": "Mon 30 Nov 2026 at 14:05"}

_CSS = """
body{margin:0;background:#e9ecef;font-family:'DejaVu Sans',Arial,sans-serif;color:#1d1d1d}
.mail{max-width:720px;margin:24px auto;background:#fff;border:1px solid #c9ced4;border-radius:6px}
.head{padding:18px 24px;border-bottom:1px solid #dde1e5;background:#f7f8fa;border-radius:6px 6px 0 0}
h1{font-size:20px;margin:0 0 10px}.meta{font-size:13px;color:#444;line-height:1.6}.meta b{display:inline-block;width:110px;color:#666;font-weight:normal}
.body{padding:20px 24px;font-size:15px;line-height:1.55;white-space:pre-wrap}
.att{margin:0 24px 20px;padding:8px 12px;border:1px solid #c9ced4;border-radius:4px;font-size:13px;display:inline-block;background:#f7f8fa}
"""


def email_html(language: str, params: dict[str, Any]) -> str:
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


def chromium() -> str | None:
    """The Chromium binary: ``KOOLLE_CHROMIUM``, else Debian's ``chromium`` or a Chrome on PATH."""
    configured = os.environ.get("KOOLLE_CHROMIUM")
    if configured:
        return configured
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(html: Path, png: Path, width: int = 820, height: int = 760) -> None:
    """Photograph ``html`` with headless Chromium (no network, no profile left behind)."""
    binary = chromium()
    if binary is None:
        raise RuntimeError("chromium not found: apt-get install -y chromium (or set KOOLLE_CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="koolle-chromium-") as profile:
        subprocess.run(
            [
                binary,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={width},{height}",
                html.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def write(out: Path = OUT) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    params = sample_case()
    written = []
    for language in LANGUAGES:
        html = out / f"invitation-{language}.html"
        html.write_text(email_html(language, params), encoding="utf-8")
        png = out / f"invitation-{language}.png"
        screenshot(html, png)
        written += [html, png]
    return written


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else OUT
    for path in write(out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
