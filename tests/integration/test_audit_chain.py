"""The audit log is tamper-evident (issue 18, finding 3): every record is chained to the one before
it, a verification finds the first break, and PostgreSQL refuses TRUNCATE. The probe: drop the
append-only trigger, delete a record, put the trigger back."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from services.referral.adapters import metadata as referral_metadata
from shared import pseudonyms
from shared.audit import AuditLog, verify_chain
from shared.storage.database import Database
from shared.storage.uow import UnitOfWork
from tests.support.databases import KINDS, fresh_database

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def key(tmp_path: Path) -> None:
    pseudonyms.use_key_file(tmp_path / "pseudonym.key")


@pytest.fixture(params=KINDS)
async def db(request, tmp_path):  # type: ignore[no-untyped-def]
    async with fresh_database(request.param, referral_metadata, tmp_path, "audit") as d:
        yield d


async def _write(db: Database, n: int, actor: str = "staff-1") -> None:
    for i in range(n):
        async with UnitOfWork(db) as uow:
            await AuditLog(uow, "referral").record(
                actor=actor, case_id=None, action="read_case", purpose=f"case work {i}", result="found", scope="case:x"
            )
            await uow.commit()


def _pg_dsn(db: Database) -> str:
    return db.url.replace("+asyncpg", "")


async def _raw(db: Database, *statements: str) -> None:
    """Statements as an intruder with the database's own rights would run them, outside the services."""
    if db.url.startswith("sqlite"):
        conn = sqlite3.connect(make_url(db.url).database or "")
        try:
            for s in statements:
                conn.execute(s)
            conn.commit()
        finally:
            conn.close()
    else:
        pg = await asyncpg.connect(_pg_dsn(db))
        try:
            for s in statements:
                await pg.execute(s)
        finally:
            await pg.close()


def _trigger_sql(db: Database) -> tuple[str, str]:
    """(drop, create) of the trigger that refuses DELETE, as the database itself reports it."""
    if db.url.startswith("sqlite"):
        conn = sqlite3.connect(make_url(db.url).database or "")
        (create,) = conn.execute("select sql from sqlite_master where type='trigger' and name='audit_log_no_delete'").fetchone()
        conn.close()
        return "DROP TRIGGER audit_log_no_delete", create
    return (
        "DROP TRIGGER audit_log_append_only ON audit_log",
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
    )


async def test_an_untouched_log_verifies(db: Database) -> None:
    await _write(db, 5)
    report = await verify_chain(db)
    assert report.ok and report.records == 5 and report.broken_at is None


async def test_a_record_deleted_behind_a_dropped_trigger_is_found(db: Database) -> None:
    await _write(db, 5)
    drop, create = _trigger_sql(db)
    await _raw(db, drop, "DELETE FROM audit_log WHERE id = 3", create)
    report = await verify_chain(db)
    assert not report.ok
    assert report.broken_at == 4  # the record after the gap no longer follows its predecessor
    assert report.reason == "previous_record_missing_or_changed"


async def test_a_record_changed_behind_a_dropped_trigger_is_found(db: Database) -> None:
    await _write(db, 4)
    if db.url.startswith("sqlite"):
        statements = ["DROP TRIGGER audit_log_no_update", "UPDATE audit_log SET actor = 'someone-else' WHERE id = 2"]
    else:
        drop, create = _trigger_sql(db)
        statements = [drop, "UPDATE audit_log SET actor = 'someone-else' WHERE id = 2", create]
    await _raw(db, *statements)
    report = await verify_chain(db)
    assert (report.ok, report.broken_at, report.reason) == (False, 2, "record_changed")


async def test_the_last_records_deleted_are_found(db: Database) -> None:
    await _write(db, 4)
    drop, create = _trigger_sql(db)
    await _raw(db, drop, "DELETE FROM audit_log WHERE id >= 3", create)
    report = await verify_chain(db)
    assert (report.ok, report.reason) == (False, "records_missing_at_end")


async def test_an_emptied_log_is_found(db: Database) -> None:
    await _write(db, 3)
    drop, create = _trigger_sql(db)
    await _raw(db, drop, "DELETE FROM audit_log", create)
    report = await verify_chain(db)
    assert (report.ok, report.reason) == (False, "records_missing_at_end")


@pytest.mark.postgres
async def test_postgres_refuses_truncate_of_the_audit_log(tmp_path: Path) -> None:
    async with fresh_database("postgresql", referral_metadata, tmp_path, "trunc") as d:
        await _write(d, 2)
        for table in ("audit_log", "audit_chain"):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await _raw(d, f"TRUNCATE {table}")
        assert (await verify_chain(d)).ok


@pytest.mark.postgres
async def test_concurrent_writers_on_postgres_keep_one_unbroken_chain(tmp_path: Path) -> None:
    async with fresh_database("postgresql", referral_metadata, tmp_path, "conc") as d:
        other = Database(d.url, referral_metadata)
        try:
            await asyncio.gather(*(_write(x, 15, actor=f"staff-{i}") for i, x in enumerate((d, other, d, other))))
        finally:
            await other.dispose()
        report = await verify_chain(d)
        assert report.ok and report.records == 60


async def _ops(env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "infra.ops",
        *args,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode()


async def test_ops_verify_audit_reports_the_first_break_and_fails(db: Database, tmp_path: Path) -> None:
    env = {"KOOLLE_DATA_DIR": str(tmp_path), "KOOLLE_REFERRAL_DATABASE_URL": db.url, "COLUMNS": "200"}
    await _write(db, 4)
    code, out = await _ops(env, "verify-audit", "referral")
    assert code == 0, out
    assert "referral" in out and "4 records" in out
    drop, create = _trigger_sql(db)
    await _raw(db, drop, "DELETE FROM audit_log WHERE id = 2", create)
    code, out = await _ops(env, "verify-audit", "referral")
    assert code == 1, out
    assert "record 3" in out and "previous_record_missing_or_changed" in out


async def test_a_log_written_before_the_chain_is_chained_at_start_and_then_verifies(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(
        """
        CREATE TABLE audit_log (id INTEGER PRIMARY KEY AUTOINCREMENT, at DATETIME NOT NULL, actor VARCHAR(100) NOT NULL,
            case_id VARCHAR(36), action VARCHAR(60) NOT NULL, purpose VARCHAR(200) NOT NULL, result VARCHAR(20) NOT NULL,
            scope VARCHAR(120));
        CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
        INSERT INTO audit_log (at, actor, action, purpose, result) VALUES
            ('2026-11-01 10:00:00.000000', 'staff-1', 'read_case', 'case work', 'found'),
            ('2026-11-02 10:00:00.000000', 'staff-2', 'read_case', 'case work', 'found');
        """
    )
    conn.commit()
    conn.close()
    db = Database(f"sqlite+aiosqlite:///{path}", referral_metadata)
    try:
        await db.create_all()
        await _write(db, 1)
        report = await verify_chain(db)
        assert report.ok and report.records == 3
        await _raw(db, "DROP TRIGGER audit_log_no_delete", "DELETE FROM audit_log WHERE id = 1")
        assert (await verify_chain(db)).broken_at == 2
    finally:
        await db.dispose()
