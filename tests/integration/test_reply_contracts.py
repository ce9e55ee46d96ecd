"""Every service's real handlers answer with the reply data their requests declare (``reply_data``,
the typed replies of docs/asyncapi.json). The four services run on a real nats-server with real
SQLite; a few requests per service that answer with data from a fresh system go over NATS and their
``data`` is validated, strictly, against the declared model. (Every other test's replies are checked
too: see ``replies_keep_their_contracts`` in tests/conftest.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from shared.client import call
from shared.contracts import REQUESTS
from shared.contracts.base import TRUSTED
from tests.support.identity import TestIdentity
from tests.support.system import running

pytestmark = [pytest.mark.integration]

MODELS = {r.subject: r.model for r in REQUESTS}


async def test_each_services_real_replies_validate_against_their_declared_reply_data(
    settings: Any, nc: Any, clean_streams: Any, identity: TestIdentity
) -> None:
    # A team's worker asks what a fresh system can answer with data (the requests about one case are
    # answered with data in the tests that drive a case; every reply is checked there as well).
    worker = identity.worker("staff-1", "team-testila", "Testilä")
    asks = [
        ("query.referral.team_cases.v2", {"team_id": "team-testila", "purpose": "case_work"}),
        ("query.referral.deadlines_due.v2", {"working_days": 5, "team_id": "team-testila", "purpose": "deadline_follow_up"}),
        ("query.meetings.roster.v2", {"municipality": "Testilä"}),
        ("query.meetings.statistics.v2", {}),
        ("query.meetings.statistics.v2", {"format": "csv"}),
        ("query.plans.overdue.v2", {"purpose": "plan_follow_up"}),
    ]
    async with running(identity.settings(settings)):
        for subject, body in asks:
            reply = await call(nc, subject, body, token=worker)
            assert reply.ok and reply.data is not None, (subject, reply.errors)
            declared = MODELS[subject].reply_data
            assert declared is not None, subject
            declared.model_validate(reply.data, context=TRUSTED)  # strict: a field the contract does not name is an error
