"""Staff callers for integration tests: services that trust the test identity provider, the team the
referral routing puts a case on, tokens of that team's workers, and the case's team made known to
services that run without the referral service (as its routing of a case would).

Fixtures (registered in tests/conftest.py):

- ``staff_settings``: the test's ``settings`` trusting the session's identity provider;
- ``worker_token``: a token of :data:`CLOSE_WORKER`, a worker of :data:`TEAM`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.referral.config import ReferralConfig
from shared.case_access import CaseAccess
from shared.contracts import Event
from shared.contracts.referral import ReferralUnlinked
from shared.contracts.routes import routed_subject
from shared.service import Service
from shared.settings import Settings
from tests.support.identity import TestIdentity

MUNICIPALITY = "Testilä"
CLOSE_WORKER = "staff-close"  # the family's close worker in the test roster (services/meetings)


def team_of(municipality: str = MUNICIPALITY, channel: str = "concern_with_family", concern: str | None = None) -> str:
    """The team the referral service's own routing (services/referral/routing.json) assigns."""
    return ReferralConfig().router().route(municipality, concern, channel)


TEAM = team_of()  # a Testilä referral without a special concern: testila-family-centre
CHILD_WELFARE_TEAM = team_of(channel="child_protection_notification")  # every child protection notification


@pytest.fixture
def staff_settings(settings: Settings, identity: TestIdentity) -> Settings:
    """The test's settings, with services that verify tokens from the session's identity provider."""
    return identity.settings(settings)


@pytest.fixture
def worker_token(identity: TestIdentity) -> str:
    """The close worker, a worker of :data:`TEAM` (where a default test referral is routed)."""
    return identity.worker(CLOSE_WORKER, TEAM)


async def publish(nc: Any, ev: Event) -> None:
    """Publish an event into its stream as its producer would (Nats-Msg-Id = event id)."""
    await publish_js(nc.jetstream(), ev)


async def publish_js(js: Any, ev: Event) -> None:
    """Publish what the producer's outbox publishes for ``ev``: the event, or for a retired version
    with contact details its public successor and the notifications service's private copy."""
    for message_id, form in ev.published():
        subject = form.subject()
        if form.routed:  # as the outbox routes it, from the event's own fields (else "unrouted")
            subject = routed_subject(subject, getattr(form, "municipality", None), getattr(form, "team_id", None))
        await js.publish(subject, form.to_json(), headers={"Nats-Msg-Id": message_id})


async def assign(nc: Any, case_id: UUID | str, team: str = TEAM, municipality: str = MUNICIPALITY) -> ReferralUnlinked:
    """Tell the services the case's team, for tests that run a service without the referral service
    and publish no ``referral.received`` of the case: as the referral service does for a case that
    has none, the new case of an unlinked referral (``referral.unlinked`` with its team)."""
    ev = ReferralUnlinked(
        producer="referral",
        case_id=UUID(str(case_id)),
        referral_id=uuid4(),
        previous_case_id=uuid4(),
        recorded_by="staff-test",
        team_id=team,
        municipality=municipality,
    )
    await publish(nc, ev)
    return ev


async def assign_in(svc: Service, case_id: UUID | str, team: str = TEAM, municipality: str = MUNICIPALITY) -> None:
    """Write the case's team into one service's case-access read model alone, in one transaction
    as its consumer of the case's routing would (for tests that count what the service's own
    handlers would add)."""
    async with svc.uow() as uow:
        await CaseAccess(uow).route(case_id, team, municipality)
        await uow.commit()


async def relation_known(services: Iterable[Service], case_id: UUID | str, kind: str = "teams") -> None:
    """Wait until every one of ``services`` has the case's relation of ``kind`` (teams, participants,
    responsible, guardians) in its case-access read model."""

    from tests.conftest import wait_for  # not at import: tests/conftest.py registers this module's fixtures

    async def everywhere() -> bool:
        for svc in services:
            async with svc.uow() as uow:
                (rel,) = await CaseAccess(uow).relations([str(case_id)])
            if not getattr(rel, kind):
                return False
        return True

    await wait_for(everywhere)
