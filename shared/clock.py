"""Time: stored in UTC, shown in Europe/Helsinki. Tests replace the clock instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

HELSINKI = ZoneInfo("Europe/Helsinki")


class Clock:
    """The service's source of 'now'. A test swaps in a FixedClock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock(Clock):
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at

    def advance(self, **kwargs: float) -> None:
        from datetime import timedelta

        self.at = self.at + timedelta(**kwargs)


def utc(dt: datetime) -> datetime:
    """Normalise to an aware UTC datetime; a naive value is refused rather than guessed."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: a time zone is required")
    return dt.astimezone(UTC)


def local(dt: datetime) -> datetime:
    return utc(dt).astimezone(HELSINKI)
