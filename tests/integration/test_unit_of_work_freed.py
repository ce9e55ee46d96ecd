"""A finished unit of work is freed by reference counting alone, with all it held.

Its repositories refer back to it. While that cycle stayed after the transaction, every consumed
batch (its events, screenings and held rows) waited for the cyclic garbage collector, which walked
it again and again (bench/README.md, nineteenth session)."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import pytest

from services.meetings.adapters import MeetingsUnitOfWork
from services.meetings.adapters import metadata as meetings_metadata
from services.notifications.adapters import NotificationsUnitOfWork
from services.notifications.adapters import metadata as notifications_metadata
from services.plans.adapters import PlansUnitOfWork
from services.plans.adapters import metadata as plans_metadata
from services.referral.adapters import ReferralUnitOfWork
from services.referral.adapters import metadata as referral_metadata
from tests.support.data import consent_given
from tests.support.databases import KINDS, fresh_database

pytestmark = pytest.mark.integration

UNITS = {
    "referral": (ReferralUnitOfWork, referral_metadata),
    "meetings": (MeetingsUnitOfWork, meetings_metadata),
    "plans": (PlansUnitOfWork, plans_metadata),
    "notifications": (NotificationsUnitOfWork, notifications_metadata),
}


def _weakly_referable(obj: Any) -> bool:
    try:
        weakref.ref(obj)
    except TypeError:  # a plain dict or list (a transaction's scratch): freed with its holder
        return False
    return True


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("service", sorted(UNITS))
async def test_a_committed_unit_of_work_and_its_repositories_are_freed_without_the_collector(
    kind: str, service: str, tmp_path: Path
) -> None:
    unit, metadata = UNITS[service]
    async with fresh_database(kind, metadata, tmp_path, service) as db:
        gc.collect()
        gc.disable()  # only reference counting may free them
        try:
            async with unit(db) as uow:
                attached: dict[str, Any] = {name: getattr(uow, name) for name in uow._attached}
                assert "audit" in attached, "the repositories are what _attach attached"
                uow.emit(consent_given())
                await uow.commit()
            refs = {name: weakref.ref(obj) for name, obj in attached.items() if _weakly_referable(obj)}
            unit_ref = weakref.ref(uow)
            del uow, attached
            assert unit_ref() is None, "the unit of work outlived its transaction"
            assert [name for name, ref in refs.items() if ref() is not None] == []
        finally:
            gc.enable()
