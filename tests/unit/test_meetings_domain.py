from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest

from services.meetings.domain import Convening, convene, record_held
from shared.errors import DomainError

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
FAMILY = {"participant_id": "guardian-1", "kind": "family", "role": "guardian"}
PRO = {"participant_id": "staff-1", "kind": "professional", "role": "psychologist"}


def convening(**kw):  # type: ignore[no-untyped-def]
    base = dict(case_id=uuid4(), municipality="Testilä", language="fi", interpreter_needed=False,
                consent_to_convene=True, statutory=False, opened_at=NOW)
    base.update(kw)
    return Convening(**base)


def do_convene(c=None, participants=None, busy=frozenset(), start=NOW + timedelta(days=1)):  # type: ignore[no-untyped-def]
    return convene(c or convening(), now=NOW, starts_at=start, ends_at=start + timedelta(hours=1), room="A1",
                   participants=participants or [FAMILY, PRO], convened_by="staff-1", busy=set(busy))


def code(fn) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(DomainError) as e:
        fn()
    return e.value.code


def test_convene_books_room_and_professionals_not_family() -> None:
    m = do_convene()
    assert m.resources() == ["room:A1", "person:staff-1"]


def test_refusals() -> None:
    assert code(lambda: convene(None, now=NOW, starts_at=NOW, ends_at=NOW, room="A", participants=[], convened_by="x", busy=set())) == "unknown_case"
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
    assert code(lambda: record_held(m, now=NOW, attendance=[], child_heard=True, responsible_worker_ids=["staff-1"])) == "not_started"
    assert code(lambda: record_held(m, now=later, attendance=[{"participant_id": "nobody", "present": True}], child_heard=True, responsible_worker_ids=["staff-1"])) == "unknown_participant"
    assert code(lambda: record_held(m, now=later, attendance=[], child_heard=True, responsible_worker_ids=["guardian-1"])) == "responsible_not_professional"
    held = record_held(m, now=later, attendance=[{"participant_id": "guardian-1", "present": True}], child_heard=True, responsible_worker_ids=["staff-1"])
    assert held.family_present and held.status == "held"
    assert code(lambda: record_held(held, now=later, attendance=[], child_heard=True, responsible_worker_ids=["staff-1"])) == "already_held"
