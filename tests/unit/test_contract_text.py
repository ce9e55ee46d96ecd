"""Control characters are refused in every inbound contract with a field reason (issue 18, finding 6):
NUL made PostgreSQL raise in the intake (retried, then dead-lettered) and was stored as valid on
SQLite. Ordinary newline and tab stay allowed in free text."""

from __future__ import annotations

import json
from datetime import date
from uuid import uuid4

import pytest
from pydantic import ValidationError

from services.referral.screening import screen
from shared.contracts import ReferralSubmission
from shared.contracts.meetings import FamilyFeedback
from shared.contracts.referral import CaseQuery, RecordConsent
from tests.support.data import submission

TODAY = date(2026, 11, 23)


def _errors(model, body):  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as exc:
        model.model_validate_json(json.dumps(body))
    return [(".".join(map(str, e["loc"])), e["type"]) for e in exc.value.errors()]


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9f"])
def test_a_control_character_in_the_municipality_is_refused_with_its_field(char: str) -> None:
    assert _errors(ReferralSubmission, submission(municipality=f"Testi{char}lä")) == [("municipality", "control_character")]


def test_nul_in_a_child_s_name_and_in_the_concern_is_refused_with_each_field() -> None:
    body = submission(concern="huoli\x00")
    body["children"][0]["given_name"] = "Tes\x00ti"
    assert sorted(_errors(ReferralSubmission, body)) == [
        ("children.0.given_name", "control_character"),
        ("concern", "control_character"),
    ]


def test_newline_and_tab_are_allowed_in_free_text_but_not_in_a_name() -> None:
    assert ReferralSubmission.model_validate_json(json.dumps(submission(concern="Ensimmäinen rivi\n\tToinen rivi\r\n")))
    body = submission()
    body["children"][0]["given_name"] = "Testi\nLapsi"
    assert _errors(ReferralSubmission, body) == [("children.0.given_name", "control_character")]


def test_a_staff_command_refuses_control_characters_too() -> None:
    query = {"case_id": str(uuid4()), "requested_by": "staff-1", "purpose": "case\x00work"}
    assert _errors(CaseQuery, query) == [("purpose", "control_character")]
    # An id was already held to its pattern (letters, digits, . _ : -).
    cmd = {
        "command_id": str(uuid4()),
        "case_id": str(uuid4()),
        "purpose": "convene_team",
        "given_by": "g-1",
        "recorded_by": "s\x00",
    }
    assert _errors(RecordConsent, cmd) == [("recorded_by", "string_pattern_mismatch")]


def test_a_multi_line_comment_in_meeting_feedback_is_kept_and_nul_in_it_is_refused() -> None:
    assert FamilyFeedback.model_validate_json(json.dumps({"rating": 4, "comment": "Hyvä.\nKiitos."})).comment == "Hyvä.\nKiitos."
    assert _errors(FamilyFeedback, {"rating": 4, "comment": "Hyvä\x00"}) == [("comment", "control_character")]


def test_the_intake_turns_a_nul_into_a_rejection_with_the_field() -> None:
    result = screen(json.dumps(submission(municipality="Testi\x00lä")).encode(), TODAY)
    assert not result.accepted
    assert [(r.field, r.code) for r in result.reasons] == [("municipality", "control_character")]
    assert result.reasons[0].message["fi"] and result.reasons[0].message["sv"]
