"""Slot finding: the earliest common time for the roles asked, the family and a room."""

from datetime import UTC, date, datetime

import pytest

from services.meetings.slots import NoSlot, Professional, Room, SlotRequest, find_slot, substitutes
from shared.clock import HELSINKI

UTC = UTC


def hel(y, mo, d, h, mi=0):  # type: ignore[no-untyped-def]
    return datetime(y, mo, d, h, mi, tzinfo=HELSINKI).astimezone(UTC)


def pro(pid, *roles, langs=("fi",), muni="Testilä", hours=None):  # type: ignore[no-untyped-def]
    kw = {"working_hours": hours} if hours else {}
    return Professional(pid, muni, tuple(roles), tuple(langs), unit=f"unit-{roles[0]}", **kw)


ROSTER = [
    pro("psy-1", "psychologist"),
    pro("fw-1", "family_worker"),
    pro("sw-1", "social_worker"),
    pro("close-1", "close_worker"),
]
ROOMS = [Room("big", "Testilä", 12, "Perhekeskus"), Room("small", "Testilä", 4, "Perhekeskus")]
MON = (2026, 11, 23)  # a Monday in November: Helsinki is UTC+2


def req(**kw):  # type: ignore[no-untyped-def]
    base = dict(municipality="Testilä", language="fi", roles=["psychologist", "family_worker"], not_before=hel(*MON, 7))
    base.update(kw)
    return SlotRequest(**base)


def test_first_free_working_hour_when_nobody_is_busy() -> None:
    p = find_slot(req(), ROSTER, ROOMS, {})
    assert p.starts_at == hel(*MON, 8) and p.ends_at == hel(*MON, 9)
    assert sorted(p.professional_ids()) == ["fw-1", "psy-1"]
    assert p.room_id == "small"  # the smallest room that seats everyone
    assert not p.interpreter_needed


def test_overlapping_bookings_push_to_the_earliest_common_slot() -> None:
    busy = {
        "person:psy-1": [(hel(*MON, 8), hel(*MON, 10))],
        "person:fw-1": [(hel(*MON, 9), hel(*MON, 11, 30))],
    }
    p = find_slot(req(), ROSTER, ROOMS, busy)
    assert p.starts_at == hel(*MON, 11, 30)


def test_back_to_back_is_not_an_overlap() -> None:
    busy = {"person:psy-1": [(hel(*MON, 8), hel(*MON, 9))]}
    assert find_slot(req(), ROSTER, ROOMS, busy).starts_at == hel(*MON, 9)


def test_rooms_are_booked_too() -> None:
    busy = {"room:small": [(hel(*MON, 8), hel(*MON, 12))], "room:big": [(hel(*MON, 8), hel(*MON, 10))]}
    p = find_slot(req(), ROSTER, ROOMS, busy)
    assert (p.starts_at, p.room_id) == (hel(*MON, 10), "big")


def test_room_capacity_counts_everyone() -> None:
    p = find_slot(req(party_size=5), ROSTER, ROOMS, {})
    assert p.room_id == "big"
    with pytest.raises(NoSlot) as e:
        find_slot(req(party_size=20), ROSTER, ROOMS, {})
    assert e.value.code == "no_room"


def test_meeting_must_end_within_working_hours() -> None:
    busy = {"person:psy-1": [(hel(*MON, 8), hel(*MON, 15, 15))]}
    p = find_slot(req(), ROSTER, ROOMS, busy)
    assert p.starts_at == hel(2026, 11, 24, 8)  # 15:15-16:15 would run past 16:00


def test_individual_working_hours() -> None:
    part_timer = pro("psy-2", "psychologist", hours=[("tue", "12:00", "15:00")])
    p = find_slot(req(roles=["psychologist"]), [part_timer, ROSTER[1]], ROOMS, {})
    assert p.starts_at == hel(2026, 11, 24, 12)


def test_weekends_and_finnish_holidays_are_skipped() -> None:
    # Thu 24.12.2026 Christmas Eve, Fri 25.12 Christmas Day, Sat-Sun -> Monday 28.12.
    p = find_slot(req(not_before=hel(2026, 12, 23, 16)), ROSTER, ROOMS, {})
    assert p.starts_at == hel(2026, 12, 28, 8)
    # Independence Day on a weekday: 6.12.2027 is a Monday.
    p = find_slot(req(not_before=hel(2027, 12, 4, 9)), ROSTER, ROOMS, {})
    assert p.starts_at == hel(2027, 12, 7, 8)


def test_dst_change_keeps_local_working_hours() -> None:
    # Summer time starts Sun 29.3.2026: 08:00 local is 06:00 UTC before, 05:00 UTC after.
    friday = find_slot(req(not_before=hel(2026, 3, 27, 7)), ROSTER, ROOMS, {})
    assert friday.starts_at == datetime(2026, 3, 27, 6, 0, tzinfo=UTC)
    monday = find_slot(req(not_before=hel(2026, 3, 28, 7)), ROSTER, ROOMS, {})
    assert monday.starts_at == datetime(2026, 3, 30, 5, 0, tzinfo=UTC)
    assert monday.starts_at.astimezone(HELSINKI).hour == 8
    # Back to winter time on Sun 25.10.2026.
    p = find_slot(req(not_before=hel(2026, 10, 24, 7)), ROSTER, ROOMS, {})
    assert p.starts_at == datetime(2026, 10, 26, 6, 0, tzinfo=UTC)


