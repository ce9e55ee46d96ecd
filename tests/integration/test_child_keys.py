"""The children's index is keyed with a keyed HMAC, the key outside the database (issue 18, finding 7):
the unsalted SHA-256 of earlier versions was reversed by hashing every possible henkilötunnus. An
index written by an earlier version is re-keyed from the stored referrals at start."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from services.referral.adapters import ReferralUnitOfWork, metadata, referral_children
from services.referral.config import ReferralConfig
from services.referral.handlers import ReceiveSubmission, receive_submission
from services.referral.hetu import make_test_hetu
from shared import pseudonyms
from shared.storage.database import Database
from tests.support.data import submission
from tests.support.databases import KINDS, fresh_database

pytestmark = [pytest.mark.integration]

HETU = make_test_hetu(date(2020, 2, 2), 977)


@pytest.fixture(params=KINDS)
async def db(request, tmp_path):  # type: ignore[no-untyped-def]
    pseudonyms.use_key_file(tmp_path / "pseudonym.key")
    async with fresh_database(request.param, metadata, tmp_path, "keys") as d:
        yield d


async def _receive(db: Database, body: dict) -> object:  # type: ignore[type-arg]
    config = ReferralConfig()
    async with ReferralUnitOfWork(db, lambda: datetime.now(UTC), config=config, router=config.router()) as uow:
        referral = await receive_submission(ReceiveSubmission(data=json.dumps(body).encode(), stream_seq=1), uow)
        await uow.commit()
    return referral


async def _keys(db: Database) -> list[str]:
    async with db.read_sessionmaker() as s:
        return [r.child_key for r in await s.execute(select(referral_children.c.child_key))]


def test_the_key_file_is_created_for_the_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "k" / "pseudonym.key"
    pseudonyms.use_key_file(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(path.read_bytes()) == 32
    first = pseudonyms.person_key(HETU)
    pseudonyms.use_key_file(tmp_path / "other.key")
    assert pseudonyms.person_key(HETU) != first  # another key, another pseudonym
    pseudonyms.use_key_file(path)
    assert pseudonyms.person_key(f" {HETU.lower()} ") == first  # normalised first


async def test_the_child_key_is_a_keyed_hmac_not_a_plain_hash(db: Database) -> None:
    await _receive(db, submission(children=[{"given_name": "Testi", "personal_id": HETU}]))
    assert await _keys(db) == [pseudonyms.person_key(HETU)]
    assert hashlib.sha256(f"hetu:{HETU}".encode()).hexdigest() not in await _keys(db)


async def test_an_index_of_an_earlier_version_is_rekeyed_at_start_and_links_again(db: Database) -> None:
    first = await _receive(db, submission(children=[{"given_name": "Testi", "personal_id": HETU}]))
    # What an earlier version stored: the unsalted SHA-256, and no record of the key.
    async with db.engine.begin() as conn:
        await conn.execute(
            text("UPDATE referral_children SET child_key = :k"), {"k": hashlib.sha256(f"hetu:{HETU}".encode()).hexdigest()}
        )
        await conn.execute(text("DROP TABLE pseudonym_scheme"))
    again = Database(db.url, metadata)
    try:
        await again.create_all()
        assert await _keys(again) == [pseudonyms.person_key(HETU)]
        second = await _receive(again, submission(children=[{"given_name": "Testi", "personal_id": HETU}]))
        assert second.linked and second.case_id == first.case_id  # type: ignore[attr-defined]
    finally:
        await again.dispose()


async def test_a_second_referral_of_a_child_in_the_same_batch_joins_the_case_the_first_opened(db: Database) -> None:
    """The intake's batch holds its inserts (shared/storage/deferred.py); the child's lookup of the
    second referral still sees the first referral's child and case, held in the same transaction."""
    config = ReferralConfig()
    first_body, second_body = submission(), submission()
    second_body["children"] = first_body["children"]
    other = submission()  # another child in between: its held rows are not in the way
    async with ReferralUnitOfWork(db, lambda: datetime.now(UTC), config=config, router=config.router()) as uow:
        first = await receive_submission(ReceiveSubmission(data=json.dumps(first_body).encode(), stream_seq=1), uow)
        unrelated = await receive_submission(ReceiveSubmission(data=json.dumps(other).encode(), stream_seq=2), uow)
        second = await receive_submission(ReceiveSubmission(data=json.dumps(second_body).encode(), stream_seq=3), uow)
        await uow.commit()
    assert first is not None and second is not None and unrelated is not None
    assert second.case_id == first.case_id and second.linked
    assert unrelated.case_id != first.case_id


async def test_a_preloaded_intake_batch_links_siblings_and_knows_its_resends(db: Database) -> None:
    """The intake batch reads its children's cases and its submission ids at once
    (handlers.preload_submissions); what its own referrals add in the transaction counts too."""
    from services.referral.handlers import preload_submissions

    config = ReferralConfig()
    earlier = submission()
    first = await _receive(db, earlier)  # an open case of this child, from an earlier batch
    sibling, resend, fresh = submission(), dict(earlier), submission()
    sibling["children"] = earlier["children"]
    sibling["submission_id"] = "fd-preload-sibling"
    twin = submission()
    twin["children"] = fresh["children"]  # the batch's own new case, found by its second referral
    cmds = [
        ReceiveSubmission(data=json.dumps(body).encode(), stream_seq=10 + i)
        for i, body in enumerate((sibling, resend, fresh, twin))
    ]
    async with ReferralUnitOfWork(db, lambda: datetime.now(UTC), config=config, router=config.router()) as uow:
        await preload_submissions(cmds, uow)
        got = [await receive_submission(cmd, uow) for cmd in cmds]
        await uow.commit()
    assert first is not None
    linked, again, opened, joined = got
    assert linked is not None and linked.case_id == first.case_id and linked.linked
    assert again is None  # the same submission again: nothing new
    assert opened is not None and opened.case_id != first.case_id
    assert joined is not None and joined.case_id == opened.case_id and joined.linked
    async with db.read_sessionmaker() as s:
        ids = (await s.execute(text("SELECT submission_id FROM referrals ORDER BY submission_id"))).scalars().all()
    assert sorted(ids) == sorted(
        {earlier["submission_id"], sibling["submission_id"], fresh["submission_id"], twin["submission_id"]}
    )
