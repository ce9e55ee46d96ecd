from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from services.meetings.domain import Convening, convene, record_held
from shared.errors import DomainError

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
FAMILY = {"participant_id": "guardian-1", "kind": "family", "role": "guardian"}
PRO = {"participant_id": "staff-1", "kind": "professional", "role": "psychologist"}


def convening(**kw):  # type: ignore[no-untyped-def]
    base = dict(
        case_id=uuid4(),
        municipality="Testilä",
        language="fi",
        interpreter_needed=False,
        consent_to_convene=True,
        statutory=False,
        opened_at=NOW,
    )
    base.update(kw)
    return Convening(**base)


def do_convene(c=None, participants=None, busy=frozenset(), start=NOW + timedelta(days=1)):  # type: ignore[no-untyped-def]
    return convene(
        c or convening(),
        now=NOW,
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        room="A1",
        participants=participants or [FAMILY, PRO],
        convened_by="staff-1",
        busy=set(busy),
    )


def code(fn) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(DomainError) as e:
        fn()
    return e.value.code


def test_convene_books_room_and_professionals_not_family() -> None:
    m = do_convene()
    assert m.resources() == ["room:A1", "person:staff-1"]


def test_refusals() -> None:
    assert (
        code(lambda: convene(None, now=NOW, starts_at=NOW, ends_at=NOW, room="A", participants=[], convened_by="x", busy=set()))
        == "unknown_case"
    )
    assert code(lambda: do_convene(convening(consent_to_convene=False))) == "consent_missing"
    assert code(lambda: do_convene(start=NOW - timedelta(hours=1))) == "in_past"
    assert code(lambda: do_convene(participants=[PRO])) == "family_missing"
    assert code(lambda: do_convene(participants=[FAMILY])) == "professional_missing"
    assert code(lambda: do_convene(participants=[FAMILY, PRO, PRO])) == "duplicate_participant"
    assert code(lambda: do_convene(busy={"person:staff-1"})) == "double_booked"


def test_child_protection_needs_no_consent_to_convene() -> None:
    assert do_convene(convening(consent_to_convene=False, statutory=True)).status == "convened"


def test_record_held() -> None:
    m = do_convene()
    later = m.starts_at + timedelta(minutes=5)
    assert (
        code(lambda: record_held(m, now=NOW, attendance=[], child_heard=True, responsible_worker_ids=["staff-1"]))
        == "not_started"
    )
    assert (
        code(
            lambda: record_held(
                m,
                now=later,
                attendance=[{"participant_id": "nobody", "present": True}],
                child_heard=True,
                responsible_worker_ids=["staff-1"],
            )
        )
        == "unknown_participant"
    )
    assert (
        code(lambda: record_held(m, now=later, attendance=[], child_heard=True, responsible_worker_ids=["guardian-1"]))
        == "responsible_not_professional"
    )
    held = record_held(
        m,
        now=later,
        attendance=[{"participant_id": "guardian-1", "present": True}],
        child_heard=True,
        responsible_worker_ids=["staff-1"],
    )
    assert held.family_present and held.status == "held"
    assert (
        code(lambda: record_held(held, now=later, attendance=[], child_heard=True, responsible_worker_ids=["staff-1"]))
        == "already_held"
    )


# -- roster, consent, RSVP and changes ---------------------------------------------------------------
from datetime import UTC, date  # noqa: E402

from services.meetings import domain  # noqa: E402
from services.meetings.adapters import cells  # noqa: E402
from services.meetings.slots import Professional, Room  # noqa: E402

ROSTER = {
    "staff-1": Professional(
        "staff-1",
        "Testilä",
        ("psychologist",),
        ("fi",),
        "Perheneuvola",
        contact={"contact_id": "staff-1", "role": "psychologist", "email": "p@example.com"},
    ),
    "staff-2": Professional("staff-2", "Testilä", ("family_worker",), ("sv",), "Perhetyö"),
}
GUARDIAN = {"contact_id": "guardian-1", "role": "guardian", "language": "fi"}
REFERRER = {"contact_id": "referrer", "role": "referrer", "language": "fi"}


def case(**kw):  # type: ignore[no-untyped-def]
    return convening(family_contacts=[GUARDIAN], referrer=REFERRER, **kw)


def strict(c=None, participants=None, room=Room("A1", "Testilä", 3, "Perhekeskus"), **kw):  # type: ignore[no-untyped-def]
    start = NOW + timedelta(days=1)
    return convene(
        c or case(),
        now=NOW,
        starts_at=start,
        ends_at=start + timedelta(hours=1),
        room="A1",
        participants=participants or [FAMILY, PRO],
        convened_by="staff-1",
        busy=set(),
        roster=ROSTER,
        room_info=room,
        check_room=True,
        **kw,
    )


def test_participants_must_be_in_roster_or_family_contacts() -> None:
    m = strict()
    assert m.participant("staff-1")["contact"]["email"] == "p@example.com"  # filled from the roster
    assert m.participant("guardian-1")["contact"]["contact_id"] == "guardian-1"
    stranger = {"participant_id": "staff-x", "kind": "professional", "role": "psychologist"}
    assert code(lambda: strict(participants=[FAMILY, PRO, stranger])) == "unknown_participant"
    other_family = {"participant_id": "guardian-9", "kind": "family", "role": "guardian"}
    assert code(lambda: strict(participants=[other_family, PRO])) == "unknown_participant"


def test_room_must_exist_and_seat_everyone() -> None:
    assert code(lambda: strict(room=None)) == "unknown_room"
    fw = {"participant_id": "staff-2", "kind": "professional", "role": "family_worker"}
    many = [FAMILY, PRO, fw, {"participant_id": "referrer", "kind": "referrer", "role": "referrer"}]
    assert code(lambda: strict(participants=many, referrer_consent=True)) == "room_too_small"