def test_family_availability_is_respected() -> None:
    wed = [(hel(2026, 11, 25, 14), hel(2026, 11, 25, 16))]
    p = find_slot(req(family_windows=wed), ROSTER, ROOMS, {})
    assert p.starts_at == hel(2026, 11, 25, 14)


def test_deadline_cut_off_gives_a_clear_answer_and_the_first_time_after() -> None:
    busy = {"person:psy-1": [(hel(*MON, 0), hel(2026, 11, 26, 23))]}
    with pytest.raises(NoSlot) as e:
        find_slot(req(deadline=date(2026, 11, 25)), ROSTER, ROOMS, busy)
    assert e.value.code == "no_slot_before_deadline"
    assert e.value.earliest_after_deadline is not None
    assert e.value.earliest_after_deadline.starts_at == hel(2026, 11, 27, 8)
    assert set(e.value.messages()) == {"fi", "sv", "en"}
    # the deadline day itself still counts
    ok = find_slot(req(deadline=date(2026, 11, 27)), ROSTER, ROOMS, busy)
    assert ok.starts_at == hel(2026, 11, 27, 8)


def test_no_feasible_slot_and_unknown_roles_or_people() -> None:
    weekend_only = [(hel(2026, 11, 28, 10), hel(2026, 11, 28, 12))]
    with pytest.raises(NoSlot) as e:
        find_slot(req(family_windows=weekend_only), ROSTER, ROOMS, {})
    assert e.value.code == "no_feasible_slot"
    with pytest.raises(NoSlot) as e:
        find_slot(req(roles=["astrologer"]), ROSTER, ROOMS, {})
    assert (e.value.code, e.value.field) == ("unknown_role", "roles")
    with pytest.raises(NoSlot) as e:
        find_slot(req(fixed_ids=["nobody"]), ROSTER, ROOMS, {})
    assert e.value.code == "unknown_participant"


def test_same_municipality_then_language_first() -> None:
    roster = [
        pro("psy-a", "psychologist", langs=("fi",)),
        pro("psy-b", "psychologist", langs=("fi", "sv")),
        pro("psy-far", "psychologist", langs=("sv",), muni="Muualla"),
        pro("fw-1", "family_worker", langs=("fi", "sv")),
    ]
    p = find_slot(req(language="sv"), roster, ROOMS, {})
    assert dict(p.assignments)["psychologist"] == "psy-b"
    assert p.alternatives["psychologist"] == ["psy-a"]
    assert not p.interpreter_needed
    # the preferred person busy: the earliest time wins, with the next person
    busy = {"person:psy-b": [(hel(*MON, 8), hel(*MON, 12))]}
    p = find_slot(req(language="sv"), roster, ROOMS, busy)
    assert dict(p.assignments)["psychologist"] == "psy-a" and p.starts_at == hel(*MON, 8)
    assert p.interpreter_needed  # psy-a speaks no Swedish
    # nobody in the municipality has the role: others are asked
    only_far = [roster[2], roster[3]]
    assert dict(find_slot(req(language="sv"), only_far, ROOMS, {}).assignments)["psychologist"] == "psy-far"


def test_one_person_per_role_and_fixed_people_must_be_free() -> None:
    both = pro("multi", "psychologist", "family_worker")
    roster = [both, pro("fw-2", "family_worker"), ROSTER[3]]
    p = find_slot(req(), roster, ROOMS, {})
    assert sorted(p.professional_ids()) == ["fw-2", "multi"]
    busy = {"person:close-1": [(hel(*MON, 8), hel(*MON, 13))]}
    p = find_slot(req(fixed_ids=["close-1"]), roster, ROOMS, busy)
    assert p.starts_at == hel(*MON, 13) and "close-1" in p.professional_ids()


def test_not_before_is_rounded_up_to_the_quarter() -> None:
    p = find_slot(req(not_before=hel(*MON, 10, 7)), ROSTER, ROOMS, {})
    assert p.starts_at == hel(*MON, 10, 15)


def test_substitutes_for_a_declined_role() -> None:
    roster = ROSTER + [pro("psy-2", "psychologist"), pro("psy-3", "psychologist")]
    s, e = hel(*MON, 9), hel(*MON, 10)
    busy = {"person:psy-2": [(s, e)]}
    assert substitutes("psychologist", s, e, roster, "Testilä", "fi", busy, exclude=["psy-1"]) == ["psy-3"]
    assert substitutes("psychologist", hel(*MON, 18), hel(*MON, 19), roster, "Testilä", "fi", {}, exclude=[]) == []
