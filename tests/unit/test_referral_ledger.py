"""Child keys for linking, the consent ledger and routing as data."""

import json
from datetime import UTC, date, datetime
from uuid import uuid4

import pytest

from services.referral.children import child_keys
from services.referral.config import ReferralConfig
from services.referral.consent import give_consent, withdraw
from services.referral.domain import referrer_may_be_told
from services.referral.hetu import make_test_hetu
from services.referral.routing import Router
from shared.contracts.referral import ReferralSubmission
from shared.errors import DomainError
from tests.support.data import TEST_PSEUDONYM, submission

NOW = datetime(2026, 11, 23, 10, tzinfo=UTC)


def keys(*children):  # type: ignore[no-untyped-def]
    return child_keys(ReferralSubmission.model_validate(submission(children=list(children))), TEST_PSEUDONYM)


def test_same_henkilotunnus_same_key_and_no_identity_in_the_key() -> None:
    code = make_test_hetu(date(2019, 5, 4), 931)
    (k,) = keys({"given_name": "A", "personal_id": code})
    assert keys({"given_name": "Other spelling", "personal_id": code.lower()}) == [k]
    assert code not in k and len(k) == 64


def test_century_signs_are_compared_as_the_full_eleven_characters() -> None:
    # Since the 2023 reform two people may differ only in the century sign (- and Y both mean the 1900s).
    a = make_test_hetu(date(2005, 1, 1), 940, sign="A")
    b = make_test_hetu(date(2005, 1, 1), 940, sign="B")
    assert keys({"given_name": "X", "personal_id": a}) != keys({"given_name": "X", "personal_id": b})


def test_child_without_henkilotunnus_is_keyed_by_name_and_date_of_birth() -> None:
    k = keys({"given_name": "Vauva", "family_name": "Testinen", "date_of_birth": "2026-11-01"})
    assert keys({"given_name": " vauva ", "family_name": "TESTINEN", "date_of_birth": "2026-11-01"}) == k
    assert keys({"given_name": "Vauva", "family_name": "Testinen", "date_of_birth": "2026-11-02"}) != k
    # without a family name there is nothing safe to match on
    assert keys({"given_name": "Vauva", "date_of_birth": "2026-11-01"}) == []


def test_consent_per_purpose_and_recipient() -> None:
    case_id = uuid4()
    c = give_consent(case_id, "share_plan", "org:school-1", "guardian-1", "staff-1", NOW)
    assert c.active(date(2026, 11, 23))
    with pytest.raises(DomainError) as e:
        give_consent(case_id, "share_plan", None, "guardian-1", "staff-1", NOW)
    assert (e.value.field, e.value.code) == ("recipient", "recipient_required")
    limited = give_consent(case_id, "invite_referrer", None, "guardian-1", "staff-1", NOW, valid_until=date(2026, 12, 31))
    assert limited.active(date(2026, 12, 31)) and not limited.active(date(2027, 1, 1))
    withdraw(c, "guardian-1", NOW)
    assert not c.active(date(2026, 11, 23))
    with pytest.raises(DomainError) as e:
        withdraw(c, "guardian-1", NOW)
    assert e.value.code == "already_withdrawn"


def test_referrer_told_by_law_or_consent() -> None:
    from services.referral.domain import Referral

    def ref(channel: str, rtype: str):  # type: ignore[no-untyped-def]
        return Referral(uuid4(), uuid4(), "s", channel, "Testilä", NOW, "fi", False, False, False, rtype, 1)

    assert referrer_may_be_told([ref("child_protection_notification", "police")], set())
    assert not referrer_may_be_told([ref("assessment_request", "school_pupil_welfare")], set())
    assert referrer_may_be_told([ref("assessment_request", "school_pupil_welfare")], {"tell_referrer_outcome"})


def test_routing_by_municipality_concern_and_channel() -> None:
    router = Router.from_data(
        {
            "default_team": "central",
            "rules": [
                {"channel": "child_protection_notification", "team_id": "cw"},
                {"municipality": "Porvoo", "concern": "violence", "team_id": "porvoo-cw"},
                {"municipality": "Porvoo", "team_id": "porvoo-fc"},
            ],
        }
    )
    assert router.route("porvoo", "violence", "phone") == "porvoo-cw"
    assert router.route("Porvoo", "parenting", "phone") == "porvoo-fc"
    assert router.route("Porvoo", None, "child_protection_notification") == "cw"
    assert router.route("Loviisa", None, "phone") == "central"
    assert router.on_duty("Porvoo") is None  # no on-duty table given


def test_urgent_referrals_go_to_the_municipality_on_duty_team() -> None:
    router = Router.from_data({"rules": [], "on_duty": {"Porvoo": "porvoo-duty", "*": "regional-duty"}})
    assert router.on_duty("PORVOO") == "porvoo-duty"
    assert router.on_duty("Loviisa") == "regional-duty"


def test_shipped_routing_file_and_env_override(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert ReferralConfig().router().route("Testilä", None, "e_contact") == "testila-family-centre"
    f = tmp_path / "routing.json"
    f.write_text(json.dumps({"default_team": "elsewhere", "rules": []}))
    monkeypatch.setenv("KOOLLE_REFERRAL_ROUTING_FILE", str(f))
    monkeypatch.setenv("KOOLLE_REFERRAL_DEADLINE_LEAD_WORKING_DAYS", "3")
    cfg = ReferralConfig()
    assert cfg.router().route("Testilä", None, "e_contact") == "elsewhere"
    assert cfg.deadline_lead_working_days == 3
