from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest

from services.plans import domain
from services.plans.domain import (
    Consent,
    FollowupPolicy,
    Measurement,
    PlanIncomplete,
    agree,
    close,
    followup_fired,
    grace_ended,
    is_overdue,
    record_followup,
    reschedule,
    revise,
    share_targets,
    timers,
)
from shared.errors import DomainError

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
TODAY = date(2026, 11, 23)


def frame(**kw):  # type: ignore[no-untyped-def]
    base = dict(
        changes_needed=["Mornings without conflict"],
        actions={
            "home": [{"what": "Picture schedule", "who": "parent", "where": None}],
            "everyday_environment": [],
            "elsewhere": [],
        },
        worker_contacts_family="Phone call on Mondays",
        family_contacts_worker="Text message",
        responsible_workers=[{"worker_id": "staff-1", "organisation": "City", "public_service": True}],
        next_contact_at=NOW + timedelta(days=14),
        family_contacts=[{"contact_id": "guardian-1", "role": "guardian", "language": "sv"}],
    )
    base.update(kw)
    return base


def args(**kw):  # type: ignore[no-untyped-def]
    return dict(case_id=uuid4(), meeting_id=None, recorded_by="staff-1", now=NOW, **frame(**kw))


def problems(**kw) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with pytest.raises(PlanIncomplete) as e:
        agree(**args(**kw))
    return [(p.code, p.field) for p in e.value.problems]


def refused(**kw) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(DomainError) as e:
        agree(**args(**kw))
    return e.value.code, e.value.field


# -- the frame ------------------------------------------------------------------------------------


def test_a_complete_plan_is_version_one_with_its_timer() -> None:
    p = agree(**args())
    assert p.version == 1 and p.status == "active"
    assert p.timer_subject() == f"timers.plans.followup.{p.plan_id}"
    assert p.snapshot()["version"] == 1 and p.snapshot()["changes_needed"] == ["Mornings without conflict"]


def test_missing_parts_are_named() -> None:
    assert refused(changes_needed=[]) == ("plan_incomplete", "changes_needed")
    assert refused(actions={"home": [], "everyday_environment": [], "elsewhere": []}) == ("plan_incomplete", "actions")
    assert refused(responsible_workers=[]) == ("plan_incomplete", "responsible_workers")
    assert refused(responsible_workers=[{"worker_id": "x", "organisation": "NGO", "public_service": False}]) == (
        "responsible_not_public",
        "responsible_workers.0.public_service",
    )
    assert refused(next_contact_at=NOW - timedelta(minutes=1)) == ("in_past", "next_contact_at")
    assert refused(next_contact_at=None) == ("plan_incomplete", "next_contact_at")
    assert refused(worker_contacts_family="  ") == ("plan_incomplete", "worker_contacts_family")
    assert refused(family_contacts_worker="") == ("plan_incomplete", "family_contacts_worker")
    assert refused(next_contact_at=NOW + timedelta(days=400)) == ("too_far", "next_contact_at")
    assert refused(next_contact_at=datetime(2026, 12, 1, 10, 0)) == ("naive_datetime", "next_contact_at")


def test_an_empty_plan_is_refused_with_every_missing_part_at_once() -> None:
    got = problems(
        changes_needed=[],
        actions={},
        worker_contacts_family="",
        family_contacts_worker="",
        responsible_workers=[],
        next_contact_at=None,
    )
    assert got == [
        ("plan_incomplete", "changes_needed"),
        ("plan_incomplete", "actions"),
        ("plan_incomplete", "worker_contacts_family"),
        ("plan_incomplete", "family_contacts_worker"),
        ("plan_incomplete", "responsible_workers"),
        ("plan_incomplete", "next_contact_at"),
    ]


