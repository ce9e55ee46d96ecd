"""Property test through the real intake handler and a real (temporary) database, SQLite and
PostgreSQL: every generated payload ends as a stored referral, a stored rejection or a recognised
duplicate; the handler never raises, so the consumer never dead-letters a front door's submission.
Names, the municipality and the concern carry control characters too (NUL made PostgreSQL raise)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from services.referral.adapters import ReferralUnitOfWork, metadata, referrals, rejected_submissions
from services.referral.config import ReferralConfig
from services.referral.handlers import ReceiveSubmission, receive_submission
from services.referral.hetu import make_test_hetu
from shared import pseudonyms
from tests.support.data import submission
from tests.support.databases import KINDS, fresh_database

pytestmark = [pytest.mark.integration]

NOW = datetime.now(UTC)  # submitted_at in the test data is near the real clock

hetus = st.builds(lambda d, n: make_test_hetu(d, n), st.dates(date(2009, 1, 1), date(2026, 11, 1)), st.integers(900, 999))
child = st.fixed_dictionaries(
    {"given_name": st.sampled_from(["Aino", "Eino", "Ella", "El\x00la", "Ai\x1bno"])},
    optional={
        "family_name": st.sampled_from(["Testinen", "Koe"]),
        "personal_id": hetus | st.text(max_size=11),
        "date_of_birth": st.dates(date(2000, 1, 1), date(2027, 1, 1)).map(str),
    },
)
payloads = st.builds(
    lambda sid, children, channel, phone, urgent, consent, language, municipality, concern: submission(
        submission_id=sid,
        municipality=municipality,
        concern=concern,
        children=children,
        channel=channel,
        urgent=urgent,
        consent_to_convene=consent,
        language=language,
        guardians=[{"name": "Testi Huoltaja", "phone": phone}],
        **({"phone_call": {"operator_id": "op-1"}} if channel == "phone" else {}),
        **({"joint_contact": {"guardian_present": True}} if channel == "joint_contact" else {}),
    ),
    st.sampled_from(["fd-1", "fd-2", "fd-3", "x" * 101, "bad id!"]),
    st.lists(child, min_size=1, max_size=3),
    st.sampled_from(
        ["phone", "e_contact", "concern_with_family", "assessment_request", "child_protection_notification", "joint_contact"]
    ),
    st.sampled_from(["040 123 4567", "+358501234567", "12", "+1 202 555 0143"]),
    st.booleans(),
    st.booleans(),
    st.sampled_from(["fi", "sv", "other"]),
    st.sampled_from(["Testilä", "Testi\x00lä", "Porvoo\x7f", "\x00"]),
    st.sampled_from(["Arki on raskasta.", "Rivi\nToinen\trivi", "huoli\x00", "\x85"]),
)


@pytest.mark.parametrize("kind", KINDS)
def test_intake_handler_never_raises_and_never_loses_a_submission(tmp_path: Path, kind: str) -> None:
    pseudonyms.use_key_file(tmp_path / "pseudonym.key")
    loop = asyncio.new_event_loop()
    database = fresh_database(kind, metadata, tmp_path, "intake")
    db = loop.run_until_complete(database.__aenter__())
    config = ReferralConfig()
    router = config.router()
    seen = {"n": 0}
    outcomes = {"accepted": 0, "rejected": 0, "duplicate": 0}

    async def counts() -> tuple[int, int]:
        async with db.engine.connect() as conn:
            n_ref = await conn.scalar(select(func.count()).select_from(referrals))
            n_rej = await conn.scalar(select(func.count()).select_from(rejected_submissions))
        return n_ref or 0, n_rej or 0

    async def feed(data: bytes) -> None:
        seen["n"] += 1
        refs, rejs = await counts()
        async with ReferralUnitOfWork(db, lambda: NOW, config=config, router=router) as uow:
            sid = json.loads(data).get("submission_id", "") if data.startswith(b"{") else ""
            duplicate = await uow.referrals.by_submission(sid) is not None
            result = await receive_submission(ReceiveSubmission(data=data, stream_seq=seen["n"]), uow)
            await uow.commit()
        after = await counts()
        if result is not None:
            assert after == (refs + 1, rejs)
        elif after == (refs, rejs + 1):
            outcomes["rejected"] += 1
        else:
            assert duplicate and after == (refs, rejs)
            outcomes["duplicate"] += 1
        if result is not None:
            outcomes["accepted"] += 1

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(payloads)
    def run(body: dict) -> None:  # type: ignore[type-arg]
        loop.run_until_complete(feed(json.dumps(body).encode()))

    try:
        run()
        loop.run_until_complete(feed(b"\x00\xff"))
        # The probe's cases, otherwise valid: NUL in the municipality, a name, the concern.
        for nul in (
            submission(municipality="Testi\x00lä"),
            submission(concern="huoli\x00"),
            submission(referrer=None, channel="e_contact"),
        ):
            if nul["channel"] == "e_contact":
                nul["children"][0]["given_name"] = "Tes\x00ti"
            before = outcomes["rejected"]
            loop.run_until_complete(feed(json.dumps(nul).encode()))
            assert outcomes["rejected"] == before + 1
        # And deterministically: a valid submission is accepted once, then recognised as a duplicate.
        valid = json.dumps(submission(submission_id="fd-known")).encode()
        loop.run_until_complete(feed(valid))
        loop.run_until_complete(feed(valid))
    finally:
        loop.run_until_complete(database.__aexit__(None, None, None))
        loop.close()
    assert seen["n"] > 50
    assert all(outcomes.values()), outcomes  # all three outcomes were exercised
