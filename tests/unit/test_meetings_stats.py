"""Joint-meeting statistics: counted once in every unit that took part."""

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

from services.meetings import stats
from services.meetings.domain import Convening, Meeting

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
UNITS = {
    "psy": ("Perheneuvola", "team-a"),
    "psy2": ("Perheneuvola", "team-a"),
    "fw": ("Perhetyö", "team-a"),
    "sw": ("Sosiaalityö", "team-b"),
}


def meeting(case, start, pros, status="held", present=None, muni="Testilä"):  # type: ignore[no-untyped-def]
    parts = [{"participant_id": "guardian-1", "kind": "family", "role": "guardian"}] + [
        {"participant_id": p, "kind": "professional", "role": "x"} for p in pros
    ]
    att = [{"participant_id": p, "present": True} for p in (present if present is not None else pros)]
    return Meeting(
        uuid4(),
        case,
        start,
        start + timedelta(hours=1),
        "A1",
        "fi",
        False,
        parts,
        "psy",
        status=status,
        attendance=att,
        municipality=muni,
    )


def conv(case, opened, deadline=None):  # type: ignore[no-untyped-def]
    return Convening(case, "Testilä", "fi", False, True, False, opened, deadline=deadline)


def test_statistics() -> None:
    a, b = uuid4(), uuid4()
    ms = [
        meeting(a, T0 + timedelta(days=2), ["psy", "psy2", "fw", "sw"], present=["psy", "psy2", "fw"]),  # 2 units present
        meeting(a, T0 + timedelta(days=30), ["psy", "sw"]),  # December: 2 units
        meeting(b, T0 + timedelta(days=10), ["sw"]),
        meeting(b, T0 + timedelta(days=3), ["fw"], status="cancelled"),
        meeting(uuid4(), T0, ["psy"], muni="Muualla"),
    ]
    convs = {str(a): conv(a, T0, deadline=date(2026, 11, 5)), str(b): conv(b, T0 + timedelta(days=1), deadline=date(2026, 11, 6))}
    s = stats.compute(ms, convs, UNITS, municipality="Testilä")
    assert s["meetings_held"] == 3
    assert s["per_municipality_month"] == [
        {"municipality": "Testilä", "month": "2026-11", "meetings": 2},
        {"municipality": "Testilä", "month": "2026-12", "meetings": 1},
    ]
    nov_units = {r["unit"]: r["meetings"] for r in s["per_unit_month"] if r["month"] == "2026-11"}
    assert nov_units == {"Perheneuvola": 1, "Perhetyö": 1, "Sosiaalityö": 1}  # two psychologists count once
    assert {(r["month"], r["team"], r["meetings"]) for r in s["per_team_month"]} >= {
        ("2026-11", "team-a", 1),
        ("2026-11", "team-b", 1),
    }
    assert s["referral_to_first_meeting_days"] == {"cases": 2, "mean": 5.5, "median": 5.5}
    assert s["held_before_deadline"] == {"cases_with_deadline": 2, "in_time": 1, "share": 0.5}
    assert s["units_per_meeting"] == 1.67 and s["separate_meetings_avoided"] == 2
    only_dec = stats.compute(ms, convs, UNITS, from_month="2026-12", to_month="2026-12")
    assert only_dec["meetings_held"] == 1
    csv_text = stats.to_csv(s)
    lines = csv_text.splitlines()
    assert lines[0] == "kind,municipality,month,unit_or_team,value"
    assert "unit_meetings,Testilä,2026-11,Perheneuvola,1" in lines
    assert "summary,,,held_before_deadline_share,0.5" in lines
    assert stats.compute([], {}, UNITS)["referral_to_first_meeting_days"]["mean"] is None
