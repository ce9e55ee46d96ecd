from datetime import UTC, date, datetime

from services.referral.domain import open_referral
from services.referral.screening import check_submission, normalise_phone
from shared.contracts import ReferralSubmission
from tests.support.data import TEST_PSEUDONYM, submission

TODAY = date(2026, 11, 22)


def sub(**kw):  # type: ignore[no-untyped-def]
    return ReferralSubmission.model_validate(submission(**kw))


def test_valid_submission_has_no_problems() -> None:
    assert check_submission(sub(), TODAY) == []


def test_child_without_identity_is_refused_but_birth_date_suffices() -> None:
    s = sub(children=[{"given_name": "Vauva"}])
    assert [(p.field, p.code) for p in check_submission(s, TODAY)] == [("children.0", "identity_missing")]
    assert check_submission(sub(children=[{"given_name": "Vauva", "date_of_birth": "2026-11-01"}]), TODAY) == []


def test_guardian_needs_a_way_to_be_reached_and_valid_phone() -> None:
    s = sub(guardians=[{"name": "Testi Huoltaja", "phone": "12"}])
    assert [(p.field, p.code) for p in check_submission(s, TODAY)] == [("guardians.0.phone", "invalid_phone")]
    s = sub(guardians=[{"name": "Testi Huoltaja"}])
    assert [p.code for p in check_submission(s, TODAY)] == ["contact_missing"]


def test_child_protection_notification_needs_referrer() -> None:
    s = sub(channel="child_protection_notification", referrer=None)
    assert [p.code for p in check_submission(s, TODAY)] == ["referrer_required"]


def test_messages_in_three_languages() -> None:
    (p,) = check_submission(sub(guardians=[{"name": "X Y"}]), TODAY)
    assert set(p.messages()) == {"fi", "sv", "en"}


def test_phone_normalisation() -> None:
    assert normalise_phone("040 123 4567") == "+358401234567"
    assert normalise_phone("+46 70-123 45 67") == "+46701234567"
    assert normalise_phone("00358 40 1234567") == "+358401234567"
    assert normalise_phone("abc") is None


def test_open_referral_builds_contacts_without_identity_codes() -> None:
    r = open_referral(sub(), datetime(2026, 11, 22, 10, tzinfo=UTC), TEST_PSEUDONYM)
    assert [c.contact_id for c in r.contacts] == ["guardian-1", "referrer"]
    assert r.contacts[0].phone == "+358401234567"
    assert r.child_count == 1
    assert not r.statutory
    assert open_referral(sub(channel="child_protection_notification"), datetime.now(UTC), TEST_PSEUDONYM).statutory


def test_an_address_the_contracts_would_refuse_is_refused_at_intake() -> None:
    # "x@y..fi" passed the intake's old pattern and then broke the building of referral.received:
    # the submission went round the retries to the dead letters instead of a clear rejection.
    for bad in ("x@y..fi", "x@-y.fi", "x@localhost."):
        s = sub(guardians=[{"name": "Testi Huoltaja", "email": bad}])
        assert [(p.field, p.code) for p in check_submission(s, TODAY)] == [("guardians.0.email", "invalid_email")]


def test_addresses_are_kept_as_the_contracts_normalise_them() -> None:
    r = open_referral(
        sub(guardians=[{"name": "Testi Huoltaja", "email": "Testi@ESIMERKKI.fi"}]),
        datetime(2026, 11, 22, tzinfo=UTC),
        TEST_PSEUDONYM,
    )
    assert r.contacts[0].email == "Testi@esimerkki.fi"


def test_an_intake_batch_checks_each_address_once_and_keeps_none_after_it(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The intake screens a whole batch (its preload) before it opens any referral, and both need
    each address checked: with the transaction's record of the addresses checked, each is checked
    once, not again when its referral is opened (≈ 20 µs of the intake's CPU per address). Nothing
    is kept between transactions: the next batch checks its addresses itself."""
    import shared.contracts.common as common
    from shared.settings import Settings

    checked: list[str] = []
    real = common.validate_email
    monkeypatch.setattr(common, "validate_email", lambda value: checked.append(value) or real(value))
    guardians = [
        [
            {"name": "Testi Huoltaja", "email": f"g{i}a@example.com"},
            {"name": "Toinen Huoltaja", "email": f"g{i}b@example.com"},
        ]
        for i in range(Settings().fetch_batch)
    ]
    batch = [sub(guardians=g) for g in guardians]
    addresses = [g["email"] for pair in guardians for g in pair] + ["pk@example.com"]  # and the referrer's, once
    for _ in range(2):  # two transactions, each with its own record
        checked.clear()
        transaction: dict[str, str | None] = {}
        assert all(check_submission(s, TODAY, transaction) == [] for s in batch)
        opened = [open_referral(s, datetime(2026, 11, 22, 10, tzinfo=UTC), TEST_PSEUDONYM, transaction) for s in batch]
        assert sorted(checked) == sorted(addresses)
        assert [c.email for c in opened[-1].contacts[:2]] == [g["email"] for g in guardians[-1]]
    checked.clear()
    assert open_referral(batch[0], datetime(2026, 11, 22, 10, tzinfo=UTC), TEST_PSEUDONYM).contacts[0].email == "g0a@example.com"
    assert checked == ["g0a@example.com", "g0b@example.com", "pk@example.com"], "nothing kept outside a transaction"


def test_a_new_case_id_is_time_ordered() -> None:
    """Case ids key the access records, consents and referrals of every service: version 7 ids of
    the cases opened lately sort together (their index pages stay hot), as referral ids do."""
    first = open_referral(sub(), datetime(2026, 11, 22, 10, tzinfo=UTC), TEST_PSEUDONYM)
    later = open_referral(sub(), datetime(2026, 11, 22, 10, tzinfo=UTC), TEST_PSEUDONYM)
    assert first.case_id.version == 7 and later.case_id.version == 7
    assert (first.case_id.int >> 80) <= (later.case_id.int >> 80)  # milliseconds since 1970