def test_every_action_says_who_and_what_and_elsewhere_where() -> None:
    got = problems(
        actions={
            "home": [{"what": "", "who": "parent", "where": None}],
            "everyday_environment": [{"what": "Quiet corner", "who": "", "where": ""}],
            "elsewhere": [{"what": "Peer group", "who": "mother", "where": None}],
        }
    )
    assert got == [
        ("plan_incomplete", "actions_at_home.0.what"),
        ("plan_incomplete", "actions_in_everyday_environment.0.who"),
        ("plan_incomplete", "actions_elsewhere.0.where"),
    ]


def test_messages_are_in_three_languages_and_carry_no_input() -> None:
    with pytest.raises(PlanIncomplete) as e:
        agree(**args(changes_needed=[], worker_contacts_family=""))
    for p in e.value.problems:
        assert set(p.message) == {"fi", "sv", "en"}
    assert "Mornings" not in str(e.value)


def test_responsible_worker_or_pair_from_public_service() -> None:
    w = {"organisation": "City", "public_service": True}
    assert agree(**args(responsible_workers=[{"worker_id": "a", **w}, {"worker_id": "b", **w}])).responsible_worker_ids == [
        "a",
        "b",
    ]
    assert ("duplicate", "responsible_workers.1.worker_id") in problems(
        responsible_workers=[{"worker_id": "a", **w}, {"worker_id": "a", **w}]
    )
    assert ("too_many_responsible", "responsible_workers") in problems(responsible_workers=[{"worker_id": x, **w} for x in "abc"])


# -- versions -------------------------------------------------------------------------------------


def test_revision_is_a_new_version_and_keeps_the_old_snapshot() -> None:
    p = agree(**args())
    v1 = p.snapshot()
    revise(
        p,
        recorded_by="staff-2",
        now=NOW + timedelta(days=1),
        expected_version=1,
        **frame(changes_needed=["Evenings calmer"], next_contact_at=NOW + timedelta(days=20)),
    )
    assert p.version == 2
    v2 = p.snapshot()
    assert v1["changes_needed"] == ["Mornings without conflict"] and v1["version"] == 1
    assert v2["changes_needed"] == ["Evenings calmer"] and v2["recorded_by"] == "staff-2"
    assert p.next_contact_at == NOW + timedelta(days=20)


def test_revision_is_checked_like_the_first_version_and_against_conflicts() -> None:
    p = agree(**args())
    with pytest.raises(PlanIncomplete):
        revise(p, recorded_by="s", now=NOW, expected_version=1, **frame(changes_needed=[]))
    with pytest.raises(DomainError) as e:
        revise(p, recorded_by="s", now=NOW, expected_version=3, **frame())
    assert e.value.code == "version_conflict"
    assert p.version == 1


def test_closed_plan_cannot_be_revised_rescheduled_or_recorded() -> None:
    p = agree(**args())
    close(p, outcome="goals_met", recorded_by="staff-1", now=NOW)
    assert p.status == "closed" and p.outcome == "goals_met" and p.next_contact_at is None
    for attempt in (
        lambda: revise(p, recorded_by="s", now=NOW, expected_version=None, **frame()),
        lambda: reschedule(p, next_contact_at=NOW + timedelta(days=1), now=NOW),
        lambda: record_followup(p, recorded_by="staff-1", now=NOW, next_contact_at=None, meeting_requested=True),
        lambda: close(p, outcome="other", recorded_by="s", now=NOW),
    ):
        with pytest.raises(DomainError) as e:
            attempt()
        assert e.value.code == "plan_closed"


# -- follow-up rounds -----------------------------------------------------------------------------


def test_stale_followup_timer_is_ignored() -> None:
    p = agree(**args())
    assert not followup_fired(p, plan_version=2, now=NOW)
    assert followup_fired(p, plan_version=1, now=NOW)
    assert not followup_fired(p, plan_version=1, now=NOW), "never twice"
    assert not followup_fired(None, plan_version=1, now=NOW)


