"""Finnish working days, for statutory deadlines and meeting slots. Pure computation, no I/O.

Working days exclude Saturdays, Sundays and Finnish public holidays as the ``holidays`` package
lists them for Finland (including Midsummer Eve and Christmas Eve, which are non-working days in
public services). Dates are calendar dates in Europe/Helsinki.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache

import holidays

from shared.clock import HELSINKI, local


@lru_cache(maxsize=64)
def _holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("FI", years=[year]).keys())


def is_working_day(d: date) -> bool:
    return d.weekday() < 5 and d not in _holidays(d.year)


def add_working_days(start: date, n: int) -> date:
    """The n-th working day after ``start`` (``start`` itself not counted), e.g. the 7-working-day
    decision deadline for a referral received on ``start``."""
    if n < 0:
        raise ValueError("n must be >= 0")
    d = start
    while n > 0:
        d += timedelta(days=1)
        if is_working_day(d):
            n -= 1
    return d


def working_days_between(start: date, end: date) -> int:
    """Working days after ``start`` up to and including ``end`` (0 when end <= start)."""
    count, d = 0, start
    while d < end:
        d += timedelta(days=1)
        if is_working_day(d):
            count += 1
    return count


def helsinki_date(dt: datetime) -> date:
    return local(dt).date()


def end_of_day(d: date) -> datetime:
    """The last moment of a Helsinki calendar day, as an aware datetime (for deadline timers)."""
    return datetime.combine(d, time(23, 59, 59), tzinfo=HELSINKI)
