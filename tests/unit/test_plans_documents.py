"""The family's printable plan (fi/sv/en) and the wellbeing star pictures (SVG, pure Python)."""

import re
from datetime import UTC, datetime, timedelta
from uuid import uuid4
from xml.etree import ElementTree

import pytest

from services.plans import charts, printable
from services.plans.domain import STAR_AREAS, Measurement, agree

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def content() -> dict:
    p = agree(
        case_id=uuid4(),
        meeting_id=None,
        recorded_by="staff-1",
        now=NOW,
        changes_needed=["Mornings <without> conflict"],
        actions={
            "home": [{"what": "Picture schedule", "who": "parent", "where": None}],
            "everyday_environment": [{"what": "Quiet corner", "who": "ECEC teacher", "where": "Päiväkoti Esimerkki"}],
            "elsewhere": [],
        },
        worker_contacts_family="Phone call on Mondays",
        family_contacts_worker="Text message",
        responsible_workers=[
            {
                "worker_id": "staff-close-1",
                "organisation": "City family work",
                "public_service": True,
                "name": "Liisa Lähityöntekijä",
                "role": "social_counsellor",
                "contact": {"contact_id": "staff-close-1", "role": "rw", "phone": "+358401234567"},
            }
        ],
        next_contact_at=datetime(2026, 12, 7, 8, 0, tzinfo=UTC),
        family_contacts=[],
    )
    return p.snapshot()


@pytest.mark.parametrize(
    ("lang", "title", "next_label", "when", "worker", "party"),
    [
        (
            "fi",
            "Yhteinen suunnitelma",
            "Seuraava sovittu yhteydenotto",
            "ma 7.12.2026 klo 10.00",
            "sosiaaliohjaaja",
            "koulukuraattori",
        ),
        ("sv", "Gemensam plan", "Nästa överenskomna kontakt", "mån 7.12.2026 kl. 10.00", "socialhandledare", "skolkurator"),
        (
            "en",
            "Joint plan",
            "Next agreed follow-up contact",
            "Mon 7 Dec 2026 at 10:00",
            "social counsellor",
            "school social worker",
        ),
    ],
)
def test_printable_plan_in_the_familys_language(
    lang: str, title: str, next_label: str, when: str, worker: str, party: str
) -> None:
    doc = printable.render(content(), lang, shared_roles=["school_social_worker"])
    assert doc.startswith("<!DOCTYPE html>") and f'<html lang="{lang}">' in doc
    assert title in doc and next_label in doc
    assert when in doc, "next contact shown in Helsinki time"
    assert "Picture schedule" in doc and "Päiväkoti Esimerkki" in doc
    # The responsible worker by name and title, the phone as written in Finland; no ids, no role codes.
    assert f"Liisa Lähityöntekijä, {worker}" in doc and "040 1234567" in doc and party in doc
    for internal in ("staff-close-1", "school_social_worker", "social_counsellor", "+358401234567"):
        assert internal not in doc
    assert "&lt;without&gt;" in doc and "<without>" not in doc, "values are escaped"
    assert "@media print" in doc


def test_printable_lists_every_frame_part_even_empty_ones() -> None:
    doc = printable.render(content(), "fi")
    for label in (
        "Kotona",
        "Lapsen arjen ympäristössä",
        "Muualla",
        "Ei sovittuja toimia.",
        "Vastuutyöntekijä",
        "Työntekijä on yhteydessä perheeseen",
        "Perhe on yhteydessä työntekijään",
    ):
        assert label in doc


def measurements() -> list[Measurement]:
    first = dict.fromkeys(STAR_AREAS, 3)
    return [
        Measurement(NOW, "meeting", first),
        Measurement(NOW + timedelta(days=30), "followup", {**first, "child_self_view": 6}),
        Measurement(NOW + timedelta(days=60), "followup", {a: 7 for a in STAR_AREAS}),
    ]


@pytest.mark.parametrize("kind", ["radar", "lines"])
@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
def test_charts_are_valid_svg_with_the_star_areas(kind: str, lang: str) -> None:
    svg = (charts.radar if kind == "radar" else charts.lines)(measurements(), lang)
    root = ElementTree.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert {"fi": "Hyvinvoinnin tähti", "sv": "Välmåendestjärnan", "en": "Wellbeing star"}[lang] in svg
    text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert {"fi": "Lapsen", "sv": "Barnets", "en": "Child's"}[lang] in text
    assert "23.11.2026" in text and "22.1.2027" in text


def test_radar_draws_one_polygon_per_measurement_with_the_latest_highlighted() -> None:
    root = ElementTree.fromstring(charts.radar(measurements(), "en"))
    polys = [p for p in root.iter("{http://www.w3.org/2000/svg}polygon") if p.get("fill") != "none"]
    assert len(polys) == 3
    assert polys[-1].get("stroke") == charts.LATEST


def test_a_single_partial_measurement_still_draws() -> None:
    svg = charts.lines([Measurement(NOW, "meeting", {"child_self_view": 5})], "fi")
    assert ElementTree.fromstring(svg) is not None and ">5<" in svg
    assert ElementTree.fromstring(charts.radar([Measurement(NOW, "meeting", {"child_self_view": 5})], "fi")) is not None


@pytest.mark.parametrize("lang", ["fi", "sv", "en"])
def test_printable_plan_as_a_one_page_pdf_with_its_fonts_embedded(lang: str) -> None:
    from services.plans.printable_pdf import render_pdf

    pdf = render_pdf(content(), lang, shared_roles=["school_social_worker"])
    assert pdf.startswith(b"%PDF-1.") and pdf.rstrip().endswith(b"%%EOF")
    assert len(re.findall(rb"/Type /Page\b(?!s)", pdf)) == 1, "one A4 page"
    assert b"/FontFile2" in pdf, "the TrueType font travels with the document: it prints the same everywhere"
    assert len(pdf) < 200_000
