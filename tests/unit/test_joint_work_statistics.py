"""The joint-work statistics read model (services/meetings/joint_statistics.py): figures per
municipality and month, the same whatever order the events arrive in, and aggregates only."""

from __future__ import annotations

import itertools
import random
from typing import Any

import pytest

from services.meetings.joint_statistics import JointWorkStatistics, chart, p90, to_csv
from shared.policy import Access, Caller, decide


def events() -> list[tuple[str, dict[str, Any]]]:
    guardian = {"participant_id": "g-1", "kind": "family", "role": "guardian"}
    psy = {"participant_id": "s-1", "kind": "professional", "role": "psychologist"}
    fw = {"participant_id": "s-2", "kind": "professional", "role": "family_worker"}
    return [
        ("referral.received", {"case_id": "c1", "municipality": "Porvoo", "received_at": "2026-01-30T10:00:00Z"}),
        ("referral.received", {"case_id": "c1", "municipality": "Porvoo", "received_at": "2026-01-29T10:00:00Z"}),
        ("referral.received", {"case_id": "c2", "municipality": "Porvoo", "received_at": "2026-01-20T10:00:00Z"}),
        ("referral.case_transferred", {"case_id": "c2", "municipality": "Sipoo"}),
        (
            "meeting.convened",
            {"case_id": "c1", "meeting_id": "m1", "starts_at": "2026-02-02T08:00:00Z", "participants": [guardian, psy]},
        ),
        (
            "meeting.rescheduled",
            {
                "case_id": "c1",
                "meeting_id": "m1",
                "sequence": 1,
                "starts_at": "2026-02-03T08:00:00Z",
                "participants": [guardian, fw],
            },
        ),
        (
            "meeting.held",
            {
                "case_id": "c1",
                "meeting_id": "m1",
                "held_at": "2026-02-03T09:00:00Z",
                "family_present": True,
                "attendance": [{"participant_id": "g-1", "present": True}, {"participant_id": "s-2", "present": False}],
                "municipality": "Porvoo",
            },
        ),
        (
            "meeting.feedback_recorded",
            {"case_id": "c1", "meeting_id": "m1", "given_by": "family", "rating": 4, "felt_heard": True},
        ),
        (
            "meeting.convened",
            {"case_id": "c2", "meeting_id": "m2", "starts_at": "2026-01-31T22:30:00Z", "participants": [guardian, psy]},
        ),
        (
            "meeting.held",
            {
                "case_id": "c2",
                "meeting_id": "m2",
                "held_at": "2026-02-01T00:00:00Z",
                "family_present": False,
                "attendance": [{"participant_id": "s-1", "present": True}],
            },
        ),
        (
            "meeting.adoption_stage_recorded",
            {"municipality": "Porvoo", "stage": "planning", "occurred_at": "2026-01-05T10:00:00Z", "event_id": "01"},
        ),
        (
            "meeting.adoption_stage_recorded",
            {"municipality": "Porvoo", "stage": "trial", "occurred_at": "2026-03-05T10:00:00Z", "event_id": "02"},
        ),
        ("followup.recorded", {"case_id": "c1", "event_id": "e1", "occurred_at": "2026-02-10T10:00:00Z"}),
        ("followup.overdue", {"case_id": "c1", "plan_id": "p1", "due_at": "2026-02-12T10:00:00Z"}),
        (
            "plan.service_status_recorded",
            {"case_id": "c1", "service_id": "v1", "status": "accepted", "on": "2026-02-04", "start_by": "2026-02-09"},
        ),
        (
            "plan.service_status_recorded",
            {
                "case_id": "c1",
                "service_id": "v1",
                "status": "started",
                "on": "2026-02-14",
                "start_by": "2026-02-09",
                "days_late": 5,
            },
        ),
        ("plan.service_start_overdue", {"case_id": "c1", "service_id": "v1", "start_by": "2026-02-09"}),
        ("referral.assigned", {"case_id": "c1"}),  # not a statistics event
    ]


