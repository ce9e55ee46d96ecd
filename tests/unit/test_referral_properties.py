"""Property tests: no generated payload crashes the intake's parse-and-validate path."""

import json
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.referral.screening import screen
from shared.contracts.base import FieldError
from tests.support.data import submission

TODAY = date(2026, 11, 22)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=15), children, max_size=4),
    max_leaves=20,
)

FIELDS = list(submission().keys()) + ["phone_call", "guidance", "joint_contact", "other_language", "concern_category"]


def check(result) -> None:  # type: ignore[no-untyped-def]
    assert isinstance(result.submission_id, str) and result.submission_id
    if result.accepted:
        assert result.reasons == []
    else:
        assert result.reasons and all(isinstance(r, FieldError) and r.field and r.code for r in result.reasons)
        assert all(set(r.message) >= {"en"} for r in result.reasons)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    check(screen(data, TODAY))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8))
def test_a_valid_submission_with_fields_replaced_never_raises(overrides: dict) -> None:  # type: ignore[type-arg]
    body = submission()
    body.update(overrides)
    check(screen(json.dumps(body).encode(), TODAY))


child = st.fixed_dictionaries(
    {"given_name": st.text(max_size=5)},
    optional={
        "family_name": st.text(max_size=5),
        "personal_id": st.text(alphabet="0123456789-+ABCDEFUVWXY,/", min_size=9, max_size=12),
        "date_of_birth": st.dates().map(str),
    },
)
guardian = st.fixed_dictionaries(
    {"name": st.text(min_size=1, max_size=5)},
    optional={
        "phone": st.text(alphabet="0123456789 +-()", max_size=20),
        "email": st.text(max_size=20),
        "language": st.sampled_from(["fi", "sv", "en", "other", "xx"]),
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(child, max_size=3),
    st.lists(guardian, max_size=3),
    st.sampled_from(
        [
            "phone",
            "e_contact",
            "guidance",
            "concern_with_family",
            "assessment_request",
            "child_protection_notification",
            "joint_contact",
            "fax",
        ]
    ),
    st.sampled_from(["fi", "sv", "en", "other"]),
    st.booleans(),
)
def test_structured_submissions_give_a_referral_or_reasons(children, guardians, channel, language, interpreter) -> None:  # type: ignore[no-untyped-def]
    body = submission(children=children, guardians=guardians, channel=channel, language=language, interpreter_needed=interpreter)
    check(screen(json.dumps(body).encode(), TODAY))


def test_deeply_nested_json_is_a_rejection_not_a_crash() -> None:
    data = b"[" * 100_000 + b"]" * 100_000
    result = screen(data, TODAY)
    assert not result.accepted and result.submission_id == "unknown"
