"""Statutory deadlines: 7 working days to decide (day of receipt not counted), 3 months of receipt to assess."""

from datetime import UTC, date, datetime
from uuid import uuid4

import pytest

from services.referral.deadlines import (
    add_months,
    completion_due,
    decision_due,
    timer_moments,
    timer_subject,
    working_days_before,
)
from services.referral.domain import Case
from shared.clock import HELSINKI
from shared.errors import DomainError


def hki(y: int, m: int, d: int, hh: int = 12, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=HELSINKI)


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (hki(2026, 12, 21), date(2027, 1, 4)),  # Christmas and New Year
        (hki(2026, 12, 30), date(2027, 1, 12)),  # year end and Epiphany (6.1.)
        (hki(2026, 4, 1), date(2026, 4, 14)),  # Easter 2026
        (hki(2027, 3, 24), date(2027, 4, 6)),  # Easter 2027: 25, (26 Good Friday, 27-28, 29 Easter Monday), 30, 31, 1, 2, 5, 6
        (hki(2026, 6, 17), date(2026, 6, 29)),  # Midsummer Eve
        (hki(2026, 11, 21), date(2026, 12, 1)),  # received on a Saturday: Monday is day 1
        (hki(2026, 4, 29), date(2026, 5, 11)),  # May Day
        (hki(2026, 12, 3), date(2026, 12, 14)),  # Independence Day falls on a Sunday in 2026
    ],
)
def test_decision_due_in_seven_working_days(received: datetime, due: date) -> None:
    assert decision_due(received) == due


def test_receipt_day_is_the_helsinki_date() -> None:
    # 23:30 UTC on Sunday 22.11. is already Monday 23.11. in Helsinki
    assert decision_due(datetime(2026, 11, 22, 23, 30, tzinfo=UTC)) == date(2026, 12, 2)
    assert decision_due(datetime(2026, 11, 22, 21, 30, tzinfo=UTC)) == date(2026, 12, 1)


@pytest.mark.parametrize(
    ("start", "due"),
    [
        (date(2026, 11, 23), date(2027, 2, 23)),
        (date(2026, 11, 30), date(2027, 3, 1)),  # no 30 February; 28.2.2027 is a Sunday -> Monday
        (date(2027, 11, 30), date(2028, 2, 29)),  # leap year
        (date(2026, 8, 31), date(2026, 11, 30)),
        (date(2026, 10, 15), date(2027, 1, 15)),  # across the year end
        (date(2026, 9, 24), date(2026, 12, 28)),  # 24.12. Christmas Eve, then 25.-27. -> Monday 28.12.
        (date(2026, 3, 19), date(2026, 6, 22)),  # 19.6. Midsummer Eve -> Monday 22.6.
    ],
)
def test_assessment_completed_within_three_months_of_receipt(start: date, due: date) -> None:
    assert completion_due(start) == due


def test_add_months_keeps_day_or_clamps() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 12, 15), 13) == date(2028, 1, 15)


def test_working_days_before_skips_holidays() -> None:
    assert working_days_before(date(2027, 1, 4), 2) == date(2026, 12, 30)  # back over 1.1. and Christmas weekend
    assert working_days_before(date(2026, 4, 7), 1) == date(2026, 4, 2)  # Easter
    assert working_days_before(date(2026, 4, 7), 0) == date(2026, 4, 7)


def test_timer_moments_in_helsinki_time() -> None:
    approaching, breached = timer_moments(date(2027, 1, 4), 2)
    assert approaching == datetime(2026, 12, 30, 8, 0, tzinfo=HELSINKI)
    assert breached == datetime(2027, 1, 5, 0, 0, tzinfo=HELSINKI)
    assert breached.astimezone(UTC) == datetime(2027, 1, 4, 22, 0, tzinfo=UTC)
    # Summer time: the breach moment is 21:00 UTC
    assert timer_moments(date(2026, 6, 29), 0)[1].astimezone(UTC) == datetime(2026, 6, 29, 21, 0, tzinfo=UTC)


