"""Access audit (Client Data Act 703/2023 s. 11): every read of a family's data leaves an
append-only record (who, whose data, what, purpose, when, result), and one query answers
"who has seen my data" for one person (query.referral.access_log.v1)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from uuid import uuid4

import pytest

from shared.client import call, submit_referral
from tests.conftest import wait_for
from tests.support.data import submission
from tests.support.system import EventLog, running

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]


async def test_who_has_seen_my_data(settings, nc, clean_streams):  # type: ignore[no-untyped-def]
    log = await EventLog().attach(nc, ("referral.>",))
    async with running(settings, "referral"):
        mine, other = submission(), submission()
        hetu = mine["children"][0]["personal_id"]
        await submit_referral(nc, mine)
        await submit_referral(nc, other)
        received = await wait_for(lambda: len(log.of("referral.received")) == 2 and log.of("referral.received"))
        case_id = next(e["case_id"] for e in received if e["submission_id"] == mine["submission_id"])
        other_case = next(e["case_id"] for e in received if e["submission_id"] == other["submission_id"])
        (assigned, *_) = await wait_for(lambda: [e for e in log.of("referral.assigned") if e["case_id"] == case_id])

        read = await call(nc, "query.referral.case.v1", {"case_id": case_id, "requested_by": "staff-sw-1", "purpose": "assessment decision"})
        assert read.ok
        await call(nc, "query.referral.case.v1", {"case_id": other_case, "requested_by": "staff-sw-9", "purpose": "case work"})
        listed = await call(nc, "query.referral.team_cases.v1", {"team_id": assigned["team_id"], "requested_by": "staff-lead-2", "purpose": "allocation"})
        assert listed.ok

        first = await call(nc, "query.referral.access_log.v1", {"personal_id": hetu, "requested_by": "staff-registry-1", "purpose": "subject access request"})
        assert first.ok, first.errors
        assert first.data["cases"] == [case_id]
        seen = [(e["actor"], e["action"], e["purpose"], e["result"]) for e in first.data["entries"]]
        assert ("staff-sw-1", "read_case", "assessment decision", "found") in seen
        assert ("staff-lead-2", "list_team_cases", "allocation", "found") in seen
        assert all(e["case_id"] == case_id and e["at"] for e in first.data["entries"])
        assert "staff-sw-9" not in {e["actor"] for e in first.data["entries"]}, "another family's reader is not shown"

        # Reading the log is itself a disclosure: it is in the next answer.
        again = await call(nc, "query.referral.access_log.v1", {"case_id": case_id, "requested_by": "staff-registry-1"})
        assert again.ok and ("staff-registry-1", "read_access_log") in {(e["actor"], e["action"]) for e in again.data["entries"]}

        bad = await call(nc, "query.referral.access_log.v1", {"personal_id": "010101-0000", "requested_by": "staff-registry-1"})
        assert not bad.ok and bad.errors[0].code == "invalid_personal_id" and set(bad.errors[0].message) == {"fi", "sv", "en"}
        none = await call(nc, "query.referral.access_log.v1", {"case_id": str(uuid4()), "requested_by": "staff-registry-1"})
        assert not none.ok and none.errors[0].code == "not_found"
        both = await call(nc, "query.referral.access_log.v1", {"case_id": case_id, "personal_id": hetu, "requested_by": "x"})
        assert not both.ok

    with sqlite3.connect(settings.data_dir / "referral.db") as conn:
        rows = conn.execute("select * from audit_log").fetchall()
        assert rows and not any(hetu in str(r) for r in rows), "the audit log holds no henkilötunnus"
        # Append-only in the database itself.
        for stmt in ("update audit_log set actor = 'someone-else'", "delete from audit_log"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute(stmt)
        assert conn.execute("select count(*) from audit_log").fetchone()[0] == len(rows)


def test_no_code_path_updates_or_deletes_the_audit_log() -> None:
    sources = [p for p in (ROOT / "services").rglob("*.py")]
    offending = [
        str(p) for p in sources
        if re.search(r"(update|delete)\(\s*audit_log|(UPDATE|DELETE FROM)\s+audit_log", p.read_text(), re.IGNORECASE)
    ]
    assert offending == []
