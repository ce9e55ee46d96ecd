"""A service opens a family's personal data in an event only for a handler that reads it. A handler
marked ``shared.sealing.leaves_sealed`` gets the event with its fields still sealed and no key is
fetched for it: the plans service learns of a new case (who may see it) from ``referral.received``
through the case-access projection alone, while meetings, which invites the family, opens the
contacts. On a real nats-server and SQLite."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from shared.client import submit_referral
from shared.storage.uow import UnitOfWork
from tests.conftest import wait_for
from tests.support.data import submission
from tests.support.system import EventLog, running

pytestmark = [pytest.mark.integration]


async def _access_of(svc, case_id: str) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    async with UnitOfWork(svc.db) as uow:
        t = uow.db.metadata.tables["case_access"]
        rows = await uow.execute(select(t.c.kind, t.c.value).where(t.c.case_id == case_id))
        return {(kind, value) for kind, value in rows}


def _key_fetched_ahead(svc, subject: str) -> bool:  # type: ignore[no-untyped-def]
    (sub,) = [s for s in svc.subscriptions if s.subject.startswith(subject)]
    return sub.prepare is not None


async def test_plans_records_a_new_case_access_without_its_key_and_meetings_opens_the_contacts_it_invites(
    settings, nc, clean_streams
):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc)
    async with running(settings, "referral", "meetings", "plans", "notifications") as svcs:
        plans, meetings, notifications = svcs["plans"], svcs["meetings"], svcs["notifications"]
        assert not _key_fetched_ahead(plans, "referral.received")  # its only handler leaves it sealed
        assert _key_fetched_ahead(meetings, "referral.received")  # convening reads the contacts
        await submit_referral(nc, submission(municipality="Porvoo"))
        (received,) = await wait_for(lambda: log.of("referral.received"))
        case_id = received["case_id"]
        assert json.loads(received["_data"])["contacts"].startswith("sealed:v1:")  # as it travelled
        access = await wait_for(lambda: _access_of(plans, case_id))
        assert ("municipality", "Porvoo") in access
        assert any(kind == "team" for kind, _ in access)
        assert {v for kind, v in access if kind == "guardian"} == set(received["guardian_keys"])  # keyed hashes, in clear
        await wait_for(lambda: _access_of(meetings, case_id))
        assert meetings.sealer.keys.cached(case_id) not in (False, None)  # meetings opened the contacts
        await wait_for(lambda: notifications.sealer.keys.known(case_id))  # and notifications
        assert not plans.sealer.keys.known(case_id)  # never fetched, never opened
