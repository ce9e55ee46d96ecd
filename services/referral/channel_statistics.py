"""Referrals per municipality, month (Helsinki) and channel, and how many of them were statutory or
urgent (yhteydenotot kunnittain, kuukausittain ja kanavittain). Plain Python, no I/O.

One counter row per municipality, month and channel, kept from ``referral.received`` by the referral
service (the live model, services/referral/handlers.py) or folded from the REFERRAL stream (a rebuild,
``infra.ops rebuild referral-statistics``, services/referral/projections.py). Both count an event
with :func:`increments`, so a rebuild matches the live model exactly. Aggregates only: no case or
referral id is kept.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from shared.clock import local
from shared.csvtext import csv_text

Key = tuple[str, str, str]
"""(municipality, month YYYY-MM in Helsinki, channel)."""

COLUMNS = ("municipality", "month", "channel", "referrals", "statutory", "urgent")


def helsinki_month(received_at: str) -> str:
    """The Helsinki month of a UTC time as events carry it (``…Z`` or ``…+00:00``): Helsinki is a
    whole number of hours from UTC, so the month follows from the hour, looked up once per hour
    instead of parsing and converting every event's time (a rebuild reads millions)."""
    if received_at.endswith(("Z", "+00:00")) and len(received_at) >= 13:
        return _month_of_utc_hour(received_at[:13])
    return local(datetime.fromisoformat(received_at)).strftime("%Y-%m")


@lru_cache(maxsize=4096)
def _month_of_utc_hour(hour: str) -> str:
    return local(datetime.fromisoformat(hour + ":00+00:00")).strftime("%Y-%m")


def increments(ev: dict[str, Any]) -> tuple[Key, int, int]:
    """What one ``referral.received`` (as JSON) adds: its row, and 1/0 for statutory and urgent."""
    key = (str(ev["municipality"]), helsinki_month(str(ev["received_at"])), str(ev["channel"]))
    return key, 1 if ev.get("statutory") else 0, 1 if ev.get("urgent") else 0


class ChannelStatistics:
    """The counters: ``counts[key] == [referrals, statutory, urgent]``."""

    def __init__(self, counts: dict[Key, list[int]] | None = None) -> None:
        self.counts: dict[Key, list[int]] = counts if counts is not None else {}

    def apply(self, ev: dict[str, Any]) -> Key:
        key, statutory, urgent = increments(ev)
        c = self.counts.get(key)
        if c is None:
            self.counts[key] = [1, statutory, urgent]
        else:
            c[0] += 1
            c[1] += statutory
            c[2] += urgent
        return key

    def rows(
        self, municipality: str | None = None, from_month: str | None = None, to_month: str | None = None
    ) -> list[dict[str, Any]]:
        """One row per municipality, month and channel, by municipality, then month, then channel."""
        return [
            {"municipality": m, "month": mo, "channel": ch, "referrals": n, "statutory": s, "urgent": u}
            for (m, mo, ch), (n, s, u) in sorted(self.counts.items())
            if (municipality is None or m == municipality)
            and (from_month is None or mo >= from_month)
            and (to_month is None or mo <= to_month)
        ]


def to_csv(rows: list[dict[str, Any]]) -> str:
    return csv_text(COLUMNS, rows)
