"""The glossary: one term per concept and language, the names of roles, one form of address.
Plain Python: safe to import from a domain.

The data lives in ``shared/glossary.json`` (a translator or a domain expert edits it without touching
code); ``docs/glossary.md`` is generated from it (``python -m shared.glossary write``). Every text
meant for a person (messages, the printable plan, the charts, the error texts) is checked against it
by ``problems`` in tests/unit/test_glossary.py.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

LANGUAGES = ("fi", "sv", "en")
DATA = Path(__file__).with_name("glossary.json")
DOC = Path(__file__).parents[1] / "docs" / "glossary.md"


@dataclass(frozen=True)
class Term:
    concept: str
    note: str
    term: dict[str, str]  # language -> the term we use
    forms: dict[str, re.Pattern[str]]  # language -> its inflected forms
    avoid: dict[str, tuple[re.Pattern[str], ...]]  # language -> variants we do not use


def _word(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!\w){pattern}(?!\w)", re.IGNORECASE)


@cache
def _data() -> dict[str, Any]:
    return dict(json.loads(DATA.read_text(encoding="utf-8")))


@cache
def terms() -> tuple[Term, ...]:
    out = []
    for t in _data()["terms"]:
        out.append(
            Term(
                concept=t["concept"],
                note=t["note"],
                term={lang: t[lang]["term"] for lang in LANGUAGES},
                forms={lang: _word(t[lang]["forms"]) for lang in LANGUAGES},
                avoid={lang: tuple(_word(a) for a in t[lang]["avoid"]) for lang in LANGUAGES},
            )
        )
    return tuple(out)


@cache
def _forbidden_address(language: str) -> tuple[re.Pattern[str], ...]:
    return tuple(_word(re.escape(w)) for w in _data()["address"][language]["forbidden"])


def roles() -> dict[str, dict[str, str]]:
    """Role code -> language -> the role's name (e.g. school_social_worker -> koulukuraattori)."""
    return dict(_data()["roles"])


def role_name(code: str, language: str) -> str:
    """The role's name in the language. An unknown code gives a neutral word, never the code itself:
    a role code is an internal id and does not appear in a text meant for a person."""
    names = _data()["roles"].get(code)
    if names is None:
        return term("worker", language if language in ("fi", "sv", "en") else "fi")
    return str(names.get(language) or names["fi"])


def term(concept: str, language: str) -> str:
    for t in terms():
        if t.concept == concept:
            return t.term[language]
    raise KeyError(concept)


def problems(text: str, language: str) -> list[str]:
    """What in ``text`` breaks the glossary: a variant we do not use, or a form of address we do
    not use. Empty when the text holds."""
    out = []
    for t in terms():
        for pattern in t.avoid.get(language, ()):
            m = pattern.search(text)
            if m:
                out.append(f"{t.concept}: '{m.group(0)}' (we write '{t.term[language]}')")
    for pattern in _forbidden_address(language):
        m = pattern.search(text)
        if m:
            out.append(f"address: '{m.group(0)}' ({_data()['address'][language]['choice']})")
    return out


def _without_role_names(text: str, language: str) -> str:
    """The text with the glossary's role names taken out (a title such as 'school social worker' is
    a name, not a use of the concept 'worker')."""
    for names in sorted(_data()["roles"].values(), key=lambda n: -len(n.get(language, ""))):
        text = re.sub(re.escape(names[language]), " ", text, flags=re.IGNORECASE)
    return text


def missing_terms(source_en: str, text: str, language: str) -> list[str]:
    """Concepts the English text names whose term does not appear in its translation."""
    source_en, text = _without_role_names(source_en, "en"), _without_role_names(text, language)
    return [
        f"{t.concept}: no '{t.term[language]}'"
        for t in terms()
        if t.forms["en"].search(source_en) and not t.forms[language].search(text)
    ]


def markdown() -> str:
    d = _data()
    lines = [
        "# Glossary (sanasto, ordlista)",
        "",
        "Generated from `shared/glossary.json` by `python -m shared.glossary write`; do not edit by hand.",
        "Messages, the printable plan, the charts and the error texts use these terms and nothing else",
        "for these concepts (tests/unit/test_glossary.py).",
        "",
        "## Terms",
        "",
        "| concept | fi | sv | en | not used |",
        "|---|---|---|---|---|",
    ]
    for t in d["terms"]:
        avoid = "; ".join(f"{lang}: `{a}`" for lang in LANGUAGES for a in t[lang]["avoid"])
        lines.append(f"| {t['concept']} ({t['note']}) | {t['fi']['term']} | {t['sv']['term']} | {t['en']['term']} | {avoid} |")
    lines += ["", "## Roles", "", "| code (never shown to people) | fi | sv | en |", "|---|---|---|---|"]
    for code, names in d["roles"].items():
        lines.append(f"| `{code}` | {names['fi']} | {names['sv']} | {names['en']} |")
    lines += ["", "## Form of address", "", "| language | we use | never |", "|---|---|---|"]
    for lang in LANGUAGES:
        a = d["address"][lang]
        lines.append(f"| {lang} | {a['choice']} | {', '.join(a['forbidden'])} |")
    lines += [
        "",
        "## Dates and times",
        "",
        "Always Europe/Helsinki time, as people in Finland write them (`shared/datetext.py`):",
        "",
        "| fi | sv | en |",
        "|---|---|---|",
        "| ke 9.12.2026 klo 12.00 | ons 9.12.2026 kl. 12.00 | Wed 9 Dec 2026 at 12:00 |",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv[:1] == ["write"]:
        DOC.write_text(markdown(), encoding="utf-8")
        print(f"wrote {DOC}")
        return 0
    stale = not DOC.exists() or DOC.read_text(encoding="utf-8") != markdown()
    print("docs/glossary.md is stale: python -m shared.glossary write" if stale else "docs/glossary.md is current")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
