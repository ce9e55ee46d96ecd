"""The referral statistics read model: months are Helsinki months, whatever the UTC hour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.referral.projections import ReferralStatistics, _helsinki_month
from shared.clock import local


@pytest.mark.parametrize(
    ("received_at", "month"),
    [
        ("2026-10-31T21:59:59.999999Z", "2026-10"),  # 23:59:59 in Helsinki (UTC+2 after the DST end)
        ("2026-10-31T22:00:00Z", "2026-11"),
        ("2026-03-31T20:59:59+00:00", "2026-03"),  # summer time (UTC+3)
        ("2026-03-31T21:00:00+00:00", "2026-04"),
        ("2026-12-31T22:00:00.5Z", "2027-01"),  # New Year in Helsinki before it is in UTC
        ("2026-03-31T23:30:00+02:00", "2026-04"),  # another offset: parsed in full
    ],
)
def test_month_is_the_helsinki_month(received_at: str, month: str) -> None:
    assert _helsinki_month(received_at) == month


def test_month_by_the_hour_matches_a_full_conversion_over_years() -> None:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    for minutes in range(0, 60 * 24 * 365 * 7, 7 * 60 + 13):  # every 7 h 13 min for seven years
        t = start + timedelta(minutes=minutes, microseconds=minutes % 1_000_000)
        for text in (t.isoformat(), t.isoformat().replace("+00:00", "Z")):
            assert _helsinki_month(text) == local(t).strftime("%Y-%m")


def test_counts_per_municipality_month_and_channel() -> None:
    stats = ReferralStatistics()
    for at, municipality, channel, statutory, urgent in [
        ("2026-10-31T21:30:00Z", "Porvoo", "phone", True, False),
        ("2026-10-31T22:30:00Z", "Porvoo", "phone", False, True),
        ("2026-11-02T08:00:00Z", "Porvoo", "e_contact", True, True),
    ]:
        stats.apply(
            {"received_at": at, "municipality": municipality, "channel": channel, "statutory": statutory, "urgent": urgent}
        )
    assert stats.rows() == [
        {"municipality": "Porvoo", "month": "2026-10", "channel": "phone", "referrals": 1},
        {"municipality": "Porvoo", "month": "2026-11", "channel": "e_contact", "referrals": 1},
        {"municipality": "Porvoo", "month": "2026-11", "channel": "phone", "referrals": 1},
    ]
    assert stats.statutory == {("Porvoo", "2026-10"): 1, ("Porvoo", "2026-11"): 1}
    assert stats.urgent == {("Porvoo", "2026-11"): 2}
    assert stats.events == 3
