"""Invented families for tests. Never real people: henkilötunnus use individual numbers 900-999."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

from services.referral.hetu import make_test_hetu
from shared.contracts import ConsentGiven, ReferralReceived
from shared.pseudonyms import keyed

_counter = itertools.count(1)

TEST_PSEUDONYM = keyed(b"koolle-test-pseudonym-key-32byte")
"""A pseudonym function under a fixed test key, for domain tests (services load theirs from a file)."""


def submission(**overrides: Any) -> dict[str, Any]:
    n = next(_counter)
    body: dict[str, Any] = {
        "submission_id": f"fd-test-{n}",
        "channel": "concern_with_family",
        "municipality": "Testilä",
        # Within the intake's plausibility bounds of the real clock (a test on a FixedClock in the past
        # gives its own).
        "submitted_at": (datetime.now(UTC) - timedelta(minutes=10)).isoformat(),
        "children": [
            {
                "given_name": "Testi",
                "family_name": "Lapsinen",
                "personal_id": make_test_hetu(date(2019, 5, 4) + timedelta(days=n), 900 + n % 100),
            }
        ],
        "guardians": [{"name": "Maija Testinen", "phone": "040 123 4567", "email": "maija@example.com", "language": "fi"}],
        "language": "fi",
        "concern": "Perheen arki on kuormittunut.",
        "referrer": {
            "organisation_type": "early_childhood_education",
            "organisation": "Päiväkoti Esimerkki",
            "email": "pk@example.com",
        },
        "consent_to_convene": True,
    }
    body.update(overrides)
    return body


def referral_received(**overrides: Any) -> ReferralReceived:
    """A ``referral.received`` event of a new invented case (a phone call from Testilä, one child, no
    contacts), as the referral service emits it; ``overrides`` replace any field."""
    fields: dict[str, Any] = {
        "producer": "test",
        "case_id": uuid4(),
        "referral_id": uuid4(),
        "submission_id": "s",
        "channel": "phone",
        "municipality": "Testilä",
        "received_at": datetime.now(UTC),
        "language": "fi",
        "interpreter_needed": False,
        "urgent": False,
        "statutory": False,
        "child_count": 1,
        "consent_to_convene": True,
    }
    fields.update(overrides)
    return ReferralReceived(**fields)


def consent_given() -> ConsentGiven:
    """A guardian's consent to convene, for a new case."""
    return ConsentGiven(
        producer="test",
        case_id=uuid4(),
        occurred_at=datetime.now(UTC),
        consent_id=uuid4(),
        purpose="convene_team",
        given_by="guardian-1",
        recorded_by="front-door",
    )
