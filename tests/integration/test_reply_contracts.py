"""Every service's real handlers answer with the reply data their requests declare (``reply_data``,
the typed replies of docs/asyncapi.json). The four services run on a real nats-server with real
SQLite; a few requests per service that answer with data from a fresh system go over NATS and their
``data`` is validated, strictly, against the declared model. (Every other test's replies are checked
too: see ``replies_keep_their_contracts`` in tests/conftest.py.)"""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from shared.client import call
from shared.contracts import REQUESTS
from tests.support.system import running

pytestmark = [pytest.mark.integration]

MODELS = {r.subject: r.model for r in REQUESTS}


async def test_each_services_real_replies_validate_against_their_declared_reply_data(
    settings: Any, nc: Any, clean_streams: Any
) -> None:
    case = str(uuid4())
    asks = [
        ("query.referral.team_cases.v1", {"team_id": "team-testila", "requested_by": "staff-1"}),
        ("query.referral.deadlines_due.v1", {"working_days": 5, "requested_by": "staff-1"}),
        ("query.meetings.roster.v1", {"municipality": "Testilä", "requested_by": "staff-1"}),
        ("query.meetings.statistics.v1", {"requested_by": "staff-1"}),
        ("query.meetings.statistics.v1", {"requested_by": "staff-1", "format": "csv"}),
        ("query.meetings.access_log.v1", {"case_ids": [case], "requested_by": "staff-1"}),
        ("query.plans.overdue.v1", {"requested_by": "staff-1"}),
        ("query.plans.access_log.v1", {"case_ids": [case], "requested_by": "staff-1"}),
        ("query.notifications.failed.v1", {"requested_by": "staff-1"}),
        ("query.notifications.access_log.v1", {"case_ids": [case], "requested_by": "staff-1"}),
    ]
    async with running(settings):
        for subject, body in asks:
            reply = await call(nc, subject, body)
            assert reply.ok and reply.data is not None, (subject, reply.errors)
            declared = MODELS[subject].reply_data
            assert declared is not None, subject
            declared.model_validate(reply.data)  # strict: a field the contract does not name is an error
