"""Wellbeing star pictures in pure Python: an SVG radar (the star itself) and SVG line charts, one per
area. A worker shows them to the family: is the help working (vaikuttavuus)? No I/O, no plotting
library; every text is escaped."""

from __future__ import annotations

import math
from html import escape

from shared.catalogue import N_
from shared.clock import local

from .domain import STAR_AREAS, Measurement
from .printable import CATALOGUE, LANGUAGES

AREA_LABELS: dict[str, str] = {
    "child_health_growth_development": N_("Child's health, growth and development"),
    "child_relationships_safety": N_("Child's experience of relationships and safety"),
    "child_self_view": N_("Child's view of themself"),
    "child_family_daycare_school_leisure_friends": N_("Child's experience of family, day care, school, leisure, friends"),
    "parenting_relationship_with_child": N_("Parenting and the relationship with the child"),
    "social_wellbeing_family_environment": N_("Social wellbeing: family and environment"),
}
TITLE = N_("Wellbeing star")
SOURCES = {"meeting": N_("joint meeting"), "followup": N_("agreed follow-up contact")}
"""The charts' texts in English; the Finnish and Swedish are in the ``plans`` catalogue, with the
printable plan's (services/plans/locale, docs/translations.md)."""


def translated(language: str, source: str) -> str:
    return CATALOGUE.gettext(language if language in LANGUAGES else "en", source)


COLOURS = ("#9e9e9e", "#1f77b4", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
LATEST = "#d62728"
FONT = 'font-family="Helvetica,Arial,sans-serif"'


def _date(m: Measurement) -> str:
    d = local(m.measured_at).date()
    return f"{d.day}.{d.month}.{d.year}"


def _wrap(text: str, width: int = 24) -> list[str]:
    lines: list[str] = []
    for word in text.split():
        if lines and len(lines[-1]) + 1 + len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def _colour(i: int, n: int) -> str:
    return LATEST if i == n - 1 else COLOURS[i % len(COLOURS)]


def _legend(ms: list[Measurement], lang: str, x: float, y: float) -> list[str]:
    out = []
    for i, m in enumerate(ms):
        c = _colour(i, len(ms))
        yy = y + i * 18
        out.append(f'<rect x="{x}" y="{yy - 10}" width="12" height="12" fill="{c}" fill-opacity="0.6" stroke="{c}"/>')
        out.append(
            f'<text x="{x + 18}" y="{yy}" font-size="12" {FONT}>{escape(_date(m))} ({escape(translated(lang, SOURCES.get(m.source, m.source)))})</text>'
        )
    return out


def radar(measurements: list[Measurement], language: str = "fi") -> str:
    """The star: six axes 1-10, one polygon per measurement (the latest in red, bold)."""
    lang = language if language in LANGUAGES else "en"
    ms = sorted(measurements, key=lambda m: m.measured_at)
    w, h, cx, cy, r = 760, 620, 380, 300, 190
    n = len(STAR_AREAS)

    def point(k: int, score: float) -> tuple[float, float]:
        a = -math.pi / 2 + 2 * math.pi * k / n
        rr = r * (score / 10)
        return cx + rr * math.cos(a), cy + rr * math.sin(a)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + 18 * len(ms)}" viewBox="0 0 {w} {h + 18 * len(ms)}" role="img">',
        f"<title>{escape(translated(lang, TITLE))}</title>",
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{cx}" y="30" text-anchor="middle" font-size="20" {FONT}>{escape(translated(lang, TITLE))}</text>',
    ]
    for ring in (2, 4, 6, 8, 10):
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in (point(k, ring) for k in range(n)))
        out.append(f'<polygon points="{pts}" fill="none" stroke="#ddd"/>')
        x, y = point(0, ring)
        out.append(f'<text x="{x + 4:.1f}" y="{y + 4:.1f}" font-size="10" fill="#888" {FONT}>{ring}</text>')
    for k, area in enumerate(STAR_AREAS):
        x, y = point(k, 10)
        out.append(f'<line x1="{cx}" y1="{cy}" x2="{x:.1f}" y2="{y:.1f}" stroke="#ccc"/>')
        lx, ly = point(k, 11.6)
        anchor = "middle" if abs(lx - cx) < 20 else ("start" if lx > cx else "end")
        lines = _wrap(translated(lang, AREA_LABELS[area]))
        ly -= 7 * (len(lines) - 1)
        for j, line in enumerate(lines):
            out.append(
                f'<text x="{lx:.1f}" y="{ly + 14 * j:.1f}" text-anchor="{anchor}" font-size="12" {FONT}>{escape(line)}</text>'
            )
    for i, m in enumerate(ms):
        pts = [point(k, m.scores[a]) for k, a in enumerate(STAR_AREAS) if a in m.scores]
        if not pts:
            continue
        c = _colour(i, len(ms))
        latest = i == len(ms) - 1
        width = 3 if latest else 1.5
        opacity = 0.25 if latest else 0.08
        if len(pts) == n:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            out.append(f'<polygon points="{coords}" fill="{c}" fill-opacity="{opacity}" stroke="{c}" stroke-width="{width}"/>')
        for x, y in pts:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{4 if latest else 3}" fill="{c}"/>')
    out += _legend(ms, lang, 40, h - 10)
    out.append("</svg>")
    return "\n".join(out)


