"""The outbox relay's atomic batches: one write per stream and scan, and no doubles when a batch is
published again after a crash (published, not yet marked) or when a stream refuses batches."""

from __future__ import annotations

import asyncio

import nats
import pytest
from nats.js.api import StorageType, StreamConfig
from sqlalchemy import select, update

from infra.natsserver import EmbeddedNats, free_port
from services.plans.adapters import PlansUnitOfWork, metadata
from shared.contracts import ReferralReceived
from shared.messaging.relay import OutboxRelay
from shared.messaging.streams import ensure_streams
from shared.storage.database import Database
from tests.conftest import wait_for
from tests.support.data import consent_given, referral_received

pytestmark = [pytest.mark.integration]


def received() -> ReferralReceived:
    return referral_received()


async def stream_count(js, stream: str) -> int:  # type: ignore[no-untyped-def]
    return (await js.stream_info(stream)).state.messages


@pytest.fixture
async def setup(tmp_path):  # type: ignore[no-untyped-def]
    server = EmbeddedNats(tmp_path / "nats", free_port()).start()
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'plans.db'}", metadata)
    await db.create_all()
    nc = await nats.connect(server.url)
    yield server, db, nc, nc.jetstream()
    await nc.close()
    await db.dispose()
    server.stop()


async def emit(db: Database, n: int) -> None:
    async with PlansUnitOfWork(db) as uow:
        for i in range(n):
            uow.emit(received() if i % 2 else consent_given())
        await uow.commit()


async def test_a_scan_goes_out_as_one_atomic_batch_per_stream_and_a_republish_stores_nothing_twice(setup):  # type: ignore[no-untyped-def]
    _, db, _, js = setup
    await ensure_streams(js)
    await emit(db, 120)  # 60 received (each also a private directory copy) and 60 consents: 180 rows
    relay = OutboxRelay(db, js)
    assert len(db.handoff) == 180  # the commit handed its rows to the relay ...
    assert await relay._scan() == 0  # ... so a scan leaves them alone
    assert await relay.flush_handoff() == 180
    assert relay.batches == 2  # 120 events of the REFERRAL stream in one write, 60 of DIRECTORY in another
    assert await stream_count(js, "REFERRAL") == 120
    assert await stream_count(js, "DIRECTORY") == 60
    assert await relay.flush_once() == 0  # published, not yet marked: not again

    # A crash after the PubAck but before the rows were marked: the next relay publishes them again.
    await relay._mark_pending()
    async with db.sessionmaker() as s, s.begin():
        await s.execute(update(db.outbox).values(sent_at=None))
    again = OutboxRelay(db, js)  # a new process: nothing handed off, the scan finds the rows
    assert await again.flush_once() == 180  # each batch is refused as a duplicate, then sent one by one
    assert again.batches == 0
    assert await stream_count(js, "REFERRAL") == 120  # JetStream dropped every copy
    assert await stream_count(js, "DIRECTORY") == 60
    await again._mark_pending()
    assert await again.flush_once() == 0


async def test_a_stream_without_atomic_batches_still_gets_every_event_once(setup):  # type: ignore[no-untyped-def]
    _, db, _, js = setup
    # Streams managed elsewhere (KOOLLE_MANAGE_STREAMS=false) may lack allow_atomic.
    await js.add_stream(StreamConfig(name="REFERRAL", subjects=["referral.>", "consent.>"], storage=StorageType.FILE))
    await emit(db, 40)
    relay = OutboxRelay(db, js, poll_seconds=0.05)
    task = asyncio.create_task(relay.run())
    try:
        await wait_for(lambda: relay.published == 40)
        assert relay.batches == 0 and relay._no_atomic == {"REFERRAL"}
        assert await stream_count(js, "REFERRAL") == 40
        await emit(db, 10)  # later scans go one by one at once, without asking again
        await wait_for(lambda: relay.published == 50)
        assert await stream_count(js, "REFERRAL") == 50
    finally:
        relay.stop()
        await task


async def test_a_row_whose_publish_fails_is_not_marked_sent_and_goes_out_later(setup):  # type: ignore[no-untyped-def]
    _, db, _, js = setup
    await ensure_streams(js)
    async with PlansUnitOfWork(db) as uow:
        uow.emit(received())
        uow.emit(received(), subject="nostream.test.v1")  # no stream captures it: the publish fails
        uow.emit(consent_given())
        await uow.commit()
    relay = OutboxRelay(db, js)
    with pytest.raises(Exception):  # noqa: B017 - whatever nats-py raises for "no stream"
        await relay.flush_once()
    await relay._mark_pending()
    async with db.sessionmaker() as s:
        unsent = (await s.execute(select(db.outbox.c.subject).where(db.outbox.c.sent_at.is_(None)))).scalars().all()
    assert unsent == ["nostream.test.v1"], "only the rows JetStream stored are marked sent"
    assert await stream_count(js, "REFERRAL") == 2
    await js.add_stream(StreamConfig(name="LATE", subjects=["nostream.>"], storage=StorageType.FILE))
    assert await OutboxRelay(db, js).flush_once() == 1  # published once the stream exists
    assert await stream_count(js, "LATE") == 1


