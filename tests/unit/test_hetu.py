from datetime import date

import pytest

from services.referral.hetu import InvalidHetu, make_test_hetu, parse_hetu


@pytest.mark.parametrize(
    ("sign", "year"),
    [
        ("+", 1899),
        ("-", 1999),
        ("Y", 1950),
        ("X", 1950),
        ("W", 1950),
        ("V", 1950),
        ("U", 1950),
        ("A", 2001),
        ("B", 2010),
        ("C", 2010),
        ("D", 2010),
        ("E", 2010),
        ("F", 2010),
    ],
)
def test_every_century_sign(sign: str, year: int) -> None:
    code = make_test_hetu(date(year, 2, 28), 955, sign=sign)
    parsed = parse_hetu(code)
    assert parsed.birth_date == date(year, 2, 28)
    assert parsed.temporary


def test_known_good_code_and_checksum() -> None:
    # 131052-308T is the example in the Digital and Population Data Services Agency's documentation
    assert parse_hetu("131052-308T").birth_date == date(1952, 10, 13)
    assert not parse_hetu("131052-308T").temporary


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("131052-308U", "invalid_checksum"),
        ("131052,308T", "invalid_century_sign"),
        ("131052/308T", "invalid_century_sign"),
        ("131052G308T", "invalid_century_sign"),
        ("310252-308T", "invalid_date"),  # 31 February
        ("290201A9001", "invalid_date"),  # 2001 is not a leap year
        ("1310-52308T", "invalid_century_sign"),
        ("13105-308T", "invalid_length"),
        ("13AB52-308T", "invalid_format"),
        ("131052-001H", "invalid_individual_number"),
    ],
)
def test_invalid_codes(value: str, code: str) -> None:
    with pytest.raises(InvalidHetu) as err:
        parse_hetu(value)
    assert err.value.code == code
    assert value not in str(err.value)  # the value never travels in the error


def test_leap_day_2000_is_valid() -> None:
    assert parse_hetu(make_test_hetu(date(2000, 2, 29), 901)).birth_date == date(2000, 2, 29)


def test_test_codes_only_from_reserved_range() -> None:
    with pytest.raises(ValueError):
        make_test_hetu(date(2010, 1, 1), 123)
