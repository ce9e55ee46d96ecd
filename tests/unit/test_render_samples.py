"""The pictures of the invitation e-mail (docs/messages) come from the documented command, from the
real templates and catalogues; the committed pages are the ones the command writes today."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.notifications import render_samples
from shared.glossary import roles


def test_the_committed_sample_pages_are_what_the_templates_render_today() -> None:
    params = render_samples.sample_case()
    for language in ("fi", "sv", "en"):
        committed = (render_samples.OUT / f"invitation-{language}.html").read_text(encoding="utf-8")
        assert committed == render_samples.email_html(language, params), "run: python -m services.notifications.render_samples"
        assert "pv-neuvotteluhuone-1" not in committed and "staff-close-1" not in committed
        assert not [code for code in roles() if "_" in code and code in committed]


@pytest.mark.skipif(render_samples.chromium() is None, reason="chromium not installed (apt-get install -y chromium)")
def test_the_command_photographs_the_invitation_in_every_language_with_headless_chromium(tmp_path: Path) -> None:
    assert render_samples.main([str(tmp_path)]) == 0
    for language in ("fi", "sv", "en"):
        png = tmp_path / f"invitation-{language}.png"
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, language  # a real picture, not an empty page
