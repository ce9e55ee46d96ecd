"""The fault suite runs on a nats-server with the per-service users (infra/auth.py), as `make run`
does: each service process under its own identity, the test's front door as ``frontdoor`` and its
observer (streams, event log, health) as ``ops``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import nats
import pytest

from infra.natsserver import EmbeddedNats
from shared.contracts import STREAMS
from shared.messaging.streams import ensure_streams
from tests.support.identities import connect_as, secured_server


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = secured_server(tmp_path_factory.mktemp("nats-secured"))
    yield server
    server.stop()


@pytest.fixture
async def nc(nats_server: EmbeddedNats) -> AsyncIterator[nats.NATS]:
    client = await connect_as(nats_server, "ops", max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    # ops may not read the case keys: the event log opens sealed fields as a service would
    # (tests/support/system.EventLog), over a connection as the referral service.
    keys = await connect_as(nats_server, "referral", max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    client.koolle_keys = keys  # type: ignore[attr-defined]
    yield client
    await client.drain()
    await keys.drain()


@pytest.fixture
async def frontdoor(nats_server: EmbeddedNats) -> AsyncIterator[nats.NATS]:
    client = await connect_as(nats_server, "frontdoor", max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    yield client
    await client.drain()


@pytest.fixture
async def clean_streams(nc: nats.NATS) -> None:
    js = nc.jetstream()
    for name in STREAMS:
        try:
            await js.delete_stream(name)
        except Exception:  # noqa: BLE001 - not there yet
            pass
    await ensure_streams(js)
