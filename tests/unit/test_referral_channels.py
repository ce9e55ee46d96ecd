"""Each channel carries its own fields; validation at the edge gives machine-readable reasons."""

import json
from datetime import UTC, date

import pytest

from services.referral.hetu import make_test_hetu
from services.referral.screening import check_submission, normalise_phone, screen
from shared.contracts.referral import ORGANISATION_TYPES, OrganisationType, ReferralSubmission
from tests.support.data import TEST_PSEUDONYM, submission

TODAY = date(2026, 11, 22)
OPERATOR = {"operator_id": "op-7", "caller_role": "guardian"}


def codes(**kw):  # type: ignore[no-untyped-def]
    return [(p.field, p.code) for p in check_submission(ReferralSubmission.model_validate(submission(**kw)), TODAY)]


FAMILY = {"organisation_type": "family"}
VALID = {
    "phone": dict(channel="phone", referrer=None, phone_call=OPERATOR),
    "e_contact": dict(channel="e_contact", referrer=None, e_contact={"preferred_contact": "phone"}),
    "guidance": dict(
        channel="guidance", referrer=None, guidance={"advisor_id": "adv-1", "advice_given": "Ohjattu perhekeskukseen."}
    ),
    "concern_with_family": dict(
        channel="concern_with_family", concern_with_family={"method": "lapset_puheeksi", "discussed_on": "2026-11-20"}
    ),
    "assessment_request": dict(channel="assessment_request", assessment_request={"family_informed": True, "family_agrees": True}),
    "child_protection_notification": dict(
        channel="child_protection_notification", referrer={"organisation_type": "police", "name": "Testi Konstaapeli"}
    ),
    "joint_contact": dict(channel="joint_contact", joint_contact={"guardian_present": True, "contact_made_on": "2026-11-20"}),
}


@pytest.mark.parametrize("channel", sorted(VALID))
def test_each_channel_accepts_its_own_fields(channel: str) -> None:
    assert codes(**VALID[channel]) == []


@pytest.mark.parametrize(
    ("channel", "drop", "expected"),
    [
        ("phone", "phone_call", ("phone_call", "channel_details_required")),
        ("guidance", "guidance", ("guidance", "channel_details_required")),
        ("joint_contact", "joint_contact", ("joint_contact", "channel_details_required")),
        ("assessment_request", "referrer", ("referrer", "referrer_required")),
        ("child_protection_notification", "referrer", ("referrer", "referrer_required")),
        ("concern_with_family", "referrer", ("referrer", "referrer_required")),
        ("joint_contact", "referrer", ("referrer", "referrer_required")),
    ],
)
def test_each_channel_requires_its_fields(channel: str, drop: str, expected: tuple[str, str]) -> None:
    body = dict(VALID[channel])
    body[drop] = None
    assert expected in codes(**body)


def test_family_cannot_be_the_referrer_of_a_professional_channel() -> None:
    assert codes(channel="assessment_request", referrer=FAMILY) == [
        ("referrer.organisation_type", "referrer_must_be_professional")
    ]


def test_e_contact_comes_from_the_family_with_a_guardian() -> None:
    assert ("referrer", "referrer_not_allowed") in codes(channel="e_contact")
    assert ("guardians", "guardian_required") in codes(channel="e_contact", referrer=None, guardians=[])
    assert codes(channel="e_contact", referrer=FAMILY) == []


def test_joint_contact_needs_the_guardian_present() -> None:
    assert codes(channel="joint_contact", joint_contact={"guardian_present": False}) == [
        ("joint_contact.guardian_present", "guardian_not_present")
    ]


def test_details_of_another_channel_are_refused() -> None:
    assert codes(channel="phone", referrer=None, phone_call=OPERATOR, guidance={"advisor_id": "a"}) == [
        ("guidance", "channel_details_mismatch")
    ]


def test_statutory_channels_need_the_concern_described() -> None:
    assert ("concern", "concern_required") in codes(**{**VALID["assessment_request"], "concern": ""})
    body = {
        **VALID["child_protection_notification"],
        "concern": "",
        "child_protection_notification": {"observed": "Lapsi oli yksin."},
    }
    assert codes(**body) == []


