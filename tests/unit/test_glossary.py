"""One voice per language: every message template rendered in fi, sv and en for a realistic invented
case names people and places and no internal id, and every text meant for a person (messages, the
printable plan, the charts, the error texts) holds the glossary (docs/glossary.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po

from services.meetings import joint_statistics
from services.notifications.templates import LOCALE_DIR, TEMPLATES, catalogue_texts, render
from services.plans import charts, printable
from services.referral import statistics
from shared import glossary
from shared.errors import ERRORS

ROOT = Path(__file__).parents[2]
ROSTER = json.loads((ROOT / "services" / "meetings" / "roster.json").read_text(encoding="utf-8"))
LANGUAGES = ("fi", "sv", "en")


def _person(pid: str) -> dict[str, Any]:
    p = next(x for x in ROSTER["professionals"] if x["professional_id"] == pid)
    role = next((r for r in p["roles"] if r != "close_worker"), p["roles"][0])
    c = p["contact"]
    return {
        "name": p["name"],
        "title": p.get("title", {}),
        "role": role,
        "unit": p["unit"],
        "phone": c["phone"],
        "email": c["email"],
    }


ROOM = next(r for r in ROSTER["rooms"] if r["room_id"] == "pv-neuvotteluhuone-1")
CONVENER, PSYCHOLOGIST, CURATOR = _person("staff-close-1"), _person("pv-psy-1"), _person("pv-ssw-1")

# An invented Porvoo case: the close worker convenes the psychologist and the school social worker in
# the family centre's meeting room, the interpreter booked; the close worker is the responsible worker.
CASE = {
    "case_ref": "0a1b2c3d",
    "meeting_id": "0f6b1c1e-4d1c-4b8e-9a55-0c1d2e3f4a5b",
    "room": ROOM["room_id"],
    "received_at": "2026-12-01T07:15:00+00:00",
    "municipality": "Porvoo",
    "repeat_count": 2,
    "deadline": "assessment_decision",
    "due_by": "2026-12-10",
    "starts_at": "2026-12-09T10:00:00+00:00",
    "ends_at": "2026-12-09T11:30:00+00:00",
    "place": {"name": ROOM["location"], "names": ROOM.get("names", {}), "address": ROOM["address"]},
    "convener": CONVENER,
    "participants": [PSYCHOLOGIST, CURATOR],
    "contacts": [CONVENER],
    "interpreter_needed": True,
    "first_assessment_meeting": True,
    "plan_version": 2,
    "due_at": "2026-12-16T08:00:00+00:00",
    "outcome": "services_started",
    "start_by": "2026-12-14",
    # plan.handed_over: the new responsible worker's organisation and work contact
    "organisation": "Porvoon perhetyö",
    "phone": "+358401234567",
    "email": "perhetyo@porvoo.example",
}
ROOM_IDS = [r["room_id"] for r in ROSTER["rooms"]]
PERSON_IDS = [p["professional_id"] for p in ROSTER["professionals"]] + ["guardian-1", "referrer-1"]
ROLE_CODES = [code for code in glossary.roles() if "_" in code]  # one-word codes (child, ...) are also words
WHEN = {"fi": "ke 9.12.2026 klo 12.00–13.30", "sv": "ons 9.12.2026 kl. 12.00–13.30", "en": "Wed 9 Dec 2026 at 12:00–13:30"}
MEETINGS = ("meeting_invitation", "meeting_rescheduled")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_names_people_and_places_and_no_internal_id(template: str, language: str) -> None:
    subject, body = render(template, language, CASE, "family")
    text = f"{subject}\n{body}"
    for internal in (*ROOM_IDS, *PERSON_IDS, *ROLE_CODES, CASE["meeting_id"]):
        assert not re.search(rf"(?<![\w-]){re.escape(internal)}(?![\w-])", text), (internal, text)
    if template in MEETINGS:
        place = ROOM.get("names", {}).get(language) or ROOM["location"]
        for expected in (WHEN[language], place, ROOM["address"], "Anna Virtanen", "Johanna Lindqvist", "Mikko Peltonen"):
            assert expected in body, (expected, body)
        assert glossary.role_name("school_social_worker", language) in body
    if template.startswith(("meeting_", "plan_", "followup_")):
        assert "Anna Virtanen" in body and ("040\u00a07654321" in body or "+358\u00a040\u00a07654321" in body), body
    assert glossary.problems(text, language) == [], text


@pytest.mark.parametrize("language", ("fi", "sv"))
@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_translation_uses_the_glossary_term_where_the_english_names_the_concept(template: str, language: str) -> None:
    source = "\n".join(render(template, "en", CASE, "family"))
    text = "\n".join(render(template, language, CASE, "family"))
    assert glossary.missing_terms(source, text, language) == [], text


def test_the_text_to_a_worker_leaves_out_the_familys_contact_people() -> None:
    _, family = render("plan_agreed", "fi", CASE, "family")
    _, worker = render("plan_agreed", "fi", CASE, "staff")
    assert "Anna Virtanen" in family and "Anna Virtanen" not in worker


@pytest.mark.parametrize("language", ("fi", "sv", "en"))
def test_every_catalogue_holds_every_message_and_translates_it(language: str) -> None:
    with (LOCALE_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalogue = read_po(f, locale=language)
    ids = {m.id for m in catalogue if m.id}
    assert ids == set(catalogue_texts()), "run: make messages (docs/translations.md)"
    if language != "en":  # English is the source language
        untranslated = [m.id for m in catalogue if m.id and not m.string]
        assert untranslated == [], untranslated
        for m in catalogue:
            if m.id:  # the same placeholders, so no text fails at render time
                assert sorted(re.findall(r"%\(\w+\)s", str(m.id))) == sorted(re.findall(r"%\(\w+\)s", str(m.string))), m.id


def _printable_texts(language: str) -> list[str]:
    return list(printable.LABELS[language].values())


def _chart_texts(language: str) -> list[str]:
    return [
        charts.TITLES[language],
        *charts.SOURCES[language].values(),
        *charts.AREA_LABELS[language].values(),
        *joint_statistics.LABELS[language].values(),
        *joint_statistics.STAGE_LABELS[language].values(),
        *statistics.LABELS[language].values(),
    ]


def _error_texts(language: str) -> list[str]:
    return [getattr(e, language) for e in ERRORS.values()]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("source", [_printable_texts, _chart_texts, _error_texts], ids=["printable plan", "charts", "errors"])
def test_the_printable_plan_the_charts_and_the_error_texts_hold_the_glossary(source: Any, language: str) -> None:
    bad = {t: glossary.problems(t, language) for t in source(language)}
    assert {t: p for t, p in bad.items() if p} == {}


def test_every_role_in_the_roster_has_a_name_in_every_language() -> None:
    names = glossary.roles()
    for p in ROSTER["professionals"]:
        for role in p["roles"]:
            assert set(names[role]) == set(LANGUAGES), role


def test_the_glossary_document_is_generated_from_the_data() -> None:
    assert glossary.DOC.read_text(encoding="utf-8") == glossary.markdown(), "run: python -m shared.glossary write"


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("template", ["service_not_started", "responsible_worker_changed"])
def test_a_message_to_the_family_leaves_out_the_case_reference_that_a_worker_sees(template: str, language: str) -> None:
    _, family = render(template, language, CASE, "family")
    _, worker = render(template, language, CASE, "staff")
    assert CASE["case_ref"] not in family, family
    if template == "service_not_started":
        assert CASE["case_ref"] in worker and "14.12.2026" in family.replace("14 Dec 2026", "14.12.2026"), (family, worker)
