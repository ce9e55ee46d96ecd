"""TLS to NATS from the KOOLLE_NATS_TLS_* settings, against a nats-server that requires it.

A throwaway PKI is made at test time (tests/support/pki.py). Servers: one requiring TLS, one
requiring mutual TLS (a client certificate from the test CA) and the least-privilege users, one
with TLS before INFO (handshake first). The referral service, configured by settings only,
consumes an intake and its outbox relay publishes referral.received over TLS; plaintext, an
untrusted CA, a wrong host name and (on mutual TLS) a missing or foreign client certificate are
refused; a client configured for TLS refuses a server without it, at start and on reconnect.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import ssl
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import nats
import pytest

from infra.auth import IDENTITIES, authorization_block, inbox_prefix
from infra.natsserver import EmbeddedNats, free_port, nats_server_binary
from services.referral.bootstrap import bootstrap
from shared.client import PlaintextRefused, connect, submit_referral
from shared.messaging.streams import ensure_streams
from shared.settings import Settings
from tests.conftest import wait_for
from tests.support.data import submission
from tests.support.pki import Pki, make_pki, openssl

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(openssl() is None, reason="needs the openssl CLI to make the test certificates"),
]

PASSWORDS = {i: f"pw-{i}-test" for i in IDENTITIES}


async def _quiet(e: Exception) -> None:  # refused connections are the point; no tracebacks in the log
    pass


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _server(tmp_path_factory: pytest.TempPathFactory, pki: Pki, **kw: Any) -> EmbeddedNats:
    return EmbeddedNats(
        tmp_path_factory.mktemp("nats-tls"),
        free_port(),
        monitor_port=free_port(),
        tls_cert=pki.server_cert,
        tls_key=pki.server_key,
        tls_ca=pki.ca,
        **kw,
    ).start()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, pki: Pki):  # type: ignore[no-untyped-def]
    server = _server(tmp_path_factory, pki)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def handshake_first_server(tmp_path_factory: pytest.TempPathFactory, pki: Pki):  # type: ignore[no-untyped-def]
    server = _server(tmp_path_factory, pki, tls_handshake_first=True)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mtls_server(tmp_path_factory: pytest.TempPathFactory, pki: Pki):  # type: ignore[no-untyped-def]
    server = _server(tmp_path_factory, pki, tls_verify=True, extra_config=authorization_block(PASSWORDS))
    yield server
    server.stop()


def tls_settings(base: Settings, server: EmbeddedNats, pki: Pki, mutual: bool, identity: str | None = None) -> Settings:
    update: dict[str, Any] = {"nats_url": server.url, "nats_tls_ca": str(pki.ca)}
    if mutual:
        update.update(nats_tls_cert=str(pki.client_cert), nats_tls_key=str(pki.client_key))
    if identity:
        update.update(nats_user=identity, nats_password=PASSWORDS[identity], nats_inbox_prefix=inbox_prefix(identity))
    return base.model_copy(update=update)


def connections(server: EmbeddedNats) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.monitor_port}/connz?auth=true", timeout=2) as r:
        return json.load(r)["connections"]  # type: ignore[no-any-return]


async def refused(settings: Settings) -> Exception:
    try:
        nc = await connect(settings, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0, error_cb=_quiet)
    except Exception as exc:  # noqa: BLE001 - the refusal is what we look at
        return exc
    await nc.close()
    raise AssertionError("the connection was accepted")


@pytest.mark.parametrize("mode", ["tls", "mutual-tls-and-users", "tls-handshake-first"])
async def test_referral_service_runs_over_tls_from_settings_only(request, settings, pki, mode):  # type: ignore[no-untyped-def]
    server = request.getfixturevalue(
        {"tls": "tls_server", "mutual-tls-and-users": "mtls_server"}.get(mode, "handshake_first_server")
    )
    mutual = mode == "mutual-tls-and-users"
    identity = (lambda name: name) if mutual else (lambda name: None)  # noqa: E731
    settings = settings.model_copy(update={"nats_tls_handshake_first": mode == "tls-handshake-first"})
    ops = await connect(tls_settings(settings, server, pki, mutual, identity("ops")), error_cb=_quiet)
    await ensure_streams(ops.jetstream())
    received: list[dict[str, Any]] = []

    async def on_received(msg: Any) -> None:
        received.append(json.loads(msg.data))

    # Read from the stream (ops may not subscribe to events on the bus, only to its own inbox).
    await ops.jetstream().subscribe("referral.received.v2", cb=on_received, ordered_consumer=True)
    svc = bootstrap(
        tls_settings(settings, server, pki, mutual, identity("referral")).model_copy(update={"manage_streams": False})
    )
    await asyncio.wait_for(svc.start(), 10)  # a TLS misconfiguration would otherwise retry forever
    try:
        frontdoor = await connect(tls_settings(settings, server, pki, mutual, identity("frontdoor")), error_cb=_quiet)
        body = submission()
        await submit_referral(frontdoor, body)
        await frontdoor.close()
        await wait_for(lambda: received, timeout=5)
        assert received[0]["submission_id"] == body["submission_id"]
        # referral.received is stored in its stream (``received`` reads the stream): the outbox relay
        # published it and got the PubAck.
        assert svc.relay is not None
        await wait_for(lambda: svc.relay.published >= 1, timeout=5)
        assert (await svc.health())["ready"]

        # The server's view: the service's one connection (requests, consumers, relay) is TLS,
        # and so is every other one; on mutual TLS it presented the test client certificate.
        conns = connections(server)
        service_conn = next(c for c in conns if c.get("name") == "koolle-referral")
        assert service_conn["tls_version"].startswith("1.")
        if mutual:
            assert service_conn["authorized_user"] == "referral"
            assert service_conn["tls_peer_certs"][0]["subject"] == "CN=koolle test client"
        assert all(c.get("tls_version") for c in conns), [c.get("name") for c in conns if not c.get("tls_version")]
    finally:
        await svc.stop()
        await ops.close()


async def test_plaintext_client_is_refused(tls_server):  # type: ignore[no-untyped-def]
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=3) as s:
        info = json.loads(s.recv(4096).decode().split(" ", 1)[1])
        assert info["tls_required"] is True
        s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nPING\r\n')
        reply = b""
        while chunk := s.recv(4096):  # the server closes: it only speaks TLS after INFO
            reply += chunk
        assert b"PONG" not in reply


async def test_handshake_first_server_sends_nothing_in_plaintext(handshake_first_server):  # type: ignore[no-untyped-def]
    with socket.create_connection(("127.0.0.1", handshake_first_server.port), timeout=3) as s:
        s.settimeout(0.3)
        with pytest.raises(TimeoutError):
            s.recv(4096)  # no INFO: the server waits for the client's TLS hello


async def test_a_tls_client_refuses_a_server_without_tls(settings, pki, nats_server):  # type: ignore[no-untyped-def]
    """nats-py would go on in plaintext when the server (or an impostor) does not ask for TLS."""
    plain = settings.model_copy(update={"nats_url": nats_server.url, "nats_tls_ca": str(pki.ca)})
    with pytest.raises(PlaintextRefused):
        await connect(plain)
    svc = bootstrap(plain)
    with pytest.raises(PlaintextRefused):
        await asyncio.wait_for(svc.start(), 10)
    await svc.stop()


async def test_a_connection_that_comes_back_without_tls_is_closed(settings, pki, tmp_path):  # type: ignore[no-untyped-def]
    """The server goes away and a plaintext one answers at its address: the client and the
    service close their connections (the service is then not ready) instead of going on."""
    port = free_port()
    secure = EmbeddedNats(tmp_path / "tls", port, tls_cert=pki.server_cert, tls_key=pki.server_key).start()
    tls = settings.model_copy(update={"nats_url": secure.url, "nats_tls_ca": str(pki.ca)})
    svc = bootstrap(tls)
    await asyncio.wait_for(svc.start(), 10)
    nc = await connect(tls, reconnect_time_wait=0.05, max_reconnect_attempts=-1, error_cb=_quiet)
    secure.stop()
    impostor = EmbeddedNats(tmp_path / "plain", port).start()  # same address, no TLS
    try:
        await wait_for(lambda: nc.is_closed, timeout=5)
        await wait_for(lambda: svc.broker.config.connection_state.connection.is_closed, timeout=5)
        assert not (await svc.health())["ready"]
    finally:
        try:
            await nc.close()
            await svc.stop()
        finally:  # never leave the impostor server running, whatever the closes above raise
            impostor.stop()


async def test_no_ca_or_an_untrusted_ca_is_refused(settings, pki, tls_server):  # type: ignore[no-untyped-def]
    # Without KOOLLE_NATS_TLS_CA the client checks the server against the system's CAs: refused.
    exc = await refused(settings.model_copy(update={"nats_url": tls_server.url}))
    assert isinstance(exc, ssl.SSLCertVerificationError)
    exc = await refused(settings.model_copy(update={"nats_url": tls_server.url, "nats_tls_ca": str(pki.rogue_ca)}))
    assert isinstance(exc, ssl.SSLCertVerificationError)
    # The right CA but a name the server certificate does not carry: refused as well.
    exc = await refused(
        settings.model_copy(
            update={"nats_url": tls_server.url, "nats_tls_ca": str(pki.ca), "nats_tls_hostname": "nats.example.org"}
        )
    )
    assert isinstance(exc, ssl.SSLCertVerificationError)
    nc = await connect(
        settings.model_copy(update={"nats_url": tls_server.url, "nats_tls_ca": str(pki.ca), "nats_tls_hostname": "localhost"})
    )
    assert nc.is_connected
    await nc.close()


async def test_mutual_tls_refuses_a_client_without_a_certificate_from_the_ca(settings, pki, mtls_server):  # type: ignore[no-untyped-def]
    ops = tls_settings(settings, mtls_server, pki, mutual=False, identity="ops")
    # The server checks the client certificate after the client's side of the handshake: the
    # client sees the connection dropped.
    assert isinstance(await refused(ops), (OSError, nats.errors.Error))
    foreign = ops.model_copy(update={"nats_tls_cert": str(pki.rogue_client_cert), "nats_tls_key": str(pki.rogue_client_key)})
    assert isinstance(await refused(foreign), (OSError, nats.errors.Error))
    nc = await connect(tls_settings(settings, mtls_server, pki, mutual=True, identity="ops"))
    assert nc.is_connected
    await nc.close()


async def test_ops_cli_connects_with_the_tls_settings(monkeypatch, pki, mtls_server):  # type: ignore[no-untyped-def]
    from infra.ops import _connect, status_data

    for key, value in {"CA": pki.ca, "CERT": pki.client_cert, "KEY": pki.client_key}.items():
        monkeypatch.setenv(f"KOOLLE_NATS_TLS_{key}", str(value))
    monkeypatch.setenv("KOOLLE_NATS_USER", "ops")
    monkeypatch.setenv("KOOLLE_NATS_PASSWORD", PASSWORDS["ops"])
    nc = await _connect(mtls_server.url)
    try:
        await ensure_streams(nc.jetstream())
        data = await status_data(nc)
        assert "INTAKE" in {si.config.name for si in data["streams"]}
    finally:
        await nc.close()


def test_cluster_tls_snippet_is_a_valid_server_configuration(pki: Pki, tmp_path: Path) -> None:
    """infra/nats-cluster/tls.conf, included in a node's configuration, loads with real certificates."""
    cluster = Path(__file__).resolve().parents[2] / "infra" / "nats-cluster"
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "pki").symlink_to(pki.ca.parent)
    shutil.copy(cluster / "tls.conf", tmp_path / "tls.conf")
    (tmp_path / "node-a.conf").write_text((cluster / "node-a.conf").read_text() + "\ninclude tls.conf\n")
    check = subprocess.run([nats_server_binary(), "-t", "-c", "node-a.conf"], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr + check.stdout


def test_settings_build_one_tls_context_for_every_connection(pki: Pki, tmp_path: Path) -> None:
    plain = Settings(data_dir=tmp_path)
    assert plain.nats_tls_context() is None and plain.nats_security() is None
    assert "tls" not in plain.nats_connect_options()
    s = Settings(
        data_dir=tmp_path,
        nats_url="nats://a:4222, nats://b:4222",
        nats_tls_ca=str(pki.ca),
        nats_tls_cert=str(pki.client_cert),
        nats_tls_key=str(pki.client_key),
        nats_user="referral",
        nats_password="pw",
        nats_tls_hostname="nats",
        nats_tls_handshake_first=True,
    )
    options = s.nats_connect_options()
    assert options["servers"] == ["nats://a:4222", "nats://b:4222"]
    assert isinstance(options["tls"], ssl.SSLContext) and options["tls"].verify_mode == ssl.CERT_REQUIRED
    assert options["tls"].check_hostname and options["tls_hostname"] == "nats" and options["tls_handshake_first"]
    assert (options["user"], options["password"]) == ("referral", "pw")
    security = s.nats_security()
    assert security.ssl_context is not None and security.tls_hostname == "nats" and security.username == "referral"
    assert security.tls_handshake_first
    assert Settings(data_dir=tmp_path, nats_url="tls://nats:4222").nats_tls_wanted()
    with pytest.raises(ValueError):
        Settings(data_dir=tmp_path, nats_tls_key=str(pki.client_key)).nats_tls_context()
