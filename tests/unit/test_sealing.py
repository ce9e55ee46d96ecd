"""Sealing and opening the personal fields of events (shared/sealing.py), without a server."""

from __future__ import annotations

import json
import os
import secrets
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import psutil
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.contracts import ReferralReceived
from shared.contracts.compat import breaking_changes
from shared.contracts.meetings import MeetingCancelled
from shared.contracts.personal import SEALED_PREFIX, Sealed
from shared.contracts.plans import PlanShared
from shared.sealing import ERASED, CaseKeys, Sealer, erased_value, open_value, opened_event, personal_fields, seal_value

EMAIL = "maija.sealed@example.com"


class FixedKeys:
    """The one key of every case, as a cache that already holds it."""

    def __init__(self, cipher: AESGCM | None) -> None:
        self.cipher = cipher

    def cached(self, case_id: str) -> AESGCM | None:
        return self.cipher


def received(case_id: Any = None) -> ReferralReceived:
    return ReferralReceived(
        producer="referral",
        case_id=case_id or uuid4(),
        referral_id=uuid4(),
        submission_id="fd-1",
        channel="phone",
        municipality="Porvoo",
        received_at=datetime.now(UTC),
        language="fi",
        interpreter_needed=False,
        urgent=False,
        statutory=False,
        child_count=1,
        consent_to_convene=True,
        contacts=[{"contact_id": "guardian-1", "role": "guardian", "email": EMAIL, "phone": "+358401234567"}],
    )


def key() -> AESGCM:
    return AESGCM(os.urandom(32))


def test_a_sealed_event_holds_no_personal_value_and_keeps_ids_and_counts_in_clear() -> None:
    cipher = key()
    ev = received()
    payload = Sealer(FixedKeys(cipher)).payload(ev)  # type: ignore[arg-type]
    assert isinstance(payload, bytes)
    assert EMAIL.encode() not in payload and b"358401234567" not in payload
    data = json.loads(payload)
    assert data["contacts"].startswith(SEALED_PREFIX)
    assert data["case_id"] == str(ev.case_id) and data["child_count"] == 1 and data["municipality"] == "Porvoo"


def test_the_case_key_opens_what_it_sealed() -> None:
    cipher = key()
    ev = received()
    payload = Sealer(FixedKeys(cipher))._sealed(ev, cipher)
    opened = opened_event(ReferralReceived, payload, cipher)
    assert opened == ev and not opened.erased


def test_a_destroyed_key_gives_the_erased_values_and_no_exception() -> None:
    cipher = key()
    payload = Sealer(FixedKeys(cipher))._sealed(received(), cipher)
    opened = opened_event(ReferralReceived, payload, None)  # the key is gone
    assert opened.erased and opened.contacts == []
    assert EMAIL not in repr(opened)


def test_another_key_opens_nothing_and_says_erased() -> None:
    payload = Sealer(FixedKeys(key()))._sealed(received(), key())
    opened = opened_event(ReferralReceived, payload, key())
    assert opened.erased and opened.contacts == []


def test_a_ciphertext_moved_to_another_case_or_field_does_not_open() -> None:
    cipher = key()
    case = str(uuid4())
    sealed = seal_value(cipher, case, ReferralReceived, "contacts", [{"contact_id": "g", "role": "guardian"}])
    assert open_value(cipher, case, ReferralReceived, "contacts", sealed) != ERASED
    assert open_value(cipher, str(uuid4()), ReferralReceived, "contacts", sealed) is ERASED
    assert open_value(cipher, case, MeetingCancelled, "participants", sealed) is ERASED


def test_an_event_written_before_sealing_is_read_as_it_is() -> None:
    ev = received()
    opened = opened_event(ReferralReceived, ev.to_json(), None)
    assert opened.contacts == ev.contacts and not opened.erased


def test_a_consumer_parse_keeps_a_sealed_value_for_the_runtime_to_open() -> None:
    cipher = key()
    payload = Sealer(FixedKeys(cipher))._sealed(received(), cipher)
    parsed = ReferralReceived.model_validate_json(payload)
    assert isinstance(parsed.contacts, Sealed)
    assert json.loads(parsed.to_json())["contacts"] == str(parsed.contacts)  # forwarded as it came


def test_an_erased_case_emits_no_personal_data_at_all() -> None:
    payload = Sealer(FixedKeys(None))._sealed(received(), None)
    assert json.loads(payload)["contacts"] == [] and EMAIL.encode() not in payload


def test_an_event_without_personal_fields_is_serialised_as_before() -> None:
    from shared.contracts.referral import ReferralAssigned

    ev = ReferralAssigned(producer="referral", case_id=uuid4(), referral_id=uuid4(), team_id="t", municipality="Porvoo")
    assert Sealer(FixedKeys(key())).payload(ev) == ev.to_json()  # type: ignore[arg-type]


def test_the_personal_fields_are_found_from_the_marker() -> None:
    assert personal_fields(ReferralReceived) == ("contacts",)
    assert personal_fields(MeetingCancelled) == ("participants",)
    assert personal_fields(PlanShared) == ("contact",)
    assert erased_value(MeetingCancelled, "participants") == [] and erased_value(PlanShared, "contact") is None


