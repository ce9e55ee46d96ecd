"""Partial indexes keep their WHERE on both databases, and a SQLite service never loads PostgreSQL's
dialect (it cost every SQLite service ≈ 3 MB of idle memory, bench/README.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, create_mock_engine

from shared.storage.indexes import partial_index


def created_ddl(metadata: MetaData, url: str) -> list[str]:
    statements: list[str] = []
    engine: Any = None

    def record(sql: Any, *_: Any, **__: Any) -> None:
        statements.append(str(sql.compile(dialect=engine.dialect)))

    engine = create_mock_engine(url, record)
    metadata.create_all(engine, checkfirst=False)
    return [s.strip() for s in statements if "INDEX" in s]


def test_a_partial_index_has_its_condition_on_sqlite_and_postgresql() -> None:
    metadata = MetaData()
    t = Table("t", metadata, Column("id", Integer, primary_key=True), Column("status", String(8)))
    partial_index("ix_t_open", t.c.id, where=t.c.status == "open")
    assert created_ddl(metadata, "sqlite://") == ["CREATE INDEX ix_t_open ON t (id) WHERE status = 'open'"]
    assert created_ddl(metadata, "postgresql+asyncpg://") == ["CREATE INDEX ix_t_open ON t (id) WHERE status = 'open'"]


def test_a_service_on_sqlite_does_not_load_the_postgresql_dialect(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from services.referral.bootstrap import bootstrap\n"
        "bootstrap()\n"
        "print(sorted(m for m in sys.modules if 'postgresql' in m or m.startswith('asyncpg')))\n"
    )
    env = dict(os.environ, KOOLLE_DATA_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60, env=env)
    assert out.stdout.strip() == "[]"
