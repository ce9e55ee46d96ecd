"""What a statistics fact record is found by (``index_of``): its kind, the Helsinki months it counts
in, and its case, as the figures count it."""

from __future__ import annotations

from services.meetings.joint_statistics import JointWorkStatistics
from services.meetings.meeting_statistics import MeetingStatisticsModel

CASE = "11111111-1111-1111-1111-111111111111"


def test_a_held_meeting_counts_in_the_helsinki_month_it_started() -> None:
    held = {"case": CASE, "starts_at": "2026-03-31T21:30:00+00:00", "held": True}
    assert MeetingStatisticsModel.index_of("meeting:m1", held) == {
        "kind": "meeting",
        "month": "2026-04",
        "last_month": None,
        "case_id": CASE,
    }


def test_a_meeting_not_held_or_not_yet_convened_counts_in_no_month() -> None:
    assert (
        MeetingStatisticsModel.index_of("meeting:m1", {"case": CASE, "starts_at": "2026-03-02T08:00:00+00:00"})["month"] is None
    )
    assert MeetingStatisticsModel.index_of("meeting:m1", {"held": True, "attendance": []})["month"] is None


def test_cases_and_the_roster_count_in_no_month_and_name_no_case() -> None:
    for key in ("case:c1", "pro:s-1"):
        index = MeetingStatisticsModel.index_of(key, {"opened_at": "2026-03-02T08:00:00+00:00"})
        assert index == {"kind": key.split(":")[0], "month": None, "last_month": None, "case_id": None}


def test_a_joint_work_meeting_counts_in_the_month_it_started_or_else_was_held() -> None:
    started = {"case": CASE, "starts_at": "2026-04-30T22:00:00+00:00", "held_at": "2026-05-02T08:00:00+00:00"}
    assert JointWorkStatistics.index_of("meeting:m1", started)["month"] == "2026-05"  # 01:00 on 1 May in Helsinki
    assert (
        JointWorkStatistics.index_of("meeting:m1", {"case": CASE, "held_at": "2026-04-02T08:00:00+00:00"})["month"] == "2026-04"
    )
    assert JointWorkStatistics.index_of("meeting:m1", {"case": CASE, "starts_at": "2026-04-02T08:00:00+00:00"})["month"] is None


def test_a_service_counts_in_the_month_it_started_and_the_month_its_start_fell_overdue() -> None:
    both = {"case": CASE, "start_by": "2026-03-25", "overdue": True, "started_on": "2026-05-04"}
    assert JointWorkStatistics.index_of("service:s1", both) == {
        "kind": "service",
        "month": "2026-03",
        "last_month": "2026-05",
        "case_id": CASE,
    }
    same = both | {"started_on": "2026-03-30"}
    assert JointWorkStatistics.index_of("service:s1", same)["last_month"] is None
    not_overdue = {"case": CASE, "start_by": "2026-03-25", "started_on": "2026-03-20"}
    assert JointWorkStatistics.index_of("service:s1", not_overdue)["month"] == "2026-03"
    waiting = {"case": CASE, "start_by": "2026-03-25"}
    assert JointWorkStatistics.index_of("service:s1", waiting)["month"] is None


def test_follow_ups_count_in_their_month_and_stages_in_none() -> None:
    assert JointWorkStatistics.index_of("overdue:p1:x", {"case": CASE, "month": "2026-02"})["month"] == "2026-02"
    assert JointWorkStatistics.index_of("stage:Porvoo", {"history": {"2026-01-10T08:00:00+00:00|e": "trial"}})["month"] is None
