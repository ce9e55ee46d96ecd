"""Henkilötunnus (Finnish personal identity code) validation, with the century signs of the 2023 reform.

Format ``DDMMYYCZZZQ``: date of birth, century sign, individual number, check character. Century
signs: ``+`` 1800s; ``-``, ``Y``, ``X``, ``W``, ``V``, ``U`` 1900s; ``A``-``F`` 2000s. Individual numbers
900-999 are temporary/test codes. Pure Python, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

CHECK_CHARS = "0123456789ABCDEFHJKLMNPRSTUVWXY"
CENTURY = {"+": 1800, **{c: 1900 for c in "-YXWVU"}, **{c: 2000 for c in "ABCDEF"}}


class InvalidHetu(ValueError):
    """Raised with a machine code only; the value itself is never put in the message."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Hetu:
    value: str
    birth_date: date
    temporary: bool


def check_char(ddmmyy: str, individual: str) -> str:
    return CHECK_CHARS[int(ddmmyy + individual) % 31]


def parse_hetu(raw: str) -> Hetu:
    value = raw.strip().upper()
    if len(value) != 11:
        raise InvalidHetu("invalid_length")
    ddmmyy, sign, individual, check = value[:6], value[6], value[7:10], value[10]
    if sign not in CENTURY:
        raise InvalidHetu("invalid_century_sign")
    if not (ddmmyy.isdigit() and individual.isdigit()):
        raise InvalidHetu("invalid_format")
    try:
        born = date(CENTURY[sign] + int(ddmmyy[4:6]), int(ddmmyy[2:4]), int(ddmmyy[0:2]))
    except ValueError:
        raise InvalidHetu("invalid_date") from None
    n = int(individual)
    if n < 2:
        raise InvalidHetu("invalid_individual_number")
    if check_char(ddmmyy, individual) != check:
        raise InvalidHetu("invalid_checksum")
    return Hetu(value=value, birth_date=born, temporary=n >= 900)


def make_test_hetu(born: date, individual: int = 900, sign: str | None = None) -> str:
    """A valid test henkilötunnus (individual number 900-999) for tests and demos."""
    if not 900 <= individual <= 999:
        raise ValueError("test codes use individual numbers 900-999")
    if sign is None:
        sign = {1800: "+", 1900: "-", 2000: "A"}[born.year // 100 * 100]
    ddmmyy = born.strftime("%d%m") + f"{born.year % 100:02d}"
    ind = f"{individual:03d}"
    return f"{ddmmyy}{sign}{ind}{check_char(ddmmyy, ind)}"
