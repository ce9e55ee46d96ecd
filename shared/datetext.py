"""Dates and times as people in Finland write them, always in Europe/Helsinki time. Plain Python.

fi ``ke 9.12.2026 klo 12.00``, sv ``ons 9.12.2026 kl. 12.00``, en ``Wed 9 Dec 2026 at 12:00``. The
weekday's abbreviation comes from Babel (CLDR), the rest is the written convention itself, so a CLDR
release cannot change it under us.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import lru_cache

from babel.dates import format_date

from shared.clock import HELSINKI

LOCALES = {"fi": "fi_FI", "sv": "sv_FI", "en": "en_GB"}


@lru_cache(maxsize=1024)  # Babel costs more than the rest of a message; the same days come round
def _weekday(day: date, language: str) -> str:
    return format_date(day, "EEE", locale=LOCALES[language])


@lru_cache(maxsize=1024)
def _month(day: date, language: str) -> str:
    return format_date(day, "MMM", locale=LOCALES[language]).rstrip(".")


def day_text(day: date | str, language: str) -> str:
    """A date: ``ke 9.12.2026`` / ``ons 9.12.2026`` / ``Wed 9 Dec 2026``."""
    d = date.fromisoformat(day) if isinstance(day, str) else day
    language = language if language in LOCALES else "fi"
    if language == "en":
        return f"{_weekday(d, 'en')} {d.day} {_month(d, 'en')} {d.year}"
    return f"{_weekday(d, language)} {d.day}.{d.month}.{d.year}"


def when_text(moment: datetime | str, language: str) -> str:
    """A moment in Helsinki time: ``ke 9.12.2026 klo 12.00`` / ``ons 9.12.2026 kl. 12.00`` /
    ``Wed 9 Dec 2026 at 12:00``. A naive datetime is taken as UTC (we store UTC)."""
    v = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    if v.tzinfo is None:
        v = v.replace(tzinfo=UTC)
    t = v.astimezone(HELSINKI)
    language = language if language in LOCALES else "fi"
    d = day_text(t.date(), language)
    if language == "fi":
        return f"{d} klo {t.hour}.{t.minute:02d}"
    if language == "sv":
        return f"{d} kl. {t.hour}.{t.minute:02d}"
    return f"{d} at {t.hour}:{t.minute:02d}"


def time_text(moment: datetime | str, language: str) -> str:
    """Only the time of day in Helsinki: ``12.00`` (fi, sv) / ``12:00`` (en)."""
    v = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    t = v.astimezone(HELSINKI)
    return f"{t.hour}:{t.minute:02d}" if language == "en" else f"{t.hour}.{t.minute:02d}"
