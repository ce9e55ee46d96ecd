"""The statutory process at its legal edges: clocks from the recorded receipt, the 7-working-day
decision as an action, the 3-month completion from receipt, urgency assessed at once, and the
recompute of cases opened under the old rule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from services.referral.deadlines import completion_due, decision_due, urgency_timer_moments
from services.referral.domain import Case, Contact, Referral, open_referral, receipt_moment
from services.referral.screening import screen
from shared.clock import HELSINKI
from shared.errors import DomainError
from tests.support.data import TEST_PSEUDONYM, submission


def hki(y: int, m: int, d: int, hh: int = 12, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=HELSINKI)


def referral(received_at: datetime, channel: str = "child_protection_notification", urgent: bool = False) -> Referral:
    r = Referral(uuid4(), uuid4(), f"s-{uuid4()}", channel, "Testilä", received_at, "fi", False, urgent, False, "police", 1)
    r.contacts = [Contact("guardian-1", "guardian", "sv", "g@example.com", None)]
    return r


def case_with(*refs: Referral) -> Case:
    case = Case(case_id=uuid4(), municipality="Testilä", opened_at=datetime.now(UTC))
    for i, r in enumerate(refs):
        case.add_referral(r, linked=i > 0)
    return case


# -- the 7 working days, from the receipt -------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (hki(2026, 12, 22), date(2027, 1, 5)),  # Tue before Christmas: 23, 28, 29, 30, 31, 4, 5
        (hki(2026, 12, 23), date(2027, 1, 7)),  # the day before Christmas Eve; Epiphany 6.1. skipped
        (hki(2026, 12, 31), date(2027, 1, 13)),  # 31 December, the day before New Year's Day
        (hki(2026, 12, 30), date(2027, 1, 12)),  # 31.12. itself is a working day
        (hki(2026, 4, 2), date(2026, 4, 15)),  # Thursday before Good Friday, Easter Monday 6.4.
        (hki(2027, 3, 25), date(2027, 4, 7)),  # Easter 2027: Good Friday 26.3., Easter Monday 29.3.
        (hki(2026, 6, 18), date(2026, 6, 30)),  # Thursday before Midsummer Eve (19.6.) and Day (20.6.)
        (hki(2027, 6, 24), date(2027, 7, 6)),  # Midsummer Eve 2027 is Friday 25.6.
        (hki(2026, 5, 13), date(2026, 5, 25)),  # the day before Ascension Day (14.5.)
        (hki(2027, 12, 3), date(2027, 12, 15)),  # Friday before Independence Day on a Monday
        (hki(2026, 4, 30), date(2026, 5, 12)),  # Walpurgis, the day before May Day
    ],
)
def test_decision_is_due_seven_working_days_after_a_receipt_before_a_holiday_run(received: datetime, due: date) -> None:
    assert decision_due(received) == due


def test_receipt_late_on_a_friday_counts_in_helsinki_time_not_utc() -> None:
    # 21:30 UTC = 23:30 Helsinki, still Friday 27.11.: Monday is day 1.
    friday_night = datetime(2026, 11, 27, 21, 30, tzinfo=UTC)
    assert friday_night.astimezone(HELSINKI).date() == date(2026, 11, 27)
    assert decision_due(friday_night) == date(2026, 12, 8)
    # 22:30 UTC on Thursday is already Friday in Helsinki: one day later than by the UTC date.
    assert decision_due(datetime(2026, 11, 26, 21, 30, tzinfo=UTC)) == date(2026, 12, 7)
    assert decision_due(datetime(2026, 11, 26, 22, 30, tzinfo=UTC)) == date(2026, 12, 8)
    # Summer time: 21:30 UTC on Friday 12.6.2026 is 00:30 on Saturday in Helsinki.
    assert decision_due(datetime(2026, 6, 11, 21, 30, tzinfo=UTC)) == decision_due(hki(2026, 6, 12))


def test_the_receipt_is_the_front_doors_submitted_at_not_the_moment_of_handling() -> None:
    sub = submission(submitted_at=datetime(2026, 12, 22, 8, 0, tzinfo=UTC).isoformat(), channel="assessment_request")
    handled = datetime(2026, 12, 28, 9, 0, tzinfo=UTC)  # a front door that was offline for days
    result = screen(__import__("json").dumps(sub).encode(), handled.date())
    assert result.accepted, result.reasons
    assert result.submission is not None
    r = open_referral(result.submission, handled, TEST_PSEUDONYM)
    assert r.received_at == datetime(2026, 12, 22, 8, 0, tzinfo=UTC) and r.handled_at == handled
    case = case_with(r)
    assert case.decision_due_by == date(2027, 1, 5)  # not 7 working days from 28.12.
    assert case.received_at == r.received_at


def test_a_front_door_clock_ahead_of_ours_does_not_push_the_receipt_later() -> None:
    handled = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    assert receipt_moment(handled + timedelta(seconds=30), handled) == handled
    assert receipt_moment(hki(2026, 12, 2, 11, 0), handled) == datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def test_a_late_sent_referral_with_an_earlier_receipt_moves_the_decision_earlier() -> None:
    later = referral(hki(2026, 12, 10))
    case = case_with(later)
    assert case.decision_due_by == date(2026, 12, 21)
    earlier = referral(hki(2026, 12, 3), channel="assessment_request")
    assert case.add_referral(earlier, linked=True)
    assert (case.received_at, case.decision_due_by) == (earlier.received_at, date(2026, 12, 14))
    # A later one does not restart the running clock.
    assert not case.add_referral(referral(hki(2026, 12, 14)), linked=True)
    assert case.decision_due_by == date(2026, 12, 14)


def test_a_voluntary_referral_first_then_a_notification_counts_from_the_notification() -> None:
    case = case_with(referral(hki(2026, 11, 2), channel="e_contact"))
    assert case.decision_due_by is None and case.received_at == hki(2026, 11, 2)
    assert case.add_referral(referral(hki(2026, 11, 16)), linked=True)
    assert (case.received_at, case.decision_due_by) == (hki(2026, 11, 16), date(2026, 11, 25))


# -- the 3 months, from the receipt --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("received", "due"),
    [
        (hki(2026, 11, 30), date(2027, 3, 1)),  # 30.11. -> 28.2.2027, a Sunday -> Monday 1.3.
        (hki(2027, 11, 30), date(2028, 2, 29)),  # leap year: 29.2.2028, a Tuesday
        (hki(2025, 11, 30), date(2026, 3, 2)),  # 28.2.2026 is a Saturday -> Monday 2.3.
        (hki(2026, 11, 29), date(2027, 3, 1)),  # no 29 February 2027 either: 28.2. (Sunday) -> 1.3.
        (hki(2026, 5, 31), date(2026, 8, 31)),  # 31.8. exists
        (hki(2026, 12, 6), date(2027, 3, 8)),  # 6.3.2027 is a Saturday -> Monday 8.3.
        (hki(2026, 12, 7), date(2027, 3, 8)),  # 7.3.2027 is a Sunday -> Monday 8.3.
        (hki(2026, 9, 24), date(2026, 12, 28)),  # Christmas Eve, Christmas, St Stephen's, Sunday -> 28.12.
        (hki(2026, 3, 19), date(2026, 6, 22)),  # Midsummer Eve (Friday 19.6.) -> Monday 22.6.
        (hki(2026, 10, 1), date(2027, 1, 4)),  # 1.1. New Year's Day, then the weekend -> 4.1.
        (datetime(2026, 11, 30, 22, 30, tzinfo=UTC), date(2027, 3, 1)),  # 1.12. in Helsinki -> 1.3.
    ],
)
def test_assessment_is_due_three_months_after_receipt_with_month_end_and_weekend_rules(received: datetime, due: date) -> None:
    assert completion_due(received) == due


@pytest.mark.parametrize(
    ("received", "decision", "completion"),
    [
        # The nights the clocks change: 00:30 in Helsinki is the Sunday, not the Saturday in UTC.
        (datetime(2025, 3, 29, 22, 30, tzinfo=UTC), date(2025, 4, 8), date(2025, 6, 30)),
        (datetime(2025, 10, 25, 21, 30, tzinfo=UTC), date(2025, 11, 4), date(2026, 1, 26)),
        # 31 January: no 30/31 April; late in the evening it is 1 February in Helsinki, and 1.5. is May Day.
        (datetime(2025, 1, 31, 10, 0, tzinfo=UTC), date(2025, 2, 11), date(2025, 4, 30)),
        (datetime(2025, 1, 31, 22, 30, tzinfo=UTC), date(2025, 2, 11), date(2025, 5, 2)),
        # Received on Christmas Eve (in Helsinki): the holidays and Epiphany are not working days.
        (datetime(2025, 12, 23, 22, 30, tzinfo=UTC), date(2026, 1, 8), date(2026, 3, 24)),
    ],
)
def test_deadlines_count_from_the_helsinki_day_of_receipt_across_clock_changes_month_ends_and_holidays(
    received: datetime, decision: date, completion: date
) -> None:
    assert (decision_due(received), completion_due(received)) == (decision, completion)


def test_the_completion_deadline_counts_from_receipt_not_from_the_start_of_the_assessment() -> None:
    case = case_with(referral(hki(2026, 11, 30)))
    complete_by = case.start_assessment(date(2026, 12, 9), "sw-1", hki(2026, 12, 9))
    assert complete_by == date(2027, 3, 1) == completion_due(hki(2026, 11, 30))
    assert case.open_deadlines() == [("assessment_completion", date(2027, 3, 1))]


def test_an_assessment_cannot_start_before_the_receipt() -> None:
    case = case_with(referral(hki(2026, 11, 30)))
    with pytest.raises(DomainError) as e:
        case.start_assessment(date(2026, 11, 29), "sw-1", hki(2026, 12, 1))
    assert (e.value.code, e.value.field) == ("started_before_receipt", "started_on")


def test_an_assessment_is_not_started_or_completed_ahead_of_today_in_helsinki() -> None:
    case = case_with(referral(hki(2026, 11, 30)))
    late_evening = datetime(2026, 12, 8, 22, 30, tzinfo=UTC)  # already 9 December in Helsinki
    with pytest.raises(DomainError) as e:
        case.start_assessment(date(2026, 12, 10), "sw-1", late_evening)
    assert (e.value.code, e.value.field) == ("started_in_future", "started_on")
    case.start_assessment(date(2026, 12, 9), "sw-1", late_evening)
    with pytest.raises(DomainError) as e:
        case.complete_assessment(date(2026, 12, 10), "services_started", "sw-1", late_evening)
    assert (e.value.code, e.value.field) == ("completed_in_future", "completed_on")
    case.complete_assessment(date(2026, 12, 9), "services_started", "sw-1", late_evening)


# -- the decision as an action -------------------------------------------------------------------------


def test_recording_the_decision_to_start_the_assessment_stops_the_decision_clock_and_starts_the_completion_clock() -> None:
    case = case_with(referral(hki(2026, 12, 22)))
    assert case.open_deadlines() == [("assessment_decision", date(2027, 1, 5))]
    complete_by = case.record_decision("start_assessment", date(2027, 1, 4), "sw-1", hki(2027, 1, 4), "perusteet")
    assert complete_by == date(2027, 3, 22)
    assert case.open_deadlines() == [("assessment_completion", date(2027, 3, 22))]
    assert case.decided_within_time is True
    assert case.decision is not None and case.decision["outcome"] == "start_assessment"
    assert case.history[-1]["what"] == "decision_recorded" and case.history[-1]["by"] == "sw-1"
    # Starting the assessment is still its own step, and keeps the same last day.
    assert case.start_assessment(date(2027, 1, 11), "sw-1", hki(2027, 1, 11)) == date(2027, 3, 22)


def test_no_assessment_needed_closes_the_case_and_sets_no_completion_clock() -> None:
    case = case_with(referral(hki(2026, 12, 22)))
    assert case.record_decision("not_needed", date(2027, 1, 7), "sw-1", hki(2027, 1, 7)) is None
    assert case.status == "closed" and case.open_deadlines() == []
    assert case.decided_within_time is False  # due 5.1.
    with pytest.raises(DomainError) as e:
        case.start_assessment(date(2027, 1, 8), "sw-1", hki(2027, 1, 8))
    assert e.value.code == "case_closed"


def test_child_protection_client_at_once_stops_the_clock_and_keeps_the_case_open() -> None:
    case = case_with(referral(hki(2026, 12, 22)))
    assert case.record_decision("child_protection_client", date(2026, 12, 22), "sw-1", hki(2026, 12, 22)) is None
    assert case.status == "open" and case.open_deadlines() == []
    # The assessment may still be started; it is due 3 months of receipt.
    assert case.start_assessment(date(2027, 1, 4), "sw-1", hki(2027, 1, 4)) == date(2027, 3, 22)


@pytest.mark.parametrize(
    ("setup", "on", "code"),
    [
        ("recorded", date(2026, 12, 23), "decision_already_recorded"),
        ("started", date(2026, 12, 23), "decision_already_recorded"),
        ("voluntary", date(2026, 12, 23), "no_decision_pending"),
        ("fresh", date(2026, 12, 21), "decided_before_receipt"),
        ("fresh", date(2026, 12, 24), "decided_in_future"),
    ],
)
def test_a_decision_that_cannot_be_recorded_is_refused_with_a_code(setup: str, on: date, code: str) -> None:
    now = hki(2026, 12, 23)
    case = case_with(
        referral(hki(2026, 12, 22), channel="e_contact" if setup == "voluntary" else "child_protection_notification")
    )
    if setup == "recorded":
        case.record_decision("child_protection_client", date(2026, 12, 22), "sw-1", now)
    if setup == "started":
        case.start_assessment(date(2026, 12, 22), "sw-1", now)
    with pytest.raises(DomainError) as e:
        case.record_decision("start_assessment", on, "sw-2", now)
    assert e.value.code == code


def test_starting_the_assessment_without_a_recorded_decision_also_stops_the_decision_clock() -> None:
    case = case_with(referral(hki(2026, 12, 22)))
    case.start_assessment(date(2026, 12, 28), "sw-1", hki(2026, 12, 28))
    assert not case.decision_pending and [k for k, _ in case.open_deadlines()] == ["assessment_completion"]


# -- urgency assessed at once --------------------------------------------------------------------------


def test_urgency_is_due_two_hours_after_receipt_any_hour_of_the_week() -> None:
    friday_night = hki(2026, 11, 27, 23, 30)
    due, escalate = urgency_timer_moments(friday_night, timedelta(hours=2), timedelta(minutes=30))
    assert due == hki(2026, 11, 28, 1, 30) and escalate == hki(2026, 11, 28, 2, 0)  # Saturday night, not Monday
    christmas_eve = hki(2026, 12, 24, 22, 0)
    assert urgency_timer_moments(christmas_eve, timedelta(hours=2), timedelta(0))[0] == hki(2026, 12, 25, 0, 0)


def test_notifications_and_urgent_referrals_need_an_urgency_assessment() -> None:
    assert referral(hki(2026, 12, 1)).needs_urgency_assessment
    assert referral(hki(2026, 12, 1), channel="phone", urgent=True).needs_urgency_assessment
    assert not referral(hki(2026, 12, 1), channel="assessment_request").needs_urgency_assessment


def test_urgency_assessment_records_who_when_and_outcome_and_tells_the_guardians() -> None:
    r = referral(hki(2026, 12, 1, 10))
    r.assess_urgency(False, "sw-1", hki(2026, 12, 1, 11), hki(2026, 12, 1, 11, 5), False, "")
    assert r.urgency == {
        "by": "sw-1",
        "at": "2026-12-01T09:00:00+00:00",
        "urgent_protection_needed": False,
        "guardians_endangered": False,
        "endangerment_reason": "",
    }
    assert r.guardians_may_be_told and r.guardian_ids == ["guardian-1"]
    with pytest.raises(DomainError) as e:
        r.assess_urgency(True, "sw-2", hki(2026, 12, 1, 12), hki(2026, 12, 1, 12), False, "")
    assert e.value.code == "urgency_already_assessed"


def test_guardians_are_not_told_when_it_would_endanger_the_child_and_the_reason_is_required() -> None:
    r = referral(hki(2026, 12, 1, 10))
    now = hki(2026, 12, 1, 11)
    with pytest.raises(DomainError) as e:
        r.assess_urgency(True, "sw-1", now, now, True, "  ")
    assert (e.value.code, e.value.field) == ("reason_required", "endangerment_reason")
    r.assess_urgency(True, "sw-1", now, now, True, "epäilty väkivalta kotona")
    assert not r.guardians_may_be_told
    assert r.urgency is not None and r.urgency["endangerment_reason"] == "epäilty väkivalta kotona"
    # Only a child-protection notification tells the guardians.
    other = referral(hki(2026, 12, 1, 10), channel="phone", urgent=True)
    other.assess_urgency(False, "sw-1", now, now, False, "")
    assert not other.guardians_may_be_told


@pytest.mark.parametrize(
    ("at", "code"),
    [(hki(2026, 12, 1, 9), "assessed_before_receipt"), (hki(2026, 12, 1, 12), "assessed_in_future")],
)
def test_an_urgency_assessment_outside_receipt_and_now_is_refused(at: datetime, code: str) -> None:
    r = referral(hki(2026, 12, 1, 10))
    with pytest.raises(DomainError) as e:
        r.assess_urgency(False, "sw-1", at, hki(2026, 12, 1, 11), False, "")
    assert (e.value.code, e.value.field) == (code, "assessed_at")


# -- recompute of cases opened under the old rule ------------------------------------------------------


def _old_rule_case(received: datetime, handled: datetime, start: date | None = None) -> tuple[Case, list[Referral]]:
    """A case as the old code stored it: every clock from the moment of handling."""
    r = referral(handled)
    case = case_with(r)
    if start is not None:
        case.start_assessment(start, "sw-1", datetime.combine(start, datetime.min.time(), HELSINKI) + timedelta(hours=12))
        case.assessment_complete_by = completion_due(start)  # the old rule: 3 months of the start
    r.received_at = received  # what the migration reads from the stored submitted_at
    return case, [r]


def test_recompute_of_an_open_case_moves_the_decision_to_count_from_receipt() -> None:
    case, refs = _old_rule_case(hki(2026, 12, 22), hki(2026, 12, 28))
    assert case.decision_due_by == date(2027, 1, 8)
    changes = case.recompute_deadlines(refs)
    assert changes == {"assessment_decision": ("2027-01-08", "2027-01-05")}
    assert case.decision_due_by == date(2027, 1, 5) and case.received_at == hki(2026, 12, 22)
    assert case.recompute_deadlines(refs) == {}  # a second run changes nothing


def test_recompute_of_an_open_assessment_counts_three_months_from_receipt() -> None:
    case, refs = _old_rule_case(hki(2026, 11, 30), hki(2026, 11, 30), start=date(2026, 12, 14))
    assert case.assessment_complete_by == date(2027, 3, 15)
    assert case.recompute_deadlines(refs) == {"assessment_completion": ("2027-03-15", "2027-03-01")}
    assert case.open_deadlines() == [("assessment_completion", date(2027, 3, 1))]


def test_recompute_leaves_completed_and_decided_steps_alone() -> None:
    case, refs = _old_rule_case(hki(2026, 12, 22), hki(2026, 12, 28))
    case.record_decision("child_protection_client", date(2026, 12, 28), "sw-1", hki(2026, 12, 28))
    before: dict[str, Any] = dict(case.__dict__)
    assert case.recompute_deadlines(refs) == {}
    assert case.decision_due_by == before["decision_due_by"]
