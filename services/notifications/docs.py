"""Render the who-is-told-what table (domain.RULES) into services/notifications/README.md.

Run ``python -m services.notifications.docs``; a unit test checks the README matches the code.
"""

from __future__ import annotations

from pathlib import Path

from .domain import rules_markdown

README = Path(__file__).with_name("README.md")
BEGIN, END = "<!-- rules:begin -->", "<!-- rules:end -->"


def write() -> None:
    text = README.read_text(encoding="utf-8")
    a, b = text.index(BEGIN) + len(BEGIN), text.index(END)
    README.write_text(text[:a] + "\n" + rules_markdown() + "\n" + text[b:], encoding="utf-8")


if __name__ == "__main__":
    write()
