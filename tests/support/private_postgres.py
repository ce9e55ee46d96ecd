"""A private PostgreSQL server that a test creates, stops and starts at will (never the shared one
on 5432): its own data directory in a temporary directory, a free TCP port on 127.0.0.1, its unix
socket in the same temporary directory, fsync on.

PostgreSQL refuses to run as root, so when the tests run as root the server's programs run as the
``postgres`` OS user (``runuser``) and the temporary directory belongs to that user.

    from tests.support.private_postgres import private_postgres  # noqa: F401 (the fixture)
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest

from infra.natsserver import free_port

OS_USER = "postgres"


def find_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres side by side (pg_ctl starts the postgres
    next to it), newest version first; PATH as a fallback."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    which = shutil.which("pg_ctl")
    if which:
        candidates.append(str(Path(which).resolve().parent))
    for c in candidates:
        if all((Path(c) / exe).exists() for exe in ("initdb", "pg_ctl", "postgres", "createdb")):
            return Path(c)
    return None


def unavailable_reason() -> str | None:
    if find_bindir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing (initdb refuses root)"
        try:
            import pwd

            pwd.getpwnam(OS_USER)
        except KeyError:
            return f"running as root and there is no {OS_USER!r} OS user to run the server as"
    return None


class PrivatePostgres:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="koolle-pg-"))  # short: the socket path has a length limit
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.logfile = self.root / "server.log"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            shutil.chown(self.root, OS_USER, OS_USER)

    def _run(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", OS_USER, "--", *cmd]
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout)

    def init(self) -> PrivatePostgres:
        self.socket_dir.mkdir()
        if self.as_root:
            shutil.chown(self.socket_dir, OS_USER, OS_USER)
        # --no-sync only for initdb's own files; the running server fsyncs every commit.
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "fsync = on\nsynchronous_commit = on\nfull_page_writes = on\n"
                "shared_buffers = 16MB\nmax_connections = 200\n"
            )
        return self

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.logfile), "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: clients are disconnected, clean shutdown. ``immediate``: every server process
        quits at once, like a crash; the next start replays the WAL."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def running(self) -> bool:
        try:
            self._run("pg_ctl", "-D", str(self.data), "status")
            return True
        except subprocess.CalledProcessError:
            return False

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def fresh_databases(self, *services: str) -> dict[str, str]:
        """A new database per service (each service owns its database), returned as URLs."""
        tag = uuid4().hex[:8]
        urls = {}
        for s in services:
            name = f"koolle_{tag}_{s}"
            self._run("createdb", "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres", name)
            urls[s] = self.url(name)
        return urls

    def cleanup(self) -> None:
        if self.data.exists() and self.running():
            self.stop("fast")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"no private PostgreSQL: {reason}")
    bindir = find_bindir()
    assert bindir is not None
    pg = PrivatePostgres(bindir)
    try:
        pg.init().start()
        yield pg
    finally:
        pg.cleanup()
