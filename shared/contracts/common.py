"""Small value types shared by several contracts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, ValidationInfo, WithJsonSchema
from pydantic.networks import validate_email

from .base import Contract

Language = Literal["fi", "sv", "en", "other"]
"""Language of service: Finnish, Swedish, English, or another (then usually with an interpreter)."""

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:-]+$")]


def normalised_email(value: str, checked: dict[str, str | None] | None = None) -> str | None:
    """The address as the contracts keep it (domain lower-cased), or None when it is not a valid
    address. The full check (email-validator), the same one ``Email`` makes.

    ``checked`` holds the answers given so far in one transaction. The intake screens a whole batch
    before it opens any of its referrals, and both need each address: with it, each is checked
    once (≈ 20 µs each, bench/README.md). It lives only as long as the transaction, so no address
    outlives its batch in memory (a module-level cache kept the latest ones, and forgot them only
    by size)."""
    if checked is not None and value in checked:
        return checked[value]
    try:
        found: str | None = validate_email(value)[1]
    except Exception:  # noqa: BLE001 - pydantic raises PydanticCustomError: not an address
        found = None
    if checked is not None:
        checked[value] = found
    return found


def _checked_email(value: str, info: ValidationInfo) -> str:
    """Where an address enters the system (intake, staff commands) it is checked fully, as
    pydantic's ``EmailStr`` does. Data validated with the ``TRUSTED`` context (a consumer reading
    an event, a producer building one from addresses the intake checked) is checked loosely: the
    full check cost ≈ 14 % of the notifications service's CPU (bench/). Plainly broken values are
    still refused."""
    if info.context and info.context.get("trusted"):
        if "@" not in value or len(value) > 254:
            raise ValueError("value is not a valid email address")
        return value
    return validate_email(value)[1]


Email = Annotated[str, AfterValidator(_checked_email), WithJsonSchema({"type": "string", "format": "email"})]
"""An e-mail address (JSON Schema ``format: email``)."""


class ContactPoint(Contract):
    """How to reach one person. Contact details travel only to the notifications service's directory."""

    contact_id: Id = Field(description="Stable id of the person within the case, e.g. 'guardian-1' or a staff id.")
    role: ShortText = Field(description="Role in the case: guardian, close_worker, social_worker, referrer, ...")
    language: Language = Field(default="fi", description="Language the person is contacted in.")
    email: Email | None = Field(default=None, description="E-mail address, when known.")
    phone: Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")] | None = Field(
        default=None, description="Mobile phone in E.164 form, when known."
    )


StarArea = Literal[
    "child_health_growth_development",
    "child_relationships_safety",
    "child_self_view",
    "child_family_daycare_school_leisure_friends",
    "parenting_relationship_with_child",
    "social_wellbeing_family_environment",
]
"""The six areas of the wellbeing star (Hyvinvoinnin tähti, THL working paper 26/2017)."""

STAR_SCALE = (1, 10)
"""Scores run from 1 (a serious worry, help needed now) to 10 (all is well in this area)."""
