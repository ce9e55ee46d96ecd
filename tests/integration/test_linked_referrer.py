"""A second referral about a child whose case is open is linked to it, and its referrer is a person
of their own in the case: told of the receipt, and told when the assessment is done, beside the
first referral's referrer (referral and notifications on a real nats-server)."""

from __future__ import annotations

from uuid import uuid4

import pytest

from shared.client import call, submit_referral
from tests.conftest import wait_for
from tests.support.data import submission
from tests.support.staff import TEAM, relation_known
from tests.support.system import EventLog, running

pytestmark = [pytest.mark.integration]


async def test_a_linked_referrals_referrer_is_told_of_the_receipt_and_when_the_assessment_is_done(  # type: ignore[no-untyped-def]
    staff_settings, nc, clean_streams, identity
):
    log = await EventLog().attach(nc)
    sw = identity.social_worker("staff-sw-1", TEAM)
    async with running(staff_settings, "referral", "notifications") as svcs:
        first = submission()
        second = submission(
            children=first["children"],
            referrer={
                "organisation_type": "school_social_worker",
                "organisation": "Koulu Esimerkki",
                "email": "koulu@example.com",
            },
        )
        await submit_referral(nc, first)
        (received,) = await wait_for(lambda: log.of("referral.received"))
        case_id = received["case_id"]
        await submit_referral(nc, second)
        (linked,) = await wait_for(lambda: log.of("referral.linked"))
        assert linked["case_id"] == case_id and linked["repeat_count"] == 2

        def acks() -> set[str]:
            return {e["recipient_id"] for e in log.of("notification.sent") if e["template"] == "referral_ack"}

        await wait_for(lambda: acks() == {"referrer", "referrer-2"})

        await relation_known(svcs.values(), case_id, "teams")
        body = {"command_id": str(uuid4()), "case_id": case_id}
        assert (await call(nc, "cmd.referral.start_assessment.v2", body, token=sw)).ok
        done = {**body, "command_id": str(uuid4()), "outcome": "services_started"}
        assert (await call(nc, "cmd.referral.complete_assessment.v2", done, token=sw)).ok

        def told() -> set[str]:
            templates = ("assessment_done", "assessment_completed")
            return {e["recipient_id"] for e in log.of("notification.sent") if e["template"] in templates}

        await wait_for(lambda: told() == {"referrer", "referrer-2"}, timeout=15)