def test_timer_subject_carries_no_personal_data() -> None:
    cid = uuid4()
    assert timer_subject("assessment_decision", cid, "breached") == f"timers.referral.assessment_decision.{cid}.breached"


def test_case_deadlines_follow_the_steps() -> None:
    from services.referral.domain import Referral

    now = hki(2026, 11, 23)
    case = Case(case_id=uuid4(), municipality="Testilä", opened_at=now)
    r = Referral(
        uuid4(), case.case_id, "s1", "child_protection_notification", "Testilä", now, "fi", False, False, False, "police", 1
    )
    assert case.add_referral(r, linked=False)
    assert case.open_deadlines() == [("assessment_decision", date(2026, 12, 2))]
    # a second statutory referral does not restart the running deadline
    r2 = Referral(uuid4(), case.case_id, "s2", "assessment_request", "Testilä", now, "fi", False, False, False, "police", 1)
    assert not case.add_referral(r2, linked=True)
    assert case.repeat_count == 2
    complete_by = case.start_assessment(date(2026, 11, 30), "sw-1", hki(2026, 11, 30))
    assert complete_by == date(2027, 2, 23)  # 3 months of receipt (23.11.), not of the start (30.11.)
    assert case.open_deadlines() == [("assessment_completion", date(2027, 2, 23))]
    with pytest.raises(DomainError) as e:
        case.start_assessment(date(2026, 11, 30), "sw-1", hki(2026, 11, 30))
    assert e.value.code == "assessment_already_started"
    with pytest.raises(DomainError) as e:
        case.complete_assessment(date(2026, 11, 1), "other", "sw-1", hki(2026, 12, 1))
    assert e.value.code == "completed_before_start"
    case.complete_assessment(date(2027, 1, 15), "services_started", "sw-1", hki(2027, 1, 15))
    assert case.open_deadlines() == []
    assert [h["what"] for h in case.history] == [
        "referral_received",
        "referral_linked",
        "assessment_started",
        "assessment_completed",
    ]


def test_complete_before_start_is_refused() -> None:
    case = Case(case_id=uuid4(), municipality="Testilä", opened_at=hki(2026, 11, 23))
    with pytest.raises(DomainError) as e:
        case.complete_assessment(date(2026, 12, 1), "other", "sw-1", hki(2026, 12, 1))
    assert e.value.code == "assessment_not_started"


def test_voluntary_referral_has_no_statutory_deadline() -> None:
    from services.referral.domain import Referral

    now = hki(2026, 11, 23)
    case = Case(case_id=uuid4(), municipality="Testilä", opened_at=now)
    r = Referral(uuid4(), case.case_id, "s1", "e_contact", "Testilä", now, "fi", False, False, True, "family", 1)
    assert not case.add_referral(r, linked=False)
    assert case.open_deadlines() == []


def test_unlinking_the_statutory_referral_drops_the_decision_deadline() -> None:
    from services.referral.domain import Referral

    now = hki(2026, 11, 23)
    case = Case(case_id=uuid4(), municipality="Testilä", opened_at=now)
    voluntary = Referral(uuid4(), case.case_id, "s1", "e_contact", "Testilä", now, "fi", False, False, True, "family", 1)
    statutory = Referral(
        uuid4(), case.case_id, "s2", "child_protection_notification", "Testilä", now, "fi", False, False, False, "police", 1
    )
    case.add_referral(voluntary, linked=False)
    assert case.add_referral(statutory, linked=True)
    case.remove_referral(statutory.referral_id, now, "sw-1")
    assert case.recompute_deadlines([statutory, voluntary]) == {}
    assert case.recompute_deadlines([voluntary]) == {"assessment_decision": ("2026-12-02", None)}
    assert case.open_deadlines() == [] and case.repeat_count == 1
