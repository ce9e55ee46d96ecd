"""The services as separate processes, for end-to-end and fault tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from infra.run import SERVICES, start_service, stop_services
from shared.settings import Settings
from tests.support.identity import TestIdentity

ROOT = Path(__file__).resolve().parents[2]


class Processes:
    def __init__(self, settings: Settings, identity: TestIdentity | None = None, identities: bool = False, **env: str) -> None:
        """``identity``: the identity provider the services trust (staff and guardian tokens).
        ``identities``: each service runs under its own NATS user (tests/support/identities.py)."""
        self.settings = settings
        self.identity = identity
        self.identities = identities
        self.base_env = dict(os.environ)
        self.base_env.update(
            KOOLLE_NATS_URL=settings.nats_url,
            KOOLLE_DATA_DIR=str(settings.data_dir),
            KOOLLE_ACK_WAIT_SECONDS="2",
            KOOLLE_OUTBOX_POLL_SECONDS="0.2",
            KOOLLE_RETRY_DELAYS="[0.2,0.5,1]",
            KOOLLE_HTTP_PORT_BASE="0",
            KOOLLE_LOG_LEVEL="WARNING",
            KOOLLE_NOTIFICATIONS_RECONCILE_AFTER_SECONDS="3",
            PYTHONPATH=str(ROOT),
        )
        if identity is not None:
            self.base_env.update(identity.issuer.settings_env(identity.jwks_url))
        self.base_env.update(env)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.kills: dict[str, int] = {}

    def start(self, *names: str, **env: str) -> None:
        from tests.support.identities import service_env

        for n in names or SERVICES:
            own = service_env(n) if self.identities else {}
            self.procs[n] = start_service(n, self.settings, {**self.base_env, **own, **env})

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        p = self.procs[name]
        if p.poll() is None:
            os.kill(p.pid, sig)
        p.wait(timeout=30)
        self.kills[name] = self.kills.get(name, 0) + 1

    def wait_exit(self, name: str, timeout: float = 60.0) -> int:
        return self.procs[name].wait(timeout=timeout)

    def pause(self, name: str) -> None:
        os.kill(self.procs[name].pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        os.kill(self.procs[name].pid, signal.SIGCONT)

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def stop(self) -> None:
        stop_services(self.procs)


def report(name: str, **figures: Any) -> str:
    """Print a fault test's figures and keep them under var/reliability/ for docs/reliability.md."""
    line = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in figures.items())
    print(f"\n[{name}] {line}")
    out = ROOT / "var" / "reliability"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps({"test": name, "at": time.strftime("%Y-%m-%d %H:%M"), **figures}))
    return line
