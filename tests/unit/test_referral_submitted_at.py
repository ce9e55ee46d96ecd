"""``submitted_at`` is held to plausible bounds (issue 18, finding 7): the years 0001 and 9999 were
accepted, and the statutory clocks start at this moment."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from services.referral.config import ReferralConfig
from services.referral.screening import SubmittedAtLimits, screen
from tests.support.data import submission

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)
LIMITS = SubmittedAtLimits(max_ahead=timedelta(minutes=5), max_age=timedelta(days=30))


def _codes(submitted_at: str) -> list[tuple[str, str]]:
    result = screen(json.dumps(submission(submitted_at=submitted_at)).encode(), NOW.date(), now=NOW, limits=LIMITS)
    return [(r.field, r.code) for r in result.reasons]


@pytest.mark.parametrize(
    ("submitted_at", "code"),
    [
        ("0001-01-01T00:00:00+00:00", "submitted_at_too_old"),
        ("9999-12-31T23:59:59+00:00", "submitted_at_in_future"),
        ((NOW + timedelta(minutes=6)).isoformat(), "submitted_at_in_future"),
        ((NOW - timedelta(days=30, minutes=1)).isoformat(), "submitted_at_too_old"),
    ],
)
def test_an_implausible_submission_time_is_rejected_with_the_field(submitted_at: str, code: str) -> None:
    assert _codes(submitted_at) == [("submitted_at", code)]


@pytest.mark.parametrize(
    "submitted_at",
    [
        (NOW + timedelta(minutes=4)).isoformat(),  # the front door's clock a little ahead
        (NOW - timedelta(days=29, hours=23)).isoformat(),  # sent late by a front door that was offline
        "2026-11-23T11:59:00+02:00",  # another offset, same moment range
    ],
)
def test_a_plausible_submission_time_is_accepted(submitted_at: str) -> None:
    assert _codes(submitted_at) == []


def test_the_bounds_are_configured_and_said_in_the_contract() -> None:
    config = ReferralConfig(submitted_at_max_age_days=7, submitted_at_max_ahead_seconds=60)
    assert config.submitted_at_limits() == SubmittedAtLimits(max_ahead=timedelta(seconds=60), max_age=timedelta(days=7))
    assert ReferralConfig().submitted_at_limits() == LIMITS
    from shared.contracts import ReferralSubmission

    description = ReferralSubmission.model_fields["submitted_at"].description or ""
    assert "5 minutes" in description and "30 days" in description
