"""A social worker restricts a guardian's access to the case (turvakielto, a custody dispute, a care
order): from the event on every service refuses that guardian, and lifting it lets them in again
(the referral, meetings and plans services on a real nats-server)."""

from __future__ import annotations

from uuid import uuid4

import pytest

from shared.client import call, submit_referral
from tests.conftest import wait_for
from tests.integration.test_access_audit import with_guardian
from tests.support.identity import GUARDIAN_HETU, OTHER_GUARDIAN_HETU
from tests.support.staff import TEAM, relation_known
from tests.support.system import EventLog, running

pytestmark = [pytest.mark.integration]


async def test_a_restricted_guardian_is_refused_everywhere_until_the_restriction_is_lifted(  # type: ignore[no-untyped-def]
    staff_settings, nc, clean_streams, identity
):
    log = await EventLog().attach(nc, ("referral.>",))
    sw = identity.social_worker("staff-sw-1", TEAM)
    guardian = identity.guardian()
    async with running(staff_settings, "referral", "meetings", "plans") as svcs:
        await submit_referral(nc, with_guardian())
        (received,) = await wait_for(lambda: log.of("referral.received"))
        case_id = received["case_id"]
        await relation_known(svcs.values(), case_id, "teams")
        await relation_known(svcs.values(), case_id, "guardians")
        reads = {
            "query.referral.access_log.v2": {"case_id": case_id, "purpose": "own_data"},
            "query.meetings.case.v2": {"case_id": case_id, "purpose": "own_data"},
            "query.plans.access_log.v2": {"case_ids": [case_id], "purpose": "own_data"},
        }
        for subject, q in reads.items():
            assert (await call(nc, subject, q, token=guardian)).ok, subject

        def restrict(**extra):  # type: ignore[no-untyped-def]
            body = {
                "command_id": str(uuid4()),
                "case_id": case_id,
                "guardian_personal_id": GUARDIAN_HETU,
                "reason": "non_disclosure",
            }
            return call(nc, "cmd.referral.restrict_guardian_access.v1", {**body, **extra}, token=sw)

        # Only a social worker of the case, and only a guardian of the case.
        by_worker = await call(
            nc,
            "cmd.referral.restrict_guardian_access.v1",
            {"command_id": str(uuid4()), "case_id": case_id, "guardian_personal_id": GUARDIAN_HETU, "reason": "other"},
            token=identity.worker("staff-w-1", TEAM),
        )
        assert not by_worker.ok and by_worker.data == {"reason": "not_social_worker"}
        stranger = await restrict(guardian_personal_id=OTHER_GUARDIAN_HETU)
        assert not stranger.ok and (stranger.errors[0].field, stranger.errors[0].code) == (
            "guardian_personal_id",
            "not_a_guardian_of_case",
        )
        malformed = await restrict(guardian_personal_id="010190-0000")
        assert not malformed.ok and malformed.errors[0].field == "guardian_personal_id"

        restricted = await restrict(note="turvakielto väestötietojärjestelmässä")
        assert restricted.ok, restricted.errors
        (event,) = await wait_for(lambda: log.of("referral.guardian_access_restricted"))
        assert event["restricted"] is True and event["reason"] == "non_disclosure" and event["recorded_by"] == "staff-sw-1"
        assert GUARDIAN_HETU not in str(event), "the event names the guardian by keyed hash only"
        await relation_known(svcs.values(), case_id, "restricted_guardians")
        for subject, q in reads.items():
            refused = await call(nc, subject, q, token=guardian)
            assert not refused.ok and refused.data == {"reason": "guardian_access_restricted"}, (subject, refused)

        case = await call(nc, "query.referral.case.v2", {"case_id": case_id, "purpose": "case_work"}, token=sw)
        assert case.data is not None
        (entry,) = [h for h in case.data["history"] if h["what"] == "guardian_access_restricted"]
        assert (entry["by"], entry["reason"], entry["note"]) == (
            "staff-sw-1",
            "non_disclosure",
            "turvakielto väestötietojärjestelmässä",
        )

        lifted = await restrict(lifted=True, reason="other")
        assert lifted.ok, lifted.errors

        async def let_in_again() -> bool:
            return all([(await call(nc, subject, q, token=guardian)).ok for subject, q in reads.items()])

        await wait_for(let_in_again)
