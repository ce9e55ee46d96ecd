"""gettext catalogues (``.po`` files edited by translators) read with Babel. Plain Python: the only
I/O is reading a catalogue once, the first time a text of its language is asked for.

Every text meant for a person is written in English in the code, marked with ``N_`` for ``pybabel
extract`` (``make messages``), and translated in ``<locale dir>/<fi,sv,en>/LC_MESSAGES/<domain>.po``.
The catalogues are compiled in memory, so no compiled ``.mo`` file is committed or built at install.
English is the source language: its catalogue may override a source text, an empty entry keeps it.
Catalogues in the project (docs/translations.md):

* ``messages``: services/notifications/locale (the messages to families and workers);
* ``plans``: services/plans/locale (the printable plan and the wellbeing-star charts);
* ``referral``: services/referral/locale (the statutory-deadline chart);
* ``meetings``: services/meetings/locale (the joint-work statistics chart);
* ``errors``: shared/locale (the error registry and the refusals' specific texts).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LANGUAGES = ("fi", "sv", "en")


def N_(message: str) -> str:  # noqa: N802 - the gettext convention pybabel extract looks for
    """Marks a source text for the catalogue; translated when it is shown."""
    return message


@cache
def _translations(directory: Path, domain: str, language: str) -> NullTranslations:
    po = directory / language / "LC_MESSAGES" / f"{domain}.po"
    if not po.exists():
        return NullTranslations()
    buf = io.BytesIO()
    write_mo(buf, read(directory, domain, language))
    buf.seek(0)
    return Translations(buf, domain=domain)


def read(directory: Path, domain: str, language: str) -> Catalog:
    """The language's catalogue as Babel reads it (for the tests and the translator's tools)."""
    with (directory / language / "LC_MESSAGES" / f"{domain}.po").open("rb") as f:
        return read_po(f, locale=language)


@dataclass(frozen=True)
class Catalogue:
    """One gettext domain: ``gettext(language, source)`` is the source text in the language, or the
    source itself when the language has no catalogue or no translation of it."""

    directory: Path
    domain: str

    def gettext(self, language: str, message: str) -> str:
        return _translations(self.directory, self.domain, language).gettext(message)

    def by_language(self, message: str) -> dict[str, str]:
        """{fi, sv, en} -> the text in each language."""
        return {language: self.gettext(language, message) for language in LANGUAGES}

    def read(self, language: str) -> Catalog:
        return read(self.directory, self.domain, language)