def fold(evs: list[tuple[str, dict[str, Any]]]) -> JointWorkStatistics:
    model = JointWorkStatistics()
    for event_type, ev in evs:
        model.apply(event_type, ev)
    return model


def test_figures_per_municipality_and_month_follow_the_events() -> None:
    rows = {(r["municipality"], r["month"]): r for r in fold(events()).figures()}
    assert sorted(rows) == [("Porvoo", "2026-01"), ("Porvoo", "2026-02"), ("Porvoo", "2026-03"), ("Sipoo", "2026-02")]
    feb = rows[("Porvoo", "2026-02")]
    # The first contact (29.1.) to the rescheduled meeting (3.2. 08:00 UTC): 4.92 days.
    assert (feb["first_meetings"], feb["contact_to_first_meeting_median_days"]) == (1, 4.92)
    # Invited as rescheduled (the psychologist replaced by the family worker), attended as recorded.
    assert (feb["invited"], feb["attended"], feb["invited_by_kind"], feb["attended_by_kind"]) == (
        2,
        1,
        {"family": 1, "professional": 1},
        {"family": 1},
    )
    assert (feb["invited_per_meeting"], feb["attended_per_meeting"], feb["meetings_fully_attended"]) == (2, 1, 0)
    assert (feb["feedback_given"], feb["feedback_mean_rating"], feb["felt_heard_share"]) == (1, 4, 1.0)
    assert (feb["adoption_stage"], feb["family_present_share"], feb["followups_on_time_share"]) == ("planning", 1.0, 0.5)
    assert feb["practice_indicator"] == 0.75
    assert (feb["services_started"], feb["services_started_late"], feb["service_start_delay_max_days"]) == (1, 1, 5)
    assert feb["services_start_overdue"] == 1
    # A meeting at 00:30 Helsinki on 1.2. counts in February; the transferred case in its new municipality.
    sipoo = rows[("Sipoo", "2026-02")]
    assert (sipoo["meetings_held"], sipoo["meetings_with_family"], sipoo["first_meetings"]) == (1, 0, 1)
    assert rows[("Porvoo", "2026-03")]["adoption_stage"] == "trial"
    assert rows[("Porvoo", "2026-01")]["adoption_stage"] == "planning"


@pytest.mark.parametrize("seed", range(8))
def test_the_events_in_any_order_give_the_same_facts(seed: int) -> None:
    evs = events()
    shuffled = evs[:]
    random.Random(seed).shuffle(shuffled)
    assert fold(shuffled).facts == fold(evs).facts


def test_p90_interpolates_between_closest_ranks() -> None:
    assert p90([3.0]) == 3.0
    assert p90([1.0, 2.0]) == pytest.approx(1.9)
    assert p90([float(x) for x in range(1, 11)]) == pytest.approx(9.1)


def test_csv_and_chart_carry_no_ids_and_label_in_three_languages() -> None:
    rows = fold(events()).figures("Porvoo")
    text = to_csv(rows)
    assert text.splitlines()[0].startswith("municipality,month,first_meetings")
    for lang, stage in (("fi", "suunnitellaan"), ("sv", "planeras"), ("en", "being planned")):
        svg = chart(rows, lang)
        assert stage in svg
        for secret in ("c1", "m1", "g-1", "s-2", "v1"):
            assert f">{secret}<" not in svg and secret not in text.split("\n", 1)[1].split(",")
    assert "<title>" in chart([], "sv") and "Inga uppgifter" in chart([], "sv")
    assert "Yhteinen työ perheiden kanssa" in chart(rows, "de")  # an unknown language reads Finnish


def test_only_statisticians_team_leads_and_roster_admins_record_the_adoption_stage() -> None:
    access = Access("record_statistics", personal=False, case=None)
    for roles, allowed in itertools.chain(
        ((r, True) for r in ({"statistician"}, {"team_lead"}, {"roster_admin"})),
        ((r, False) for r in ({"worker"}, {"social_worker"}, {"ops"})),
    ):
        assert decide(Caller("x", "staff", frozenset(roles)), access).allowed is allowed
    assert not decide(Caller("g", "guardian", guardian_key="k"), access).allowed