def test_the_asyncapi_schema_marks_a_personal_field_and_describes_the_sealed_form() -> None:
    field = ReferralReceived.model_json_schema()["properties"]["contacts"]
    assert field["x-koolle-personal"] is True
    sealed = field["anyOf"][1]
    assert sealed["type"] == "string" and sealed["pattern"] == f"^{SEALED_PREFIX}" and "AES-256-GCM" in sealed["description"]


def test_sealing_a_field_is_the_one_widening_a_published_version_may_take() -> None:
    old = {"type": "object", "properties": {"contacts": {"type": "array", "items": {"type": "string"}}}}
    sealed = {
        "type": "object",
        "properties": {"contacts": {"anyOf": [old["properties"]["contacts"], {"type": "string"}], "x-koolle-personal": True}},
    }
    assert breaking_changes(old, sealed) == []
    narrowed = {
        "type": "object",
        "properties": {"contacts": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-koolle-personal": True}},
    }
    assert breaking_changes(old, narrowed)


class FetchedKeys:
    """As the runtime's CaseKeys with nothing cached: every key is fetched (and counted)."""

    def __init__(self, cipher: AESGCM | None) -> None:
        self.value = cipher
        self.fetched = 0

    def known(self, case_id: str) -> bool:
        return False

    def cached(self, case_id: str) -> bool:
        return False

    async def cipher(self, case_id: str, *, create: bool = False) -> AESGCM | None:
        self.fetched += 1
        return self.value

    async def fetch_many(self, case_ids: list[str]) -> None:
        self.fetched += len(case_ids)


async def test_the_runtime_opens_an_event_once_for_all_its_handlers_and_an_erased_case_without_error() -> None:
    cipher = key()
    payload = Sealer(FixedKeys(cipher))._sealed(received(), cipher)  # type: ignore[arg-type]
    keys = FetchedKeys(cipher)
    sealer = Sealer(keys)  # type: ignore[arg-type]
    parsed = ReferralReceived.model_validate_json(payload)
    first = await sealer.open(parsed)
    assert await sealer.open(parsed) is first and keys.fetched == 1  # the next handler of the same event
    assert first.contacts[0].email == EMAIL and not first.erased

    keys.value = None  # the key destroyed
    gone = await sealer.open(ReferralReceived.model_validate_json(payload))
    assert gone.erased and gone.contacts == [] and EMAIL not in repr(gone)


async def test_a_batch_fetches_each_new_case_key_once_before_its_transaction() -> None:
    cipher = key()
    a, b = uuid4(), uuid4()
    sealer = Sealer(FixedKeys(cipher))  # type: ignore[arg-type]
    batch = [ReferralReceived.model_validate_json(sealer._sealed(received(c), cipher)) for c in (a, b, a)]
    keys = FetchedKeys(cipher)
    await Sealer(keys).prefetch(batch)  # type: ignore[arg-type]
    assert keys.fetched == 2
    plain = [received()]  # nothing sealed: nothing to fetch
    await Sealer(keys).prefetch(plain)  # type: ignore[arg-type]
    assert keys.fetched == 2


class BucketOfKeys:
    """A key bucket's reads, as nats-py's KeyValue answers them (the bucket itself: test_key_reserve)."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        self.keys = keys

    async def key_value(self, bucket: str) -> BucketOfKeys:
        return self

    async def get(self, case_id: str) -> Any:
        return type("Entry", (), {"value": self.keys[case_id]})()


async def test_a_full_key_cache_holds_its_keys_in_a_few_megabytes_not_a_cipher_per_case() -> None:
    # An AESGCM holds about 2.5 KB of OpenSSL contexts: 20,000 cached ciphers were 50 MB in every
    # service. Memory the allocator keeps after the test does not shrink RSS, so this only grows.
    made = {str(uuid4()): secrets.token_bytes(32) for _ in range(20000)}
    keys = CaseKeys(BucketOfKeys(made), cache_size=20000)  # type: ignore[arg-type]
    before = psutil.Process().memory_info().rss
    for case_id in made:
        await keys.cipher(case_id)
    grown_mb = (psutil.Process().memory_info().rss - before) / 1e6
    assert grown_mb < 15, f"20,000 cached case keys took {grown_mb:.1f} MB"
    case_id, key = next(iter(made.items()))
    cipher = keys.cached(case_id)
    assert isinstance(cipher, AESGCM)
    sealed = AESGCM(key).encrypt(b"n" * 12, b"plain", None)
    assert cipher.decrypt(b"n" * 12, sealed, None) == b"plain"


def test_an_erased_case_is_cached_as_no_cipher() -> None:
    keys = CaseKeys(js=None)  # type: ignore[arg-type]
    assert keys.remember("case", None) is None
    assert keys.cached("case") is None and keys.known("case")
    assert keys.cached("other") is False and not keys.known("other")


def test_an_erased_mark_leaves_with_its_event_and_never_reaches_another() -> None:
    import gc

    from shared.contracts.base import _ERASED

    payload = Sealer(FixedKeys(key()))._sealed(received(), key())
    for _ in range(200):  # ids are reused once an event is gone: a later event at the same address
        opened = opened_event(ReferralReceived, payload, None)
        assert opened.erased
        del opened
        gc.collect()
        assert not received().erased
    assert _ERASED == set()
