"""The intake knows a submission by the submission itself, not by where it sits in the INTAKE stream
(issue 18, finding 2; issue 19, item 4)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from services.referral.adapters import referrals, rejected_submissions
from services.referral.bootstrap import bootstrap
from shared.contracts import INTAKE_SUBJECT, ReferralRejected
from shared.messaging.streams import ensure_streams
from tests.conftest import wait_for
from tests.integration.test_referral_intake import collect
from tests.support.data import submission

pytestmark = [pytest.mark.integration]


async def _publish(js, body, msg_id=None):  # type: ignore[no-untyped-def]
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Nats-Msg-Id": msg_id} if msg_id is not None else None
    await js.publish(INTAKE_SUBJECT, data, headers=headers)


async def _count(svc, table) -> int:  # type: ignore[no-untyped-def]
    async with svc.db.read_sessionmaker() as s:
        return int((await s.execute(select(func.count()).select_from(table))).scalar_one())


async def test_submissions_after_the_intake_stream_is_recreated_open_referrals(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    received = await collect(nc, "referral.received.v2")
    js = nc.jetstream()
    svc = bootstrap(settings)
    await svc.start()
    try:
        for _ in range(3):
            body = submission()
            await _publish(js, body, body["submission_id"])
        await wait_for(lambda: len(received) == 3)
    finally:
        await svc.stop()
    # A restore or migration: INTAKE deleted and declared again; its sequence numbers start over.
    await js.delete_stream("INTAKE")
    await ensure_streams(js)
    svc = bootstrap(settings)
    await svc.start()
    try:
        later = [submission() for _ in range(10)]
        for body in later:
            await _publish(js, body, body["submission_id"])
        await wait_for(lambda: len(received) == 13, timeout=15)
        assert {r["submission_id"] for r in received[3:]} == {b["submission_id"] for b in later}
        assert await _count(svc, referrals) == 13
    finally:
        await svc.stop()


async def test_a_reused_submission_id_with_other_children_is_rejected_and_kept(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    received = await collect(nc, "referral.received.v2")
    rejected = await collect(nc, ReferralRejected.subject())
    js = nc.jetstream()
    svc = bootstrap(settings)
    await svc.start()
    try:
        first = submission()
        await _publish(js, first, first["submission_id"])
        await wait_for(lambda: received)
        other = submission(submission_id=first["submission_id"])  # other children, same id
        assert other["children"] != first["children"]
        await _publish(js, other, first["submission_id"] + "-again")
        await wait_for(lambda: rejected)
        assert rejected[0]["submission_id"] == first["submission_id"]
        assert [(r["field"], r["code"]) for r in rejected[0]["reasons"]] == [("submission_id", "submission_id_reused")]
        assert await _count(svc, rejected_submissions) == 1
        assert await _count(svc, referrals) == 1
    finally:
        await svc.stop()


async def test_the_same_submission_sent_again_under_another_message_id_is_a_silent_duplicate(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    received = await collect(nc, "referral.received.v2")
    rejected = await collect(nc, ReferralRejected.subject())
    js = nc.jetstream()
    svc = bootstrap(settings)
    await svc.start()
    try:
        body = submission()
        await _publish(js, body, body["submission_id"])
        await wait_for(lambda: received)
        # The same content again, e.g. resent after the duplicate window with a new message id.
        await _publish(js, json.dumps(body, indent=1).encode(), body["submission_id"] + "-retry")
        marker = submission()
        await _publish(js, marker, marker["submission_id"])
        await wait_for(lambda: len(received) == 2)
        assert received[1]["submission_id"] == marker["submission_id"]
        assert rejected == []
        assert await _count(svc, referrals) == 2
    finally:
        await svc.stop()


@pytest.mark.parametrize("raw", [b"\xff not json", b"", b'{"submission_id": ', "ä".encode("utf-16")])
async def test_a_rejection_of_unreadable_input_names_the_message_id(settings, nc, clean_streams, raw):  # type: ignore[no-untyped-def]
    rejected = await collect(nc, ReferralRejected.subject())
    js = nc.jetstream()
    svc = bootstrap(settings)
    await svc.start()
    try:
        await _publish(js, raw, "fd-unreadable-1")
        await wait_for(lambda: rejected)
        assert rejected[0]["submission_id"] == "fd-unreadable-1"
    finally:
        await svc.stop()


async def test_unreadable_input_without_a_message_id_is_rejected_each_time_it_differs(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    rejected = await collect(nc, ReferralRejected.subject())
    js = nc.jetstream()
    svc = bootstrap(settings)
    await svc.start()
    try:
        await _publish(js, b"garbage one")
        await _publish(js, b"garbage two")
        await wait_for(lambda: len(rejected) == 2)
        assert {r["submission_id"] for r in rejected} == {"unknown"}
        assert await _count(svc, rejected_submissions) == 2
    finally:
        await svc.stop()
