"""One voice per language: every message template rendered in fi, sv and en for a realistic invented
case names people and places and no internal id, and every text meant for a person (messages, the
printable plan, the charts, the error texts) holds the glossary (docs/glossary.md)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract

from services.meetings import joint_statistics
from services.notifications.templates import LOCALE_DIR, TEMPLATES, catalogue_texts, render
from services.plans import charts, printable
from services.referral import statistics
from shared import errors, glossary
from shared.catalogue import read
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


# Every gettext catalogue (shared/catalogue.py) and the files whose N_-marked texts it holds (Makefile: messages).
CATALOGUES = {
    "messages": (LOCALE_DIR, ["services/notifications/templates.py", "services/notifications/plan_copy.py"]),
    "plans": (printable.CATALOGUE.directory, ["services/plans/printable.py", "services/plans/charts.py"]),
    "referral": (statistics.CATALOGUE.directory, ["services/referral/statistics.py"]),
    "meetings": (joint_statistics.CATALOGUE.directory, ["services/meetings/joint_statistics.py"]),
    "errors": (
        errors.CATALOGUE.directory,
        ["shared/errors.py", "services/meetings/domain.py", "services/plans/domain.py", "services/referral/handlers.py"],
    ),
}


def _marked(files: list[str]) -> set[str]:
    out: set[str] = set()
    for name in files:
        with (ROOT / name).open("rb") as f:
            out |= {str(m[1]) for m in extract("python", f, keywords={"N_": None})}
    return out


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("domain", sorted(CATALOGUES))
def test_every_catalogue_holds_every_marked_text_translated_and_in_the_glossary(domain: str, language: str) -> None:
    directory, files = CATALOGUES[domain]
    catalogue = read(directory, domain, language)
    ids = {m.id for m in catalogue if m.id}
    assert ids == _marked(files), "run: make messages (docs/translations.md)"
    for m in catalogue:
        if not m.id:
            continue
        text = str(m.string or m.id)
        if language != "en":  # English is the source language
            assert m.string and not m.fuzzy, m.id
            # the same placeholders, so no text fails at render time
            assert sorted(re.findall(r"%\(\w+\)s", str(m.id))) == sorted(re.findall(r"%\(\w+\)s", text)), m.id
            assert glossary.missing_terms(str(m.id), text, language) == [], (m.id, text)
        assert glossary.problems(text, language) == [], text


def test_the_messages_catalogue_holds_what_the_templates_render() -> None:
    assert set(catalogue_texts()) <= _marked(CATALOGUES["messages"][1])


def _printable_texts(language: str) -> list[str]:
    return list(printable.labels(language).values())


def _chart_texts(language: str) -> list[str]:
    plans = [charts.TITLE, *charts.SOURCES.values(), *charts.AREA_LABELS.values()]
    return (
        [charts.translated(language, t) for t in plans]
        + list(statistics.labels(language).values())
        + list(joint_statistics.labels(language).values())
        + list(joint_statistics.stage_labels(language).values())
    )


def _error_texts(language: str) -> list[str]:
    return [getattr(e, language) for e in ERRORS.values()]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("source", [_printable_texts, _chart_texts, _error_texts], ids=["printable plan", "charts", "errors"])
def test_the_printable_plan_the_charts_and_the_error_texts_come_from_the_catalogues_and_hold_the_glossary(
    source: Any, language: str
) -> None:
    texts = source(language)
    if language != "en":  # translated: not one English source text left
        assert not set(texts) & set(source("en")) - {"Version", "Organisation"}, texts
    bad = {t: glossary.problems(t, language) for t in texts}
    assert {t: p for t, p in bad.items() if p} == {}


def _plan_content() -> dict[str, Any]:
    """A realistic plan version: the close worker is the responsible worker, from the roster."""
    return {
        "version": 2,
        "recorded_at": "2026-12-09T11:20:00+00:00",
        "changes_needed": ["Aamut sujuvat ilman riitaa", "Eetu jaksaa koulupäivän"],
        "actions": {
            "home": [{"what": "Iltarutiini ja ruutuaika sovitaan yhdessä", "who": "Maija Testinen", "where": "kotona"}],
            "everyday_environment": [{"what": "Tukijakso koulussa", "who": "Mikko Peltonen", "where": "Kevätkummun koulu"}],
            "elsewhere": [],
        },
        "worker_contacts_family": "Anna Virtanen soittaa kahden viikon välein.",
        "family_contacts_worker": "Perhe soittaa tai lähettää sähköpostia arkisin.",
        "responsible_workers": [
            {
                "worker_id": "staff-close-1",
                "name": CONVENER["name"],
                "title": CONVENER["title"],
                "role": "close_worker",
                "organisation": CONVENER["unit"],
                "contact": {"phone": CONVENER["phone"], "email": CONVENER["email"]},
            }
        ],
        "next_contact_at": "2026-12-16T08:00:00+00:00",
    }


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_printable_plan_names_people_and_roles_and_shows_no_internal_id(language: str) -> None:
    page = printable.render(_plan_content(), language, shared_roles=["school_social_worker", "psychologist"])
    text = re.sub(r"<[^>]+>", "\n", page.split("<body>", 1)[1])
    for internal in (*ROOM_IDS, *PERSON_IDS, *ROLE_CODES):
        assert not re.search(rf"(?<![\w-]){re.escape(internal)}(?![\w-])", text), (internal, text)
    title = CONVENER["title"].get(language) or glossary.role_name("close_worker", language)
    for expected in (
        "Anna Virtanen",
        title,
        CONVENER["unit"],
        "040 7654321",
        glossary.role_name("school_social_worker", language),
    ):
        assert expected in text, (expected, text)
    assert {"fi": "ke 16.12.2026 klo 10.00", "sv": "ons 16.12.2026 kl. 10.00", "en": "Wed 16 Dec 2026 at 10:00"}[language] in text
    assert glossary.problems(text, language) == [], text


def test_every_role_in_the_roster_has_a_name_in_every_language() -> None:
    names = glossary.roles()
    for p in ROSTER["professionals"]:
        for role in p["roles"]:
            assert set(names[role]) == set(LANGUAGES), role


def test_an_unknown_role_is_named_by_the_glossarys_word_for_a_worker_never_by_its_code() -> None:
    assert [glossary.role_name("no_such_role", lang) for lang in (*LANGUAGES, "de")] == [
        "työntekijä",
        "arbetstagare",
        "worker",
        "työntekijä",
    ]


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
