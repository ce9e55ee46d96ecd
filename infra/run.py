"""Run Koolle locally: the embedded nats-server, the four services as separate processes, and
(with ``--demo``) a front door + staff app walking one invented family through the whole flow.

Every event is printed as it passes (ids only, no personal data). Ctrl-C stops everything
cleanly; starting again keeps the data (``var/`` by default).

    python -m infra.run --demo          # what `make run` does
    KOOLLE_NATS_URL=nats://host:4222 KOOLLE_REFERRAL_DATABASE_URL=postgresql+asyncpg://... \\
        python -m infra.run --external-nats
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlparse

import nats

from infra.auth import authorization_block, credentials_path, inbox_prefix, load_or_create_passwords
from infra.identity_provider import JwksServer, LocalIssuer
from infra.natsserver import EmbeddedNats
from shared.messaging.streams import ensure_streams
from shared.private_files import make_private, owner_only
from shared.settings import Settings

SERVICES = ("referral", "meetings", "plans", "notifications")


def start_service(name: str, settings: Settings, env: dict[str, str]) -> subprocess.Popen[bytes]:
    logs = settings.data_dir / "logs"
    logs.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(os.open(logs / f"{name}.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", f"services.{name}"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the runner only; it stops the services in order
        )


def start_services(settings: Settings, env: dict[str, str]) -> dict[str, subprocess.Popen[bytes]]:
    return {name: start_service(name, settings, env) for name in SERVICES}


async def wait_ready(nc: nats.NATS, names: tuple[str, ...] = SERVICES, timeout: float = 60.0) -> float:
    t0 = time.monotonic()
    pending = set(names)
    while pending:
        for name in list(pending):
            try:
                reply = await nc.request(f"ops.health.{name}", b"{}", timeout=0.5)
                if json.loads(reply.data).get("ready"):
                    pending.discard(name)
            except Exception:  # noqa: BLE001 - not up yet
                pass
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"services not ready in {timeout:.0f}s: {sorted(pending)} (see var/logs/)")
        if pending:
            await asyncio.sleep(0.1)
    return time.monotonic() - t0


def stop_services(procs: dict[str, subprocess.Popen[bytes]], timeout: float = 15.0) -> None:
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for p in procs.values():
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def start_identity_provider(settings: Settings, env: dict[str, str]) -> JwksServer | None:
    """The embedded identity provider, unless a real one is configured (KOOLLE_OIDC_ISSUER): the
    data dir's signing key, its JWKS on loopback, and the services told to trust it (env)."""
    if settings.oidc_issuer:
        return None
    issuer = LocalIssuer.load_or_create(settings.data_dir)
    # Beside the services' probe ports (base + 1..4) when they are fixed; else any free port.
    port = settings.http_port_base if settings.http_port_base > 0 else 0
    try:
        server = JwksServer(issuer, "127.0.0.1", port).start()
    except OSError:
        server = JwksServer(issuer, "127.0.0.1", 0).start()
    env.update(issuer.settings_env(server.url))
    print(f"identity provider (local): JWKS at {server.url}; tokens: {_python()} -m infra.token staff|guardian ...")
    return server


async def main_async(args: argparse.Namespace) -> int:
    settings = Settings()
    # Secrets and personal data: owner only (the services and nats-server inherit the umask).
    owner_only()
    make_private(settings.data_dir)
    env = dict(os.environ)
    server: EmbeddedNats | None = None
    passwords: dict[str, str] | None = None
    if not args.external_nats:
        # Least privilege on the embedded default: each service, the front door, the staff app
        # and ops have their own NATS user, subjects and inbox prefix (infra/auth.py).
        port = urlparse(settings.nats_url).port or 4250
        passwords = load_or_create_passwords(credentials_path(settings.data_dir))
        server = EmbeddedNats(settings.data_dir / "nats", port, extra_config=authorization_block(passwords)).start()
        print(
            f"nats-server {server.url} (JetStream on disk: {settings.data_dir / 'nats'}, sync_interval always, per-service users)"
        )
    env["KOOLLE_NATS_URL"] = settings.nats_url
    env["KOOLLE_DATA_DIR"] = str(settings.data_dir.resolve())
    jwks = start_identity_provider(settings, env)

    def connect(identity: str) -> Any:
        options = settings.nats_connect_options()  # TLS (and, with --external-nats, the user) from KOOLLE_NATS_*
        if passwords is not None:
            options.update(user=identity, password=passwords[identity], inbox_prefix=inbox_prefix(identity))
        return nats.connect(**options, max_reconnect_attempts=-1)

    nc = await connect("ops")
    await ensure_streams(nc.jetstream(), settings.duplicate_window_seconds, settings.stream_replicas, settings.stream_max_ages())
    t0 = time.monotonic()
    procs = {}
    for name in SERVICES:
        service_env = dict(env)
        if passwords is not None:
            service_env.update(
                KOOLLE_NATS_USER=name,
                KOOLLE_NATS_PASSWORD=passwords[name],
                KOOLLE_NATS_INBOX_PREFIX=inbox_prefix(name),
                KOOLLE_MANAGE_STREAMS="false",
            )
        procs[name] = start_service(name, settings, service_env)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await wait_ready(nc)
        print(f"all four services ready in {time.monotonic() - t0:.1f}s; logs in {settings.data_dir / 'logs'}")
        from infra.demo import print_events, run_demo

        await print_events(nc)
        if args.demo:
            frontdoor, staff = await connect("frontdoor"), await connect("staffapp")
            issuer = LocalIssuer.load_or_create(settings.data_dir)  # the embedded provider's key
            demo = asyncio.create_task(run_demo(nc, issuer, frontdoor=frontdoor, staff=staff))
            done, _ = await asyncio.wait({demo, asyncio.create_task(stop.wait())}, return_when=asyncio.FIRST_COMPLETED)
            if demo in done and demo.exception() is None:
                print("\nDemo complete. The system keeps running and printing events; Ctrl-C stops it.")
            elif demo in done:
                print(f"\nDemo failed: {demo.exception()!r}")
        if not stop.is_set():
            await stop.wait()
        print("\nstopping...")
    finally:
        await nc.close()
        stop_services(procs)
        if server is not None:
            server.stop()
        if jwks is not None:
            jwks.stop()
    make_private(settings.data_dir)
    print("stopped cleanly; data kept in", settings.data_dir)
    return 0


def _python() -> str:
    """The interpreter as an operator would type it from the checkout (``.venv/bin/python``)."""
    try:
        return os.path.relpath(sys.executable)
    except ValueError:
        return sys.executable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo", action="store_true", help="walk one invented family through the whole flow")
    parser.add_argument("--external-nats", action="store_true", help="use KOOLLE_NATS_URL instead of starting nats-server")
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main_async(args)))


if __name__ == "__main__":
    main()
