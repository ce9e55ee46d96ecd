"""The PostgreSQL server the benchmark and the tests use (127.0.0.1:5432, trust auth, database
``test``), found without importing ``tests/conftest.py``: that module sets the tests' short
consumer linger in the environment, which the benchmark's services would then inherit."""

from __future__ import annotations

import os
import socket

POSTGRES_URL = os.environ.get("KOOLLE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    except OSError:
        return False
