"""Joint-meeting statistics. Plain Python, no I/O.

- joint meetings per municipality, unit / team and month (Helsinki), each meeting counted once in
  every unit (and team) that took part;
- time from the referral to the first meeting held (days);
- share of cases whose first meeting was held on or before the case's deadline;
- units met in one meeting, and the separate meetings this avoided (units - 1 per meeting).
"""

from __future__ import annotations

import csv
import io
import statistics as st
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any, Protocol

from shared.clock import local, local_month


class MeetingFacts(Protocol):
    """What the figures read of a meeting: a :class:`~services.meetings.domain.Meeting`, or the read
    model's lighter record of one (services/meetings/meeting_statistics.py)."""

    @property
    def case_id(self) -> object: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def status(self) -> str: ...
    @property
    def municipality(self) -> str | None: ...
    @property
    def participants(self) -> list[dict[str, Any]]: ...
    @property
    def attendance(self) -> list[dict[str, Any]]: ...


class CaseFacts(Protocol):
    """What the figures read of a case: a :class:`~services.meetings.domain.Convening` or the read
    model's record of one."""

    @property
    def opened_at(self) -> datetime: ...
    @property
    def deadline(self) -> date | None: ...


def _month(m: MeetingFacts) -> str:
    return local_month(m.starts_at)


def units_of(m: MeetingFacts, units: Mapping[str, tuple[str, str | None]]) -> tuple[set[str], set[str]]:
    """Units and teams that took part: the professionals recorded present (all invited
    professionals when attendance names none of them)."""
    pros = [p["participant_id"] for p in m.participants if p["kind"] == "professional"]
    present = {a["participant_id"] for a in m.attendance if a["present"]}
    took_part = [p for p in pros if p in present] or pros
    u = {units[p][0] for p in took_part if p in units}
    t = {units[p][1] for p in took_part if p in units and units[p][1]}
    return u, t  # type: ignore[return-value]


def compute(
    meetings: Iterable[MeetingFacts],
    convenings: Mapping[str, CaseFacts],
    units: Mapping[str, tuple[str, str | None]],
    *,
    municipality: str | None = None,
    from_month: str | None = None,
    to_month: str | None = None,
) -> dict[str, Any]:
    held: list[tuple[MeetingFacts, str]] = []  # with its month, worked out once
    for m in meetings:
        if m.status == "held" and (municipality is None or m.municipality == municipality):
            month = _month(m)
            if (from_month is None or month >= from_month) and (to_month is None or month <= to_month):
                held.append((m, month))
    per_municipality: Counter[tuple[str, str]] = Counter()
    per_unit: Counter[tuple[str, str, str]] = Counter()
    per_team: Counter[tuple[str, str, str]] = Counter()
    units_per_meeting = []
    for m, month in held:
        muni = m.municipality or ""
        per_municipality[(muni, month)] += 1
        u, t = units_of(m, units)
        for x in u:
            per_unit[(muni, month, x)] += 1
        for x in t:
            per_team[(muni, month, x)] += 1
        units_per_meeting.append(len(u))

    first: dict[str, MeetingFacts] = {}
    for m, _ in sorted(held, key=lambda held_one: held_one[0].starts_at):
        first.setdefault(str(m.case_id), m)
    waits, with_deadline, in_time = [], 0, 0
    for case_id, m in first.items():
        c = convenings.get(case_id)
        if c is None:
            continue
        waits.append((m.starts_at - c.opened_at).total_seconds() / 86400)
        if c.deadline is not None:
            with_deadline += 1
            in_time += local(m.starts_at).date() <= c.deadline
    return {
        "meetings_held": len(held),
        "per_municipality_month": [
            {"municipality": k[0], "month": k[1], "meetings": v} for k, v in sorted(per_municipality.items())
        ],
        "per_unit_month": [
            {"municipality": k[0], "month": k[1], "unit": k[2], "meetings": v} for k, v in sorted(per_unit.items())
        ],
        "per_team_month": [
            {"municipality": k[0], "month": k[1], "team": k[2], "meetings": v} for k, v in sorted(per_team.items())
        ],
        "referral_to_first_meeting_days": {
            "cases": len(waits),
            "mean": round(st.mean(waits), 2) if waits else None,
            "median": round(st.median(waits), 2) if waits else None,
        },
        "held_before_deadline": {
            "cases_with_deadline": with_deadline,
            "in_time": in_time,
            "share": round(in_time / with_deadline, 3) if with_deadline else None,
        },
        "units_per_meeting": round(st.mean(units_per_meeting), 2) if units_per_meeting else None,
        "separate_meetings_avoided": sum(max(0, n - 1) for n in units_per_meeting),
    }


def to_csv(stats: dict[str, Any]) -> str:
    """One CSV: a row per (kind, municipality, month, unit/team) and summary rows."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["kind", "municipality", "month", "unit_or_team", "value"])
    for r in stats["per_municipality_month"]:
        w.writerow(["meetings", r["municipality"], r["month"], "", r["meetings"]])
    for r in stats["per_unit_month"]:
        w.writerow(["unit_meetings", r["municipality"], r["month"], r["unit"], r["meetings"]])
    for r in stats["per_team_month"]:
        w.writerow(["team_meetings", r["municipality"], r["month"], r["team"], r["meetings"]])
    wait = stats["referral_to_first_meeting_days"]
    dl = stats["held_before_deadline"]
    for key, value in (
        ("meetings_held", stats["meetings_held"]),
        ("referral_to_first_meeting_days_mean", wait["mean"]),
        ("referral_to_first_meeting_days_median", wait["median"]),
        ("held_before_deadline_share", dl["share"]),
        ("units_per_meeting", stats["units_per_meeting"]),
        ("separate_meetings_avoided", stats["separate_meetings_avoided"]),
    ):
        w.writerow(["summary", "", "", key, "" if value is None else value])
    return out.getvalue()
