"""A service applies its read models of the events it emits itself in the transaction that emits
them (``Service.project``): on a real nats-server and database, nothing of the referral's own
read models waits for a delivery, and the service does not consume its own stream back."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from shared.client import submit_referral
from shared.storage.uow import UnitOfWork
from tests.conftest import wait_for
from tests.support.data import submission
from tests.support.system import EventLog, running

pytestmark = [pytest.mark.integration]


async def test_the_intake_commits_its_case_access_and_statistics_with_the_referral_and_consumes_none_of_its_own_events(
    settings, nc, clean_streams
):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc)
    async with running(settings, "referral") as svcs:
        svc = svcs["referral"]
        assert not [s for s in svc.consumed() if s.stream == "REFERRAL" and "received" in s.subject]
        committed: list[tuple[str, ...]] = []
        real_commit = UnitOfWork._end

        async def spy(uow, commit):  # type: ignore[no-untyped-def]
            # What the intake's transaction holds just before its COMMIT.
            if commit and uow.producer == "referral" and uow._messages:
                t = uow.db.metadata.tables
                committed.extend(
                    f"{kind}:{value}"
                    for kind, value in await uow.execute(select(t["case_access"].c.kind, t["case_access"].c.value))
                )
                facts = await uow.execute(select(t["statistics_facts"].c.case_id))
                committed.extend(f"facts:{c}" for (c,) in facts)
            await real_commit(uow, commit)

        UnitOfWork._end = spy  # type: ignore[method-assign]
        try:
            await submit_referral(nc, submission(municipality="Porvoo"))
            (received,) = await wait_for(lambda: log.of("referral.received"))
        finally:
            UnitOfWork._end = real_commit  # type: ignore[method-assign]
        assert "municipality:Porvoo" in committed
        assert any(c.startswith("team:") for c in committed)
        assert f"facts:{received['case_id']}" in committed
        consumers = {c.config.durable_name for c in await nc.jetstream().consumers_info("REFERRAL")}
        assert not {c for c in consumers if c and c.startswith("referral-referral-")} - {"referral-referral-case_erased-v1"}