def test_a_moved_timer_that_fired_anyway_is_stale() -> None:
    p = agree(**args())
    old = p.next_contact_at
    assert reschedule(p, next_contact_at=NOW + timedelta(days=30), now=NOW) == old
    assert not followup_fired(p, plan_version=1, due_at=old, now=NOW)  # type: ignore[arg-type]
    assert followup_fired(p, plan_version=1, due_at=NOW + timedelta(days=30), now=NOW)


def test_recording_opens_the_next_round_and_needs_the_responsible_worker() -> None:
    p = agree(**args())
    assert followup_fired(p, plan_version=1, now=NOW)
    with pytest.raises(DomainError) as e:
        record_followup(p, recorded_by="someone-else", now=NOW, next_contact_at=NOW + timedelta(days=7), meeting_requested=False)
    assert e.value.code == "not_responsible_worker"
    with pytest.raises(DomainError) as e:
        record_followup(p, recorded_by="staff-1", now=NOW, next_contact_at=None, meeting_requested=False)
    assert e.value.field == "next_contact_at"
    record_followup(p, recorded_by="staff-1", now=NOW, next_contact_at=NOW + timedelta(days=7), meeting_requested=False)
    assert p.next_contact_at == NOW + timedelta(days=7) and p.followup_due_fired_at is None and p.followups_recorded == 1
    record_followup(p, recorded_by="staff-1", now=NOW, next_contact_at=None, meeting_requested=True)
    assert p.next_contact_at is None
    assert timers(p, NOW, FollowupPolicy()) == {"reminder": None, "due": None, "grace": None}


def test_timers_reminder_before_and_grace_after() -> None:
    p = agree(**args())
    pol = FollowupPolicy(reminder_lead=timedelta(days=1), overdue_grace=timedelta(days=2))
    t = timers(p, NOW, pol)
    assert t == {
        "reminder": p.next_contact_at - timedelta(days=1),
        "due": p.next_contact_at,  # type: ignore[operator]
        "grace": p.next_contact_at + timedelta(days=2),
    }  # type: ignore[operator]
    # a next contact sooner than the lead has no reminder (it would be in the past)
    reschedule(p, next_contact_at=NOW + timedelta(hours=3), now=NOW)
    assert timers(p, NOW, pol)["reminder"] is None
    close(p, outcome="family_ended", recorded_by="staff-1", now=NOW)
    assert set(timers(p, NOW, pol).values()) == {None}


def test_overdue_after_grace_unless_recorded() -> None:
    p = agree(**args())
    due = p.next_contact_at
    grace = timedelta(days=2)
    assert not is_overdue(p, due + timedelta(days=1), grace)  # type: ignore[operator]
    assert is_overdue(p, due + grace, grace)  # type: ignore[operator]
    assert grace_ended(p, plan_version=1, due_at=due, now=due + grace)  # type: ignore[arg-type,operator]
    assert not grace_ended(p, plan_version=1, due_at=due, now=due + grace), "overdue is told once"  # type: ignore[arg-type,operator]
    record_followup(p, recorded_by="staff-1", now=due + grace, next_contact_at=due + timedelta(days=10), meeting_requested=False)  # type: ignore[operator]
    assert not is_overdue(p, due + grace, grace)  # type: ignore[operator]
    assert not grace_ended(p, plan_version=1, due_at=due, now=due + grace)  # type: ignore[arg-type,operator]


# -- sharing --------------------------------------------------------------------------------------


def consent(case_id, recipient: str, **kw) -> Consent:  # type: ignore[no-untyped-def]
    return Consent(consent_id=uuid4(), case_id=case_id, recipient=recipient, **kw)


