"""The outbox and the durable timers across a nats-server outage and restart (private server per test)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import nats
import pytest
from sqlalchemy import func, select

from infra.natsserver import EmbeddedNats, free_port
from services.plans.adapters import PlansUnitOfWork, metadata
from shared.contracts import FollowupDue, ReferralReceived
from shared.messaging.relay import OutboxRelay
from shared.messaging.streams import ensure_streams
from shared.storage.database import Database
from tests.conftest import wait_for
from tests.support.data import referral_received

pytestmark = [pytest.mark.integration]


def event(case_id=None) -> ReferralReceived:  # type: ignore[no-untyped-def]
    return referral_received(case_id=case_id or uuid4())


async def _jetstream_ready(js) -> bool:  # type: ignore[no-untyped-def]
    try:
        await js.stream_info(
            "PLANS",
        )
        return True
    except Exception:  # noqa: BLE001 - reconnecting
        return False


async def stream_count(js, stream: str) -> int:  # type: ignore[no-untyped-def]
    return (await js.stream_info(stream)).state.messages


async def test_outbox_rows_wait_out_an_outage_and_are_published_once(tmp_path):  # type: ignore[no-untyped-def]
    server = EmbeddedNats(tmp_path / "nats", free_port()).start()
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'plans.db'}", metadata)
    await db.create_all()
    nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    js = nc.jetstream()
    await ensure_streams(js)
    relay = OutboxRelay(db, js, poll_seconds=0.1)
    task = asyncio.create_task(relay.run())
    try:
        server.stop()
        async with PlansUnitOfWork(db) as uow:
            for _ in range(5):
                uow.emit(event())
            await uow.commit()
        await asyncio.sleep(0.5)  # the relay tries and fails while the server is down
        async with db.sessionmaker() as s:
            unsent = await s.scalar(select(func.count()).select_from(db.outbox).where(db.outbox.c.sent_at.is_(None)))
        # Each event is two rows: the public referral.received.v2 and the notifications service's
        # private copy (directory.referral.received.v1).
        assert unsent == 10, "nothing is marked sent without a PubAck"

        server.start()
        await wait_for(lambda: relay.published == 10, timeout=40)  # relay backoff reaches 10 s steps
        assert await stream_count(js, "REFERRAL") == 5
        assert await stream_count(js, "DIRECTORY") == 5

        # A crash after publishing but before marking sent: the rows go out again with the same
        # Nats-Msg-Id and JetStream drops the copies.
        async with db.sessionmaker() as s, s.begin():
            await s.execute(db.outbox.update().values(sent_at=None))
        await relay.flush_once()
        assert await stream_count(js, "REFERRAL") == 5
        assert await stream_count(js, "DIRECTORY") == 5
    finally:
        relay.stop()
        await asyncio.gather(task, return_exceptions=True)
        await nc.close()
        server.stop()
        await db.dispose()


async def test_followup_timer_survives_a_nats_restart_and_fires_once(tmp_path):  # type: ignore[no-untyped-def]
    server = EmbeddedNats(tmp_path / "nats", free_port()).start()
    nc = await nats.connect(server.url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    js = nc.jetstream()
    await ensure_streams(js)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'plans.db'}", metadata)
    await db.create_all()
    relay = OutboxRelay(db, js, poll_seconds=0.1)
    try:
        plan_id = uuid4()
        due = FollowupDue(
            producer="plans",
            case_id=uuid4(),
            plan_id=plan_id,
            plan_version=1,
            due_at=datetime.now(UTC) + timedelta(seconds=3),
            responsible_worker_ids=["w"],
            family_contact_ids=["g"],
        )
        async with PlansUnitOfWork(db) as uow:
            uow.schedule(due, timer_subject=f"timers.plans.followup.{plan_id}", at=due.due_at, timer_id="t1")
            # A second timer that is cancelled before it fires.
            other = f"timers.plans.followup.{uuid4()}"
            uow.schedule(due.model_copy(update={"event_id": uuid4()}), timer_subject=other, at=due.due_at, timer_id="t2")
            uow.cancel_timer(other, "c2")
            await uow.commit()
        await relay.flush_once()

        server.stop()
        server.start()  # same store: the schedule is durable
        await wait_for(lambda: _jetstream_ready(js), timeout=20)

        # The schedule fires into the plans service's private subject; the service emits followup.due from there.
        psub = await js.pull_subscribe("timers.plans.fired", durable="probe", stream="TIMERS_PLANS")
        got = []
        deadline = asyncio.get_running_loop().time() + 10
        while asyncio.get_running_loop().time() < deadline:
            try:
                msgs = await psub.fetch(10, timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):
                if got:
                    break
                continue
            for m in msgs:
                got.append(m)
                await m.ack()
        assert len(got) == 1, "fires once; the cancelled timer never fires"
        assert FollowupDue.model_validate_json(got[0].data).plan_id == plan_id
    finally:
        await nc.close()
        server.stop()
        await db.dispose()
