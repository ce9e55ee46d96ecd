from __future__ import annotations

import json

import pytest

from services.referral.bootstrap import bootstrap
from shared.contracts import INTAKE_SUBJECT, ReferralRejected
from tests.conftest import wait_for
from tests.support.data import submission
from tests.support.system import opened

pytestmark = [pytest.mark.integration]


async def collect(nc, subject):  # type: ignore[no-untyped-def]
    got: list[dict] = []

    async def cb(msg):  # type: ignore[no-untyped-def]
        got.append(json.loads(msg.data))

    await nc.subscribe(subject, cb=cb)
    await nc.flush()  # the subscription is registered before anything is published
    return got


async def test_valid_submission_opens_case_and_emits_received(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    received = await collect(nc, "referral.received.v2")
    private = await collect(nc, "directory.referral.received.v1")
    svc = bootstrap(settings)
    await svc.start()
    try:
        js = nc.jetstream()
        body = submission()
        await js.publish(INTAKE_SUBJECT, json.dumps(body).encode(), headers={"Nats-Msg-Id": body["submission_id"]})
        await wait_for(lambda: received)
        assert received[0]["contacts"].startswith("sealed:v1:")  # personal fields travel sealed
        ev = await opened(js, "referral.received.v2", received[0])  # as a consuming service opens it
        assert ev["submission_id"] == body["submission_id"]
        # The public event names the guardian by id and role; the number is in the private copy only.
        assert "phone" not in ev["contacts"][0] and ev["contacts"][0]["role"] == "guardian"
        await wait_for(lambda: private)
        assert private[0]["contacts"].startswith("sealed:v1:")
        copy = await opened(js, "directory.referral.received.v1", private[0])
        assert copy["event_id"] == ev["event_id"]
        assert copy["contacts"][0]["phone"] == "+358401234567"
        assert "personal_id" not in json.dumps(ev) and "personal_id" not in json.dumps(copy)
    finally:
        await svc.stop()


async def test_invalid_submission_is_kept_and_rejected_with_reasons(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    rejected = await collect(nc, ReferralRejected.subject())
    svc = bootstrap(settings)
    await svc.start()
    try:
        js = nc.jetstream()
        body = submission()
        pid = body["children"][0]["personal_id"]
        body["children"][0]["personal_id"] = pid[:-1] + ("X" if pid[-1] != "X" else "Y")  # a wrong check character
        await js.publish(INTAKE_SUBJECT, json.dumps(body).encode(), headers={"Nats-Msg-Id": body["submission_id"]})
        await js.publish(INTAKE_SUBJECT, b"\xff not json", headers={"Nats-Msg-Id": "garbage-1"})
        await wait_for(lambda: len(rejected) >= 2)
        assert len(rejected) == 2, [r["submission_id"] for r in rejected]
        by_id = {r["submission_id"]: r for r in rejected}
        assert by_id[body["submission_id"]]["reasons"][0]["field"] == "children.0.personal_id"
        assert by_id[body["submission_id"]]["reasons"][0]["code"] in {"invalid_checksum", "invalid_century_sign"}
        assert by_id["garbage-1"]["reasons"][0]["code"] == "json_invalid"  # unreadable: named by its Nats-Msg-Id
    finally:
        await svc.stop()