def test_phone_operator_id_is_required_by_the_contract() -> None:
    result = screen(
        json.dumps(submission(channel="phone", referrer=None, phone_call={"caller_role": "guardian"})).encode(), TODAY
    )
    assert not result.accepted
    assert ("phone_call.operator_id", "missing") in [(r.field, r.code) for r in result.reasons]


def test_children_without_henkilotunnus_by_date_of_birth() -> None:
    newborn = {"given_name": "Vauva", "family_name": "Testinen", "date_of_birth": "2026-11-01"}
    assert codes(children=[newborn]) == []
    assert codes(children=[{**newborn, "date_of_birth": "2026-12-01"}]) == [("children.0.date_of_birth", "birth_date_in_future")]
    assert codes(children=[{**newborn, "date_of_birth": "2000-01-01"}]) == [("children.0.date_of_birth", "not_a_child")]


def test_adult_henkilotunnus_and_mismatching_birth_date() -> None:
    adult = make_test_hetu(date(1990, 1, 1), 950)
    assert codes(children=[{"given_name": "Aikuinen", "personal_id": adult}]) == [("children.0.personal_id", "not_a_child")]
    kid = make_test_hetu(date(2018, 3, 3), 951)
    assert codes(children=[{"given_name": "Lapsi", "personal_id": kid, "date_of_birth": "2018-03-04"}]) == [
        ("children.0.date_of_birth", "birth_date_mismatch")
    ]


def test_the_same_child_twice_is_refused() -> None:
    kid = {"given_name": "Lapsi", "personal_id": make_test_hetu(date(2018, 3, 3), 951)}
    assert codes(children=[kid, kid]) == [("children.1", "duplicate_child")]


def test_language_other_needs_the_language_or_an_interpreter() -> None:
    assert codes(language="other") == [("other_language", "language_unspecified")]
    assert codes(language="other", other_language="so") == []
    assert codes(language="other", interpreter_needed=True) == []
    assert codes(language="sv") == []


def test_free_text_size_limit_is_enforced_at_the_edge() -> None:
    result = screen(json.dumps(submission(concern="x" * 4001)).encode(), TODAY)
    assert [(r.field, r.code) for r in result.reasons] == [("concern", "string_too_long")]
    assert "xxxx" not in result.reasons[0].model_dump_json()  # input values never echoed


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("040 123 4567", "+358401234567"),
        ("+358 (0)40 123 4567", "+358401234567"),
        ("00358 40 1234567", "+358401234567"),
        ("09 310 1691", "+35893101691"),
        ("+46 70-123 45 67", "+46701234567"),
        ("abc", None),
        ("12", None),
        ("040 12", None),
    ],
)
def test_phone_numbers_to_e164(raw: str, e164: str | None) -> None:
    assert normalise_phone(raw) == e164


def test_reasons_are_machine_readable_in_three_languages() -> None:
    result = screen(json.dumps(submission(guardians=[{"name": "X Y", "phone": "12"}])).encode(), TODAY)
    (reason,) = result.reasons
    assert (reason.field, reason.code) == ("guardians.0.phone", "invalid_phone")
    assert set(reason.message) == {"fi", "sv", "en"}


def test_organisation_types_are_documented() -> None:
    from typing import get_args

    assert set(get_args(OrganisationType)) == set(ORGANISATION_TYPES)
    for required in (
        "child_health_clinic",
        "early_childhood_education",
        "school_pupil_welfare",
        "police",
        "psychiatry",
        "substance_abuse_clinic",
        "shelter",
    ):
        assert required in ORGANISATION_TYPES


def test_old_submissions_stay_valid() -> None:
    """Backward compatible: a submission without any of the new fields is still accepted."""
    assert screen(json.dumps(submission()).encode(), TODAY).accepted


def test_temporary_henkilotunnus_is_flagged_and_stored_normalised() -> None:
    from datetime import datetime

    from services.referral.domain import open_referral

    code = make_test_hetu(date(2018, 3, 3), 951)
    sub = ReferralSubmission.model_validate(submission(children=[{"given_name": "Lapsi", "personal_id": code.lower()}]))
    r = open_referral(sub, datetime(2026, 11, 23, tzinfo=UTC), TEST_PSEUDONYM)
    assert r.details["children"][0]["personal_id"] == code
    assert r.details["children"][0]["personal_id_temporary"] is True
