"""What a service's erasure leaves of a stored record (shared/erasure.py), without a database."""

from __future__ import annotations

from shared.erasure import scrub


def test_texts_under_personal_keys_are_blanked_and_ids_codes_counts_dates_stay() -> None:
    state = {
        "case_id": "c-1",
        "status": "open",
        "child_count": 2,
        "received_at": "2026-01-05T10:00:00+00:00",
        "children": [{"given_name": "Aapeli", "personal_id": "010318A951C", "child_key": "k1"}],
        "guardians": [{"name": "Hilma", "email": "h@example.com", "language": "fi"}],
        "concern": "Huoli",
        "participants": [
            {"participant_id": "guardian-1", "kind": "family", "contact": {"email": "h@example.com", "role": "guardian"}}
        ],
        "attendance": [{"participant_id": "guardian-1", "present": True}],
    }
    out = scrub(state)
    assert "Aapeli" not in repr(out) and "h@example.com" not in repr(out) and "Huoli" not in repr(out)
    assert out["case_id"] == "c-1" and out["status"] == "open" and out["child_count"] == 2
    assert out["received_at"] == state["received_at"] and out["attendance"] == state["attendance"]
    assert out["participants"][0]["participant_id"] == "guardian-1" and out["participants"][0]["kind"] == "family"
    assert len(out["children"]) == 1 and len(out["guardians"]) == 1  # counted the same as before


def test_a_record_without_personal_keys_is_left_as_it_is() -> None:
    facts = {"municipality": "Porvoo", "decided_on": "2026-01-07", "in_time": True}
    assert scrub(facts) == facts
