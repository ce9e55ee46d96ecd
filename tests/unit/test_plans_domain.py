from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest

from services.plans.domain import agree, followup_fired
from shared.errors import DomainError

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)


def args(**kw):  # type: ignore[no-untyped-def]
    base = dict(
        case_id=uuid4(), meeting_id=None, recorded_by="staff-1", now=NOW,
        changes_needed=["Mornings without conflict"],
        actions={"home": [{"what": "Picture schedule", "who": "parent", "where": None}], "everyday_environment": [], "elsewhere": []},
        worker_contacts_family="Phone call on Mondays", family_contacts_worker="Text message",
        responsible_workers=[{"worker_id": "staff-1", "organisation": "City", "public_service": True}],
        next_contact_at=NOW + timedelta(days=14), family_contacts=[],
    )
    base.update(kw)
    return base


def refused(**kw) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(DomainError) as e:
        agree(**args(**kw))
    return e.value.code, e.value.field


def test_a_complete_plan_is_version_one_with_its_timer() -> None:
    p = agree(**args())
    assert p.version == 1 and p.status == "active"
    assert p.timer_subject() == f"timers.plans.followup.{p.plan_id}"


def test_missing_parts_are_named() -> None:
    assert refused(changes_needed=[]) == ("plan_incomplete", "changes_needed")
    assert refused(actions={"home": [], "everyday_environment": [], "elsewhere": []}) == ("plan_incomplete", "actions")
    assert refused(responsible_workers=[]) == ("plan_incomplete", "responsible_workers")
    assert refused(responsible_workers=[{"worker_id": "x", "organisation": "NGO", "public_service": False}]) == (
        "responsible_not_public", "responsible_workers.0.public_service")
    assert refused(next_contact_at=NOW - timedelta(minutes=1)) == ("in_past", "next_contact_at")


def test_stale_followup_timer_is_ignored() -> None:
    p = agree(**args())
    assert not followup_fired(p, plan_version=2, now=NOW)
    assert followup_fired(p, plan_version=1, now=NOW)
    assert not followup_fired(None, plan_version=1, now=NOW)
