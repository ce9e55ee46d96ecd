"""The reviewers' pictures (docs/samples) of the invitation e-mail and the printable plan, in fi, sv and
en, come from the documented command (``make samples``: python -m infra.samples), made by the real
templates, catalogues and printable page and photographed by headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infra import samples
from shared import glossary, screenshots

ROOM_IDS = ["pv-neuvotteluhuone-1"]
PERSON_IDS = ["staff-close-1", "pv-psy-1", "pv-ssw-1"]
ROLE_CODES = [code for code in glossary.roles() if "_" in code]
NAMES = ("Anna Virtanen", "Porvoon varhaiskasvatus")
PLACES = {
    "fi": "Porvoon perhekeskus, neuvotteluhuone Pihlaja",
    "sv": "Borgå familjecenter, mötesrummet Rönn",
    "en": "Porvoon perhekeskus",
}


def _text(page: str) -> str:
    return re.sub(r"<[^>]+>", "\n", page.split("<body>", 1)[1])


def test_the_committed_sample_pages_are_what_the_templates_and_the_plan_render_today() -> None:
    for name, page in samples.pages().items():
        committed = (samples.OUT / f"{name}.html").read_text(encoding="utf-8")
        assert committed == page, f"{name}: run make samples (python -m infra.samples)"


@pytest.mark.parametrize("language", samples.LANGUAGES)
def test_each_sample_names_people_and_places_in_its_language_and_no_internal_id(language: str) -> None:
    pages = samples.pages()
    for kind in ("invitation", "plan"):
        text = _text(pages[f"{kind}-{language}"])
        for internal in (*ROOM_IDS, *PERSON_IDS, *ROLE_CODES, "+358407654321"):
            assert not re.search(rf"(?<![\w-]){re.escape(internal)}(?![\w-])", text), (kind, internal)
        for expected in NAMES:
            assert expected in text, (kind, expected)
        assert glossary.problems(text, language) == [], (kind, text)
    assert PLACES[language] in _text(pages[f"invitation-{language}"])
    assert glossary.role_name("school_social_worker", language) in _text(pages[f"plan-{language}"])


def test_the_committed_pictures_are_real_images_of_the_window_the_command_photographs() -> None:
    for name in samples.pages():
        png = samples.OUT / f"{name}.png"
        assert screenshots.png_size(png) == samples.SIZES[name.split("-")[0]], name
        assert png.stat().st_size > 20_000, f"{name}: an empty page? run make samples"


@pytest.mark.skipif(screenshots.chromium() is None, reason=f"chromium not installed: {screenshots.INSTALL}")
def test_the_command_photographs_the_invitation_and_the_plan_in_every_language_with_headless_chromium(tmp_path: Path) -> None:
    assert samples.main([str(tmp_path)]) == 0
    for name in samples.pages():
        png = tmp_path / f"{name}.png"
        assert screenshots.png_size(png) == samples.SIZES[name.split("-")[0]], name
        assert png.stat().st_size > 20_000, name  # a real picture with text, not an empty page
        assert (tmp_path / f"{name}.html").read_text(encoding="utf-8") == (samples.OUT / f"{name}.html").read_text(
            encoding="utf-8"
        )
