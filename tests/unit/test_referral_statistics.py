"""The referral channel statistics read model: months are Helsinki months, whatever the UTC hour; one
counter row per municipality, month and channel."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.referral.channel_statistics import ChannelStatistics, helsinki_month, increments, to_csv
from services.referral.projections import ReferralStatistics
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
def test_month_is_thehelsinki_month(received_at: str, month: str) -> None:
    assert helsinki_month(received_at) == month


def test_month_by_the_hour_matches_a_full_conversion_over_years() -> None:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    for minutes in range(0, 60 * 24 * 365 * 7, 7 * 60 + 13):  # every 7 h 13 min for seven years
        t = start + timedelta(minutes=minutes, microseconds=minutes % 1_000_000)
        for text in (t.isoformat(), t.isoformat().replace("+00:00", "Z")):
            assert helsinki_month(text) == local(t).strftime("%Y-%m")


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
        {"municipality": "Porvoo", "month": "2026-10", "channel": "phone", "referrals": 1, "statutory": 1, "urgent": 0},
        {"municipality": "Porvoo", "month": "2026-11", "channel": "e_contact", "referrals": 1, "statutory": 1, "urgent": 1},
        {"municipality": "Porvoo", "month": "2026-11", "channel": "phone", "referrals": 1, "statutory": 0, "urgent": 1},
    ]
    assert stats.events == 3


def test_counting_an_event_one_at_a_time_as_the_live_model_does_gives_the_rebuilds_counters() -> None:
    events = [
        {"received_at": "2026-10-31T21:30:00Z", "municipality": "Porvoo", "channel": "phone", "statutory": True, "urgent": False},
        {
            "received_at": "2026-10-31T21:40:00+00:00",
            "municipality": "Porvoo",
            "channel": "phone",
            "statutory": True,
            "urgent": True,
        },
        {
            "received_at": "2026-11-01T00:30:00+02:00",
            "municipality": "Loviisa",
            "channel": "phone",
            "statutory": False,
            "urgent": False,
        },
    ]
    live: dict[tuple[str, str, str], list[int]] = {}
    for ev in events:  # the live model: one upsert adding to the row per event
        key, statutory, urgent = increments(ev)
        n = live.setdefault(key, [0, 0, 0])
        n[0], n[1], n[2] = n[0] + 1, n[1] + statutory, n[2] + urgent
    built = ChannelStatistics()
    for ev in events:
        built.apply(ev)
    assert built.counts == live == {("Porvoo", "2026-10", "phone"): [2, 2, 1], ("Loviisa", "2026-11", "phone"): [1, 0, 0]}


def test_rows_filter_by_municipality_and_months_and_csv_has_a_header() -> None:
    model = ChannelStatistics(
        {
            ("Porvoo", "2026-10", "phone"): [2, 2, 1],
            ("Porvoo", "2026-12", "phone"): [1, 0, 0],
            ("Loviisa", "2026-11", "e_contact"): [3, 1, 0],
        }
    )
    assert [(r["municipality"], r["month"]) for r in model.rows("Porvoo", from_month="2026-11")] == [("Porvoo", "2026-12")]
    assert [r["month"] for r in model.rows(to_month="2026-11")] == ["2026-11", "2026-10"]
    assert (
        to_csv(model.rows("Loviisa"))
        == "municipality,month,channel,referrals,statutory,urgent\nLoviisa,2026-11,e_contact,3,1,0\n"
    )
