"""The joint-meeting statistics read model (services/meetings/meeting_statistics.py): what
``stats.compute`` reads, folded from events in any order."""

from __future__ import annotations

import random
from typing import Any

import pytest

from services.meetings import stats
from services.meetings.meeting_statistics import MeetingStatisticsModel

FAMILY = {"participant_id": "g-1", "kind": "family", "role": "guardian"}
PSY = {"participant_id": "s-psy", "kind": "professional", "role": "psychologist"}
FW = {"participant_id": "s-fw", "kind": "professional", "role": "family_worker"}


def events() -> list[tuple[str, dict[str, Any]]]:
    c1, c2 = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
    m1, m2 = "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa", "bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb"
    return [
        ("referral.received", {"case_id": c1, "received_at": "2026-03-02T08:00:00Z", "decision_due_by": "2026-03-11"}),
        ("referral.received", {"case_id": c2, "received_at": "2026-03-03T08:00:00Z", "decision_due_by": None}),
        (
            "assessment.started",
            {"case_id": c1, "complete_by": "2026-06-02", "occurred_at": "2026-03-04T08:00:00Z", "event_id": "e1"},
        ),
        (
            "meeting.convened",
            {
                "case_id": c1,
                "meeting_id": m1,
                "starts_at": "2026-03-09T08:00:00Z",
                "participants": [FAMILY, PSY],
                "municipality": "Porvoo",
            },
        ),
        (
            "meeting.rescheduled",
            {"case_id": c1, "meeting_id": m1, "sequence": 1, "starts_at": "2026-03-10T08:00:00Z", "participants": [FAMILY, FW]},
        ),
        (
            "meeting.held",
            {
                "case_id": c1,
                "meeting_id": m1,
                "attendance": [{"participant_id": "g-1", "present": True}, {"participant_id": "s-fw", "present": True}],
            },
        ),
        (
            "meeting.convened",
            {
                "case_id": c2,
                "meeting_id": m2,
                "starts_at": "2026-03-12T08:00:00Z",
                "participants": [FAMILY, PSY],
                "municipality": "Porvoo",
            },
        ),
        ("meeting.cancelled", {"case_id": c2, "meeting_id": m2}),
        (
            "roster.professional_changed",
            {
                "professional_id": "s-fw",
                "unit": "Perhetyö",
                "team": "t-1",
                "occurred_at": "2026-01-01T00:00:00Z",
                "event_id": "r1",
            },
        ),
        (
            "roster.professional_changed",
            {
                "professional_id": "s-fw",
                "unit": "Perhetyö (uusi)",
                "team": "t-1",
                "occurred_at": "2026-02-01T00:00:00Z",
                "event_id": "r2",
            },
        ),
        (
            "roster.professional_changed",
            {
                "professional_id": "s-psy",
                "unit": "Perheneuvola",
                "team": None,
                "occurred_at": "2026-01-01T00:00:00Z",
                "event_id": "r3",
            },
        ),
    ]


def fold(evs: list[tuple[str, dict[str, Any]]]) -> MeetingStatisticsModel:
    model = MeetingStatisticsModel()
    for event_type, ev in evs:
        model.apply(event_type, ev)
    return model


def test_the_figures_follow_the_reschedule_the_cancellation_the_assessment_and_the_last_roster_change() -> None:
    model = fold(events())
    result = stats.compute(model.meetings(), model.convenings(), model.units())
    assert result["meetings_held"] == 1
    assert result["per_unit_month"] == [{"municipality": "Porvoo", "month": "2026-03", "unit": "Perhetyö (uusi)", "meetings": 1}]
    assert result["per_team_month"] == [{"municipality": "Porvoo", "month": "2026-03", "team": "t-1", "meetings": 1}]
    assert result["referral_to_first_meeting_days"]["median"] == 8.0
    assert result["held_before_deadline"] == {"cases_with_deadline": 1, "in_time": 1, "share": 1.0}  # by the assessment's day


@pytest.mark.parametrize("seed", range(8))
def test_the_events_in_any_order_give_the_same_facts(seed: int) -> None:
    evs = events()
    shuffled = evs[:]
    random.Random(seed).shuffle(shuffled)
    assert fold(shuffled).facts == fold(evs).facts
