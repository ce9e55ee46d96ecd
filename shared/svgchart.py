"""A bar chart as SVG text: groups of bars side by side, each bar a share (0-100 %), a legend above and
a label under each group, optionally a table of figures under the chart. Plain Python, no I/O.

The caller brings every text already translated (the labels stay with each service's catalogue) and
the figures; this module only draws. Every text and attribute value is XML-escaped here, so a
municipality's name or a translation cannot break the markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

FONT = 'font-family="Helvetica,Arial,sans-serif"'
LEFT = 60
"""Room left of the plot for the percentage axis."""
HEIGHT = 220
"""The plot's height: a share of 1.0 is a bar this tall."""


@dataclass(frozen=True)
class Series:
    """One bar in every group: its legend text, colour, and a share (0-1) per group, None for no bar."""

    label: str
    colour: str
    shares: Sequence[float | None]


@dataclass(frozen=True)
class Row:
    """One line of the table under the chart: its heading, and a value per group, None for a blank."""

    label: str
    values: Sequence[object | None]


@dataclass(frozen=True)
class Layout:
    """Where things stand, in pixels; each chart has its own, so that its picture stays as it was."""

    bar: int
    """A bar's step within its group (the bar is 2 px narrower)."""
    gap: int
    """Between two groups."""
    top: int
    """Where the plot starts, under the title and the legend."""
    legend_y: int
    legend_step: int
    """How far apart the legend's entries stand."""
    min_width: int
    right: int
    """Room right of the last group."""
    below: int
    """Height under the plot: the group labels and the table."""
    background: bool = False
    """A white background, for viewers that show a transparent picture on black."""


def bar_chart(
    title: str,
    series: Sequence[Series],
    groups: Sequence[str],
    none: str,
    layout: Layout,
    table: Sequence[Row] = (),
) -> str:
    """The chart as one SVG document; ``none`` is written in the plot when there are no groups."""
    bar, gap, top, left, height = layout.bar, layout.gap, layout.top, LEFT, HEIGHT
    group = len(series) * bar + gap
    width = max(layout.min_width, left + len(groups) * group + layout.right)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + height + layout.below}" role="img">',
        f"<title>{escape(title)}</title>",
    ]
    if layout.background:
        parts.append('<rect width="100%" height="100%" fill="white"/>')
    parts.append(f'<text x="{left}" y="24" font-size="16" {FONT}>{escape(title)}</text>')
    for i, s in enumerate(series):
        x = left + i * layout.legend_step
        parts.append(f'<rect x="{x}" y="{layout.legend_y}" width="10" height="10" fill="{escape(s.colour)}"/>')
        parts.append(f'<text x="{x + 14}" y="{layout.legend_y + 9}" font-size="11" {FONT}>{escape(s.label)}</text>')
    for pct in (0, 50, 100):
        y = top + height - height * pct / 100
        parts.append(f'<line x1="{left}" x2="{width - 20}" y1="{y}" y2="{y}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 8}" y="{y + 4}" font-size="10" text-anchor="end" {FONT}>{pct} %</text>')
    if not groups:
        parts.append(f'<text x="{left + 10}" y="{top + height / 2}" font-size="12" {FONT}>{escape(none)}</text>')
    for n, label in enumerate(groups):
        x0 = left + 10 + n * group
        for i, s in enumerate(series):
            share = s.shares[n]
            if share is None:
                continue
            h = height * share
            parts.append(
                f'<rect x="{x0 + i * bar}" y="{top + height - h:.1f}" width="{bar - 2}" height="{h:.1f}" fill="{escape(s.colour)}">'
                f"<title>{escape(s.label)}: {round(share * 100)} %</title></rect>"
            )
        parts.append(
            f'<text transform="translate({x0 + bar},{top + height + 12}) rotate(45)" font-size="10" {FONT}>{escape(label)}</text>'
        )
    y = top + height + 110  # under the rotated group labels
    for k, row in enumerate(table):
        yy = y + 22 * k
        parts.append(f'<text x="{left - 50}" y="{yy}" font-size="10" font-weight="bold" {FONT}>{escape(row.label)}</text>')
        for n, v in enumerate(row.values):
            if v is not None:
                parts.append(f'<text x="{left + 10 + n * group}" y="{yy + 11}" font-size="10" {FONT}>{escape(str(v))}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
