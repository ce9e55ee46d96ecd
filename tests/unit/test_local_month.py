"""``local_month``: the Helsinki month of a time, looked up by UTC day, equals the conversion's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.clock import local, local_month


def test_every_eleven_minutes_of_three_years_falls_in_the_month_the_conversion_gives() -> None:
    t, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2028, 1, 1, tzinfo=UTC)
    while t < end:
        assert local_month(t) == local(t).strftime("%Y-%m"), t
        t += timedelta(minutes=11)


@pytest.mark.parametrize(
    ("at", "month"),
    [
        (datetime(2026, 10, 31, 21, 59, 59, tzinfo=UTC), "2026-10"),  # 23:59:59 EET
        (datetime(2026, 10, 31, 22, 0, tzinfo=UTC), "2026-11"),  # midnight EET
        (datetime(2026, 6, 30, 20, 59, 59, tzinfo=UTC), "2026-06"),  # 23:59:59 EEST
        (datetime(2026, 6, 30, 21, 0, tzinfo=UTC), "2026-07"),  # midnight EEST
        (datetime(2026, 3, 29, 0, 59, tzinfo=UTC), "2026-03"),  # the hour before summer time
        (datetime(2026, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=2))), "2026-12"),  # an offset other than UTC
        (datetime(9999, 12, 31, 10, tzinfo=UTC), "9999-12"),  # the calendar's last day: no hour past its end is needed
    ],
)
def test_a_month_changes_at_helsinki_midnight_in_summer_and_winter(at: datetime, month: str) -> None:
    assert local_month(at) == month


def test_a_naive_time_is_refused_not_guessed() -> None:
    with pytest.raises(ValueError, match="naive"):
        local_month(datetime(2026, 1, 1))
