"""The shared bar chart (shared/svgchart.py): well-formed SVG whatever the texts hold."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from shared.svgchart import Layout, Row, Series, bar_chart

LAYOUT = Layout(bar=10, gap=20, top=60, legend_y=34, legend_step=200, min_width=400, right=40, below=200)
SVG = "{http://www.w3.org/2000/svg}"


def test_a_bar_chart_escapes_its_labels() -> None:
    evil = "<b>&\"'"
    svg = bar_chart(evil, [Series(evil, "#123456", [0.5])], [evil], evil, LAYOUT, [Row(evil, [evil])])
    root = ET.fromstring(svg)  # parses: no text broke the markup
    assert "<b>" not in svg
    texts = [el.text for el in root.iter(f"{SVG}text")] + [el.text for el in root.iter(f"{SVG}title")]
    assert texts.count(evil) == 6  # the title, heading, legend, group label, table heading and value
    assert f"{evil}: 50 %" in texts


def test_a_bar_is_as_tall_as_its_share_and_a_missing_share_draws_none() -> None:
    svg = bar_chart("t", [Series("a", "#111111", [0.25, None]), Series("b", "#222222", [1.0, 0.0])], ["x", "y"], "-", LAYOUT)
    bars = [el for el in ET.fromstring(svg).iter(f"{SVG}rect") if el.find(f"{SVG}title") is not None]
    assert [(el.get("fill"), el.get("height")) for el in bars] == [("#111111", "55.0"), ("#222222", "220.0"), ("#222222", "0.0")]


def test_a_bar_chart_without_groups_says_so() -> None:
    svg = bar_chart("t", [Series("a", "#111111", [])], [], "No data", LAYOUT)
    assert ">No data</text>" in svg and ET.fromstring(svg).get("width") == "400"