def lines(measurements: list[Measurement], language: str = "fi") -> str:
    """One small line chart per area: the score at the joint meeting and at each follow-up."""
    lang = language if language in LANGUAGES else "en"
    ms = sorted(measurements, key=lambda m: m.measured_at)
    cols, pw, ph, pad = 2, 360, 170, 40
    w = cols * (pw + pad) + pad
    h = 60 + 3 * (ph + 70)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">',
        f"<title>{escape(translated(lang, TITLE))}</title>",
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{w / 2}" y="30" text-anchor="middle" font-size="20" {FONT}>{escape(translated(lang, TITLE))}</text>',
    ]
    for k, area in enumerate(STAR_AREAS):
        ox = pad + (k % cols) * (pw + pad)
        oy = 70 + (k // cols) * (ph + 70)
        for j, line in enumerate(_wrap(translated(lang, AREA_LABELS[area]), 52)):
            out.append(f'<text x="{ox}" y="{oy + 14 * j}" font-size="12" font-weight="bold" {FONT}>{escape(line)}</text>')
        top = oy + 30
        out.append(f'<rect x="{ox}" y="{top}" width="{pw}" height="{ph - 40}" fill="none" stroke="#ccc"/>')

        def y_of(score: float, top: float = top) -> float:
            return top + (ph - 40) * (1 - (score - 1) / 9)

        for s in (1, 5, 10):
            out.append(f'<text x="{ox - 6}" y="{y_of(s) + 4:.1f}" text-anchor="end" font-size="10" fill="#888" {FONT}>{s}</text>')
        series = [(i, m) for i, m in enumerate(ms) if area in m.scores]
        inset = 32  # keep date labels inside the panel
        step = (pw - 2 * inset) / (len(ms) - 1) if len(ms) > 1 else 0
        pts = [(ox + (inset + i * step if len(ms) > 1 else pw / 2), y_of(m.scores[area])) for i, m in series]
        if len(pts) > 1:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            out.append(f'<polyline points="{coords}" fill="none" stroke="{COLOURS[1]}" stroke-width="2"/>')
        for (x, y), (i, m) in zip(pts, series, strict=True):
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{_colour(i, len(ms))}"/>')
            out.append(f'<text x="{x:.1f}" y="{y - 8:.1f}" text-anchor="middle" font-size="11" {FONT}>{m.scores[area]}</text>')
            out.append(
                f'<text x="{x:.1f}" y="{top + ph - 25:.1f}" text-anchor="middle" font-size="10" fill="#555" {FONT}>{escape(_date(m))}</text>'
            )
    out.append("</svg>")
    return "\n".join(out)