def test_family_in_its_language_and_responsible_workers_always_others_only_with_consent() -> None:
    p = agree(
        **args(
            other_parties=[
                {"party_id": "school-sw", "role": "school_social_worker", "contact": None},
                {
                    "party_id": "fam-counsel",
                    "role": "family_counselling",
                    "contact": {"contact_id": "fam-counsel", "role": "x", "language": "fi"},
                },
            ]
        )
    )
    targets = {t.recipient_id: t for t in share_targets(p, [], TODAY)}
    assert set(targets) == {"guardian-1", "staff-1"}
    assert targets["guardian-1"].basis == "family" and targets["guardian-1"].language == "sv"
    assert targets["staff-1"].basis == "responsible_worker"
    c = consent(p.case_id, "fam-counsel")
    targets = {t.recipient_id: t for t in share_targets(p, [c], TODAY)}
    assert set(targets) == {"guardian-1", "staff-1", "fam-counsel"}
    assert targets["fam-counsel"].basis == "consent" and targets["fam-counsel"].consent_id == c.consent_id
    assert domain.withheld_parties(p, [c], TODAY) == ["school-sw"]


def test_withdrawn_or_expired_consent_shares_nothing() -> None:
    p = agree(**args(other_parties=[{"party_id": "school-sw", "role": "school_social_worker", "contact": None}]))
    for c in (consent(p.case_id, "school-sw", withdrawn=True), consent(p.case_id, "school-sw", valid_until=date(2026, 11, 22))):
        assert "school-sw" not in {t.recipient_id for t in share_targets(p, [c], TODAY)}
    assert "school-sw" in {t.recipient_id for t in share_targets(p, [consent(p.case_id, "school-sw", valid_until=TODAY)], TODAY)}


def test_a_consented_party_not_named_in_the_plan_gets_it_without_anyone_elses_details() -> None:
    p = agree(**args())
    t = {t.recipient_id: t for t in share_targets(p, [consent(p.case_id, "youth-services")], TODAY)}["youth-services"]
    assert t.basis == "consent" and t.recipient_role == "consented_party" and t.contact is None


def test_family_language_other_gets_english_documents() -> None:
    p = agree(**args(family_contacts=[{"contact_id": "g", "role": "guardian", "language": "other"}]))
    assert p.language() == "en"
    assert agree(**args(family_language="sv", family_contacts=[])).language() == "sv"
    assert agree(**args(family_contacts=[])).language() == "fi"


# -- effectiveness --------------------------------------------------------------------------------


def test_effectiveness_area_by_area_over_time() -> None:
    all_areas = dict.fromkeys(domain.STAR_AREAS, 4)
    ms = [
        Measurement(NOW + timedelta(days=30), "followup", {**all_areas, "child_self_view": 7}),
        Measurement(NOW, "meeting", all_areas),
    ]
    e = domain.effectiveness(ms)
    assert [m["source"] for m in e["measurements"]] == ["meeting", "followup"]
    area = e["areas"]["child_self_view"]
    assert [s["score"] for s in area["series"]] == [4, 7]
    assert area["first"] == 4 and area["latest"] == 7 and area["change"] == 3
    assert e["areas"]["child_health_growth_development"]["change"] == 0


def test_a_guardian_reads_a_plan_without_the_family_s_or_other_parties_contact_details() -> None:
    content = {
        "family_contacts": [
            {
                "contact_id": "guardian-2",
                "role": "guardian",
                "language": "fi",
                "email": "g2@example.com",
                "phone": "+358401234567",
            }
        ],
        "other_parties": [{"party_id": "school-sw", "role": "school_social_worker", "contact": {"email": "s@example.com"}}],
        "responsible_workers": [{"worker_id": "w", "contact": {"email": "w@example.com"}}],
    }
    seen = domain.guardian_view(content)
    assert seen["family_contacts"] == [{"contact_id": "guardian-2", "role": "guardian", "language": "fi"}]
    assert seen["other_parties"] == [{"party_id": "school-sw", "role": "school_social_worker", "contact": None}]
    assert seen["responsible_workers"] == content["responsible_workers"]
    assert content["family_contacts"][0]["email"] == "g2@example.com", "the stored version is not changed"
