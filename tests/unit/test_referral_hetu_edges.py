"""More henkilötunnus edge cases, as the intake sees them (reasons, not exceptions)."""

import json
from datetime import date

import pytest

from services.referral.hetu import InvalidHetu, make_test_hetu, parse_hetu
from services.referral.screening import Problem, check_submission, screen
from shared.contracts.referral import ReferralSubmission
from tests.support.data import submission

GOOD = make_test_hetu(date(2015, 6, 30), 977)


@pytest.mark.parametrize("sep", [",", "/", ".", " ", "*", "_", "G", "Z"])
def test_wrong_separators(sep: str) -> None:
    with pytest.raises(InvalidHetu) as e:
        parse_hetu(GOOD[:6] + sep + GOOD[7:])
    assert e.value.code == "invalid_century_sign"


@pytest.mark.parametrize("ddmmyy", ["000115", "320115", "311115", "290223", "011315", "010015"])
def test_impossible_dates(ddmmyy: str) -> None:
    with pytest.raises(InvalidHetu) as e:
        parse_hetu(f"{ddmmyy}A9771")
    assert e.value.code == "invalid_date"


def test_lower_case_and_surrounding_spaces_are_accepted() -> None:
    assert parse_hetu(f"  {GOOD.lower()} ").value == GOOD


def test_every_reform_sign_for_the_same_date_is_a_different_code() -> None:
    codes = {make_test_hetu(date(1999, 1, 1), 990, sign=s) for s in "-YXWVU"}
    assert len(codes) == 6 and all(parse_hetu(c).birth_date == date(1999, 1, 1) for c in codes)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (GOOD[:-1] + ("X" if GOOD[-1] != "X" else "Y"), "invalid_checksum"),
        (GOOD[:6] + "/" + GOOD[7:], "invalid_century_sign"),
        (GOOD + "1", "string_too_long"),
    ],
)
def test_intake_turns_a_bad_code_into_a_reason(value: str, code: str) -> None:
    result = screen(json.dumps(submission(children=[{"given_name": "Lapsi", "personal_id": value}])).encode(), date(2026, 11, 23))
    assert [(r.field, r.code) for r in result.reasons] == [("children.0.personal_id", code)]
    assert value not in result.reasons[0].model_dump_json()


def test_problem_messages_fall_back_for_unknown_codes() -> None:
    assert Problem("x", "something_new").messages()["en"] == "Invalid value."
    assert check_submission(ReferralSubmission.model_validate(submission()), date(2026, 11, 23)) == []