def test_referrer_needs_the_familys_consent() -> None:
    ref = {"participant_id": "referrer", "kind": "referrer", "role": "referrer"}
    assert code(lambda: strict(participants=[FAMILY, PRO, ref])) == "referrer_consent_missing"
    assert strict(participants=[FAMILY, PRO, ref], referrer_consent=True).participant("referrer")["kind"] == "referrer"


def test_interpreter_when_a_professional_lacks_the_language() -> None:
    fw = {"participant_id": "staff-2", "kind": "professional", "role": "family_worker"}
    assert not strict().interpreter_needed
    assert strict(participants=[FAMILY, fw]).interpreter_needed


def test_consent_ledger() -> None:
    today = date(2026, 11, 23)
    intake = {"consent_id": "intake", "purpose": "convene_team", "withdrawn": False, "valid_until": None}
    assert domain.consent_active([intake], "convene_team", today)
    assert not domain.consent_active([intake], "invite_referrer", today)
    assert not domain.consent_active([dict(intake, withdrawn=True)], "convene_team", today)
    expired = {"consent_id": "c1", "purpose": "invite_referrer", "withdrawn": False, "valid_until": "2026-11-22"}
    assert not domain.consent_active([expired], "invite_referrer", today)
    assert domain.consent_active([dict(expired, valid_until="2026-11-23")], "invite_referrer", today)
    # the ledger decides over the intake flag; statutory work needs no consent
    assert code(lambda: strict(consent=False)) == "consent_missing"
    assert strict(case(statutory=True), consent=False).status == "convened"


def test_first_assessment_meeting() -> None:
    c = case(assessment_started_on=date(2026, 11, 23))
    assert not domain.is_first_assessment_meeting(case(), [])
    assert domain.is_first_assessment_meeting(c, [])
    m = strict(c)
    assert not domain.is_first_assessment_meeting(c, [m])
    m.status = "cancelled"
    assert domain.is_first_assessment_meeting(c, [m])


def test_rsvp_state_changes() -> None:
    m = strict()
    m, changed = domain.respond(m, "staff-1", "accepted")
    assert changed and m.responses == {"staff-1": "accepted"}
    m, changed = domain.respond(m, "staff-1", "accepted")
    assert not changed  # the same answer again is no change
    m, changed = domain.respond(m, "staff-1", "declined")
    assert changed and m.responses["staff-1"] == "declined"
    assert code(lambda: domain.respond(m, "nobody", "accepted")) == "unknown_participant"
    domain.cancel(m, reason="family ill")
    assert code(lambda: domain.respond(m, "staff-1", "accepted")) == "not_open"
    assert code(lambda: domain.respond(None, "staff-1", "accepted")) == "unknown_meeting"


def test_reschedule_replace_and_cancel() -> None:
    m = strict()
    domain.respond(m, "guardian-1", "accepted")
    later = m.starts_at + timedelta(days=1)
    assert (
        code(lambda: domain.reschedule(m, now=NOW, starts_at=NOW - timedelta(hours=1), ends_at=NOW, room=None, busy=set()))
        == "in_past"
    )
    assert (
        code(
            lambda: domain.reschedule(
                m, now=NOW, starts_at=later, ends_at=later + timedelta(hours=1), room=None, busy={"room:A1"}
            )
        )
        == "double_booked"
    )
    m = strict()
    m = domain.reschedule(m, now=NOW, starts_at=later, ends_at=later + timedelta(hours=1), room="B2", busy=set())
    assert (m.sequence, m.room, m.responses) == (1, "B2", {})
    fw = {"participant_id": "staff-2", "kind": "professional", "role": "psychologist"}
    m = domain.replace_participant(m, old_id="staff-1", new=fw, busy=set())
    assert m.sequence == 2 and "staff-1" not in m.participant_ids() and "person:staff-2" in m.resources()
    m = domain.cancel(m, reason="not needed")
    assert (m.status, m.cancel_reason, m.sequence) == ("cancelled", "not needed", 3)
    assert code(lambda: domain.cancel(m, reason="again")) == "not_open"
    assert (
        code(lambda: record_held(m, now=later, attendance=[], child_heard=True, responsible_worker_ids=["staff-1"]))
        == "cancelled"
    )


def test_record_held_with_wellbeing_star_and_feedback() -> None:
    m = strict()
    at = m.starts_at + timedelta(minutes=70)
    star = [{"area": "child_self_view", "score": 6, "note": "x"}, {"area": "child_self_view", "score": 7, "note": None}]
    assert (
        code(lambda: record_held(m, now=at, attendance=[], child_heard=True, responsible_worker_ids=["staff-1"], wellbeing=star))
        == "duplicate_area"
    )
    held = record_held(
        m,
        now=at,
        attendance=[{"participant_id": "guardian-1", "present": True}],
        child_heard=False,
        responsible_worker_ids=["staff-1"],
        wellbeing=star[:1],
        feedback={"rating": 5, "comment": "hyvä"},
    )
    assert held.wellbeing[0]["score"] == 6 and held.feedback == {"rating": 5, "comment": "hyvä"}


def test_booking_cells_round_outwards() -> None:
    s = datetime(2026, 11, 23, 8, 2, 30, tzinfo=UTC)
    cs = cells(s, s + timedelta(minutes=10))
    assert cs[0] == datetime(2026, 11, 23, 8, 0, tzinfo=UTC) and cs[-1] == datetime(2026, 11, 23, 8, 10, tzinfo=UTC)
    assert len(cells(datetime(2026, 11, 23, 8, 0, tzinfo=UTC), datetime(2026, 11, 23, 9, 0, tzinfo=UTC))) == 12
