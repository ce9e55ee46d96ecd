"""The libraries' private attributes Koolle relies on (shared/internals/) are still there and still
behave as assumed, on the installed versions: an upgrade that breaks one fails here, loudly,
naming the library and its version, and the same check stops a service at start-up."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from sqlalchemy import Column, MetaData, String, Table, insert
from sqlalchemy.exc import IntegrityError

from shared.internals import InternalsChanged, check_all, require_attrs, require_names
from shared.internals.natspy import PullInbox, core_client, socket_is_tls
from shared.storage.fastpath.declare import hot_once
from shared.storage.tables import messaging_tables
from shared.storage.uow import UnitOfWork
from tests.support.databases import fresh_database

pytestmark = pytest.mark.integration


def test_every_internals_module_accepts_the_installed_libraries() -> None:
    check_all()


def test_a_missing_private_attribute_fails_naming_the_library_and_its_version() -> None:
    def without() -> None:
        return None

    with pytest.raises(InternalsChanged) as caught:
        require_names("nats-py", without, ("_pending_queue",), "Subscription")
    assert f"nats-py {version('nats-py')}" in str(caught.value) and "_pending_queue" in str(caught.value)
    with pytest.raises(InternalsChanged, match=f"sqlalchemy {version('sqlalchemy')}"):
        require_attrs("sqlalchemy", object(), ("_result_columns",), "SQLCompiler")


def test_a_service_process_stops_at_start_up_when_an_assumption_no_longer_holds() -> None:
    """The check runs on import: here nats-py's Subscription is changed the way an upgrade could."""
    code = (
        "import nats.aio.subscription as s\n"
        "s.Subscription.__init__ = lambda self, *a, **k: None\n"
        "import shared.messaging.consumer\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parents[2])
    assert done.returncode != 0
    assert "InternalsChanged" in done.stderr and f"nats-py {version('nats-py')}" in done.stderr


async def test_the_pull_inbox_takes_delivered_messages_and_keeps_nats_py_books(nc: nats.NATS) -> None:
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="INTERNALS", subjects=["internals.>"], storage=StorageType.MEMORY))
    try:
        for i in range(3):
            await js.publish("internals.x", f"m{i}".encode())
        psub = await js.pull_subscribe(
            "internals.x", durable="internals", stream="INTERNALS", config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT)
        )
        inbox = PullInbox(psub)
        assert inbox.nc is core_client(js) is nc
        assert inbox.next_subject.endswith(".CONSUMER.MSG.NEXT.INTERNALS.internals")
        await nc.publish(inbox.next_subject, b'{"batch": 3, "no_wait": true}', reply=inbox.deliver)
        await nc.flush()
        for _ in range(100):
            if inbox.waiting() >= 3:
                break
            await asyncio.sleep(0.01)
        assert inbox.waiting() == psub.pending_msgs >= 3 and psub.pending_bytes > 0
        got = [inbox.get_nowait().data for _ in range(3)]
        assert got == [b"m0", b"m1", b"m2"]
        assert psub.pending_bytes == 0  # nats-py's own byte count, kept as next_msg() keeps it
        assert socket_is_tls(nc) is False
    finally:
        await js.delete_stream("INTERNALS")


@pytest.mark.postgres
async def test_the_asyncpg_adapter_begins_the_transaction_and_maps_errors_as_sqlalchemy_does(tmp_path: Path) -> None:
    md = MetaData()
    messaging_tables(md)
    keyed = Table("keyed", md, Column("id", String(10), primary_key=True))
    async with fresh_database("postgresql", md, tmp_path, "internals") as db:
        stmt = hot_once(("test keyed", keyed), lambda: insert(keyed))
        async with UnitOfWork(db) as uow:
            await uow.execute(stmt, {"id": "a"})  # the fast path's first statement begins the transaction
            await uow.rollback()
        async with UnitOfWork(db) as uow:
            assert await uow.scalars(keyed.select()) == []
            await uow.execute(stmt, {"id": "a"})
            await uow.commit()
        async with UnitOfWork(db) as uow:
            with pytest.raises(IntegrityError):
                await uow.execute(stmt, {"id": "a"})
