"""THL's statutory figures from counters per municipality and month: kept event by event as a case's
facts change, they give the same figures as counting every case's facts afresh (what a rebuild does)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.referral.statistics import StatutoryStatistics, add_counts, change, contributions, figures

MUNICIPALITIES = ("Testilä", "Porvoo", "Loviisa")
DAYS = ("2026-11-28", "2026-11-30", "2026-12-01", "2026-12-19", "2027-01-04")


def event(kind: str, case: str, muni: str, day: str, in_time: bool) -> tuple[str, dict[str, Any]]:
    if kind == "referral.received":
        return kind, {"case_id": case, "municipality": muni}
    if kind == "referral.case_transferred":
        return kind, {"case_id": case, "municipality": muni}
    if kind == "referral.decision_recorded":
        return kind, {
            "case_id": case,
            "decided_on": day,
            "within_time": in_time,
            "complete_by": "2027-01-01" if in_time else None,
        }
    if kind == "assessment.started":
        return kind, {"case_id": case, "complete_by": day}
    return kind, {"case_id": case, "completed_on": day}


events = st.lists(
    st.builds(
        event,
        st.sampled_from(
            (
                "referral.received",
                "referral.case_transferred",
                "referral.decision_recorded",
                "assessment.started",
                "assessment.completed",
            )
        ),
        st.sampled_from(("c1", "c2", "c3", "c4")),
        st.sampled_from(MUNICIPALITIES),
        st.sampled_from(DAYS),
        st.booleans(),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_counters_kept_change_by_change_give_the_figures_of_counting_every_case_afresh(evs: list) -> None:
    live: dict[tuple[str, str], list[int]] = {}
    model = StatutoryStatistics()
    for kind, ev in evs:
        before = dict(model.facts.get(ev["case_id"], {})) or None
        case = model.apply(kind, ev)
        assert case is not None
        add_counts(live, change(before, model.facts[case]))
    assert figures(live) == model.figures()
    for muni in MUNICIPALITIES:
        assert figures(live, muni) == model.figures(muni)


def test_a_transfer_moves_a_cases_decision_to_the_new_municipality() -> None:
    before = {"municipality": "Testilä", "decided_on": "2026-12-01", "decided_in_time": True}
    after = dict(before, municipality="Porvoo")
    assert change(before, after) == {("Testilä", "2026-12"): [-1, -1, 0, 0], ("Porvoo", "2026-12"): [1, 1, 0, 0]}
    assert change(after, after) == {}


def test_a_case_counts_its_decision_and_its_assessment_in_the_months_they_were_made() -> None:
    facts = {
        "municipality": "Testilä",
        "decided_on": "2026-11-30",
        "decided_in_time": False,
        "complete_by": "2027-02-27",
        "completed_on": "2026-12-19",
    }
    assert contributions(facts) == {("Testilä", "2026-11"): [1, 0, 0, 0], ("Testilä", "2026-12"): [0, 0, 1, 1]}


def test_a_month_whose_counters_all_went_back_to_zero_is_not_published() -> None:
    counts = {("Testilä", "2026-12"): [0, 0, 0, 0], ("Porvoo", "2026-12"): [2, 1, 0, 0]}
    assert figures(counts) == [
        {
            "municipality": "Porvoo",
            "month": "2026-12",
            "decisions": 2,
            "decisions_in_time": 1,
            "assessments_completed": 0,
            "assessments_in_time": 0,
            "decisions_in_time_share": 0.5,
            "assessments_in_time_share": None,
        }
    ]


def test_an_assessment_started_with_no_decision_recorded_counts_as_the_decision_on_its_start_day() -> None:
    model = StatutoryStatistics()
    model.apply("referral.received", {"case_id": "c1", "municipality": "Testilä", "decision_due_by": "2026-12-02"})
    model.apply("assessment.started", {"case_id": "c1", "started_on": "2026-12-01", "complete_by": "2027-02-23"})
    model.apply("referral.received", {"case_id": "c2", "municipality": "Testilä", "decision_due_by": "2026-12-02"})
    model.apply("assessment.started", {"case_id": "c2", "started_on": "2026-12-03", "complete_by": "2027-02-23"})
    # Not statutory: no decision clock, so its start is no statutory decision.
    model.apply("referral.received", {"case_id": "c3", "municipality": "Testilä", "decision_due_by": None})
    model.apply("assessment.started", {"case_id": "c3", "started_on": "2026-12-01", "complete_by": "2027-02-23"})
    # A decision recorded first keeps its own day and timeliness.
    model.apply("referral.received", {"case_id": "c4", "municipality": "Testilä", "decision_due_by": "2026-12-02"})
    model.apply("referral.decision_recorded", {"case_id": "c4", "decided_on": "2026-11-30", "within_time": True})
    model.apply("assessment.started", {"case_id": "c4", "started_on": "2026-12-09", "complete_by": "2027-02-23"})
    [row] = [r for r in model.figures() if r["month"] == "2026-12"]
    assert (row["decisions"], row["decisions_in_time"]) == (2, 1)  # c1 in time, c2 late; not c3, not c4
    assert model.counts()[("Testilä", "2026-11")][:2] == [1, 1]
