"""The family's printable plan as PDF (A4), the same content and labels as the HTML copy
(``printable.py``). Made with ReportLab using the Bitstream Vera fonts ReportLab ships, so the PDF
needs nothing from the system and writes å, ä, ö and the rest of Latin-1/Latin Extended-A as typed.
Plain Python, no I/O."""

from __future__ import annotations

import io
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from .printable import LANGUAGES, format_time, labels, role_name, worker_lines

_FONTS = Path(reportlab.__file__).parent / "fonts"


@cache
def _styles() -> dict[str, ParagraphStyle]:
    pdfmetrics.registerFont(TTFont("Vera", str(_FONTS / "Vera.ttf")))
    pdfmetrics.registerFont(TTFont("Vera-Bold", str(_FONTS / "VeraBd.ttf")))
    base = ParagraphStyle("body", fontName="Vera", fontSize=10, leading=14)
    return {
        "body": base,
        "h1": ParagraphStyle("h1", parent=base, fontName="Vera-Bold", fontSize=18, leading=22, spaceAfter=4),
        "h2": ParagraphStyle("h2", parent=base, fontName="Vera-Bold", fontSize=12.5, leading=16, spaceBefore=10, spaceAfter=4),
        "h3": ParagraphStyle("h3", parent=base, fontName="Vera-Bold", fontSize=10.5, spaceBefore=6, spaceAfter=2),
        "meta": ParagraphStyle("meta", parent=base, fontSize=9, textColor=colors.HexColor("#444444")),
        "next": ParagraphStyle("next", parent=base, fontName="Vera-Bold", fontSize=13, leading=17),
        "cell": ParagraphStyle("cell", parent=base, fontSize=9, leading=12),
        "th": ParagraphStyle("th", parent=base, fontName="Vera-Bold", fontSize=9, leading=12),
    }


def _table(header: list[str], rows: list[list[str]], widths: list[float]) -> Table:
    st = _styles()
    data = [[Paragraph(escape(h), st["th"]) for h in header]]
    data += [[Paragraph(escape(c), st["cell"]) for c in row] for row in rows]
    t = Table(data, colWidths=widths, repeatRows=1)
    t.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#bbbbbb")),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f0f0f0")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    return t


def render_pdf(content: dict[str, Any], language: str, shared_roles: list[str] | None = None) -> bytes:
    lang = language if language in LANGUAGES else "en"
    L, st = labels(lang), _styles()
    p = lambda text, style="body": Paragraph(escape(text), st[style])  # noqa: E731
    width = A4[0] - 40 * mm
    story: list[Any] = [p(L["title"], "h1")]
    recorded = datetime.fromisoformat(content["recorded_at"])
    story.append(p(f"{L['version']} {int(content['version'])} · {L['recorded']} {format_time(recorded, lang)}", "meta"))

    story.append(p(L["changes"], "h2"))
    story += [p(f"• {c}") for c in content.get("changes_needed", [])]

    story.append(p(L["actions"], "h2"))
    for kind in ("home", "everyday_environment", "elsewhere"):
        actions = content.get("actions", {}).get(kind, [])
        story.append(p(L[kind], "h3"))
        if not actions:
            story.append(p(L["none"]))
            continue
        rows = [[a.get("what") or "", a.get("who") or "", a.get("where") or ""] for a in actions]
        story.append(_table([L["what"], L["who"], L["where"]], rows, [width * 0.45, width * 0.25, width * 0.30]))

    story.append(p(L["followup"], "h2"))
    story.append(p(L["worker_contacts_family"], "h3"))
    story.append(p(content.get("worker_contacts_family", "")))
    story.append(p(L["family_contacts_worker"], "h3"))
    story.append(p(content.get("family_contacts_worker", "")))

    story.append(p(L["responsible"], "h2"))
    rows = [list(worker_lines(w, lang)) for w in content.get("responsible_workers", [])]
    story.append(_table([L["responsible"], L["organisation"], L["contact"]], rows, [width * 0.35, width * 0.30, width * 0.35]))

    if content.get("next_contact_at"):
        story.append(p(L["next_contact"], "h2"))
        story.append(p(format_time(datetime.fromisoformat(content["next_contact_at"]), lang), "next"))
    if shared_roles:
        story.append(p(L["shared"], "h2"))
        story += [p(f"• {role_name(r, lang)}") for r in shared_roles]
    story += [Spacer(1, 8 * mm), p(L["footer"], "meta")]

    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out, pagesize=A4, leftMargin=20 * mm, rightMargin=20 * mm, topMargin=18 * mm, bottomMargin=18 * mm, title=L["title"]
    )
    doc.build(story)
    return out.getvalue()
