"""Time: stored in UTC, shown in Europe/Helsinki. Tests replace the clock instead of sleeping."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
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


def local_month(dt: datetime) -> str:
    """The Helsinki month (``YYYY-MM``) an aware time falls in, as ``local(dt).strftime("%Y-%m")``.

    Why not that: the statistics ask it of every meeting of the years they cover, and the time-zone
    conversion and formatting cost ≈ 4 µs each (bench/README.md). Helsinki's offset is whole hours
    and changes on whole UTC hours, so the local month can change within a UTC day only at one of
    its hours: a day whose first and last hour fall in the same local month is looked up whole."""
    u = utc(dt)
    first, last = _local_months_of_utc_day(u.year, u.month, u.day)
    return first if first == last else u.astimezone(HELSINKI).strftime("%Y-%m")


@lru_cache(maxsize=8192)  # ≈ 22 years of days
def _local_months_of_utc_day(year: int, month: int, day: int) -> tuple[str, str]:
    """The local months of a UTC day's first and last hour ("" for an hour past the calendar's end,
    on 9999-12-31: then each time of that day is converted as it is)."""
    months = []
    for hour in (0, 23):
        try:
            months.append(datetime(year, month, day, hour, tzinfo=UTC).astimezone(HELSINKI).strftime("%Y-%m"))
        except OverflowError:
            months.append("")
    return months[0], months[1]