async def test_a_few_events_go_out_one_by_one(setup):  # type: ignore[no-untyped-def]
    # A batch is staged by the server in a store of its own: for a trickle, one by one is cheaper.
    _, db, _, js = setup
    await ensure_streams(js)
    await emit(db, 3)  # consent, received (and its directory copy), consent: 4 rows
    relay = OutboxRelay(db, js)
    assert await relay.flush_handoff() == 4
    assert relay.batches == 0 and relay.published == 4
    assert await stream_count(js, "REFERRAL") == 3
    assert await stream_count(js, "DIRECTORY") == 1


class HeldAcks:
    """The relay's JetStream context, whose publishes to ``held`` subjects wait for ``release``
    before they go to the real server: a round whose PubAcks are slow to come."""

    def __init__(self, js, held: str) -> None:  # type: ignore[no-untyped-def]
        self._js, self.held, self.release = js, held, asyncio.Event()

    async def publish(self, subject: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if subject.startswith(self.held):
            await self.release.wait()
        return await self._js.publish(subject, *args, **kwargs)

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self._js, name)


async def unsent(db: Database) -> list[str]:
    async with db.sessionmaker() as s:
        return list((await s.execute(select(db.outbox.c.subject).where(db.outbox.c.sent_at.is_(None)))).scalars().all())


@pytest.fixture
async def held(setup):  # type: ignore[no-untyped-def]
    """A running relay whose first round (one consent) waits for its PubAck until ``slow.release``."""
    _, db, _, js = setup
    await ensure_streams(js)
    slow = HeldAcks(js, "consent.")
    relay = OutboxRelay(db, slow, poll_seconds=0.05)  # type: ignore[arg-type]
    task = asyncio.create_task(relay.run())
    async with PlansUnitOfWork(db) as uow:
        uow.emit(consent_given())
        await uow.commit()
    await wait_for(lambda: relay._rounds)
    yield db, js, slow, relay, task
    slow.release.set()
    relay.stop()
    await task


async def test_a_round_goes_out_while_the_round_before_it_waits_for_its_acknowledgement(held):  # type: ignore[no-untyped-def]
    db, js, slow, relay, task = held
    async with PlansUnitOfWork(db) as uow:
        uow.emit(received())  # and its private directory copy
        await uow.commit()
    await wait_for(lambda: relay.published == 2)  # published without waiting for the first round
    assert await stream_count(js, "DIRECTORY") == 1
    slow.release.set()
    await wait_for(lambda: relay.published == 3)
    assert await stream_count(js, "REFERRAL") == 2
    relay.stop()
    await task
    assert await unsent(db) == []  # every row marked sent once its acknowledgement came


async def test_a_round_holding_a_timer_waits_for_every_round_before_it(held):  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime, timedelta

    db, js, slow, relay, _ = held
    async with PlansUnitOfWork(db) as uow:
        when = datetime.now(UTC) + timedelta(days=3)
        uow.schedule(received(), timer_subject="timers.plans.test.one", at=when, timer_id="timer:test-one")
        await uow.commit()
    await asyncio.sleep(0.3)
    # A failure of the held round, published again later, could otherwise land after this
    # timer's messages: the timer waits.
    assert relay.published == 0 and await stream_count(js, "TIMERS_PLANS") == 0
    slow.release.set()
    await wait_for(lambda: relay.published == 2)
    assert await stream_count(js, "TIMERS_PLANS") == 1 and await stream_count(js, "REFERRAL") == 1


async def test_a_round_that_fails_goes_out_later_through_the_scan_and_the_relay_runs_on(setup):  # type: ignore[no-untyped-def]
    _, db, _, js = setup
    await ensure_streams(js)
    relay = OutboxRelay(db, js, poll_seconds=0.05)
    task = asyncio.create_task(relay.run())
    try:
        async with PlansUnitOfWork(db) as uow:
            uow.emit(received(), subject="nostream.test.v1")  # no stream captures it: the publish fails
            await uow.commit()
        await wait_for(lambda: relay._round_failed is None and not relay._rounds and relay.published == 0)
        async with PlansUnitOfWork(db) as uow:
            uow.emit(consent_given())
            await uow.commit()
        await wait_for(lambda: relay.published == 1)
        await js.add_stream(StreamConfig(name="LATE", subjects=["nostream.>"], storage=StorageType.FILE))
        await wait_for(lambda: relay.published == 2, timeout=15)  # the scan after the failure, retried
        assert await stream_count(js, "LATE") == 1 and await stream_count(js, "REFERRAL") == 1
    finally:
        relay.stop()
        await task
    assert await unsent(db) == []
