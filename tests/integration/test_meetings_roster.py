"""The roster: loaded from a configuration file at start, changed by staff commands; a staff change
survives a restart, a file change to an entry staff did not touch is applied."""

from __future__ import annotations

import json
from uuid import uuid4

import pytest

from shared.client import call
from tests.support.system import running

pytestmark = [pytest.mark.integration]


def roster(psy_langs: list[str], room_capacity: int) -> dict:
    return {
        "professionals": [
            {
                "professional_id": "r-psy",
                "municipality": "Kuvitelma",
                "roles": ["psychologist"],
                "languages": psy_langs,
                "unit": "Perheneuvola",
            },
            {
                "professional_id": "r-fw",
                "municipality": "Kuvitelma",
                "roles": ["family_worker"],
                "languages": ["fi"],
                "unit": "Perhetyö",
                "working_hours": [{"day": "mon", "start": "09:00", "end": "12:00"}],
            },
        ],
        "rooms": [{"room_id": "r-room", "municipality": "Kuvitelma", "capacity": room_capacity, "location": "Perhekeskus"}],
    }


async def test_roster_file_and_staff_commands(staff_settings, nc, clean_streams, tmp_path, monkeypatch, identity, worker_token):  # type: ignore[no-untyped-def]
    path = tmp_path / "roster.json"
    path.write_text(json.dumps(roster(["fi"], 6)))
    monkeypatch.setenv("KOOLLE_MEETINGS_ROSTER", str(path))
    q = {"municipality": "Kuvitelma"}
    admin = identity.staff("admin", ("roster_admin",))  # keeps the roster; reaches no family's data
    async with running(staff_settings, "meetings"):
        r = await call(nc, "query.meetings.roster.v2", q, token=worker_token)
        assert {p["professional_id"] for p in r.data["professionals"]} == {"r-psy", "r-fw"}
        fw = next(p for p in r.data["professionals"] if p["professional_id"] == "r-fw")
        assert fw["working_hours"] == [{"day": "mon", "start": "09:00", "end": "12:00"}]
        psy = next(p for p in r.data["professionals"] if p["professional_id"] == "r-psy")
        assert len(psy["working_hours"]) == 5  # default Mon-Fri 08:00-16:00
        # staff change the family worker; a bad command gets a clear error
        up = {
            "command_id": str(uuid4()),
            "professional_id": "r-fw",
            "municipality": "Kuvitelma",
            "roles": ["family_worker", "home_help"],
            "languages": ["fi", "en"],
            "unit": "Perhetyö",
        }
        assert (await call(nc, "cmd.meetings.upsert_professional.v2", up, token=admin)).ok
        # a worker reads the roster but does not keep it
        refused = await call(nc, "cmd.meetings.upsert_professional.v2", dict(up, command_id=str(uuid4())), token=worker_token)
        assert not refused.ok and refused.errors[0].code == "forbidden"
        bad = dict(up, command_id=str(uuid4()), working_hours=[{"day": "mon", "start": "9", "end": "12:00"}])
        reply = await call(nc, "cmd.meetings.upsert_professional.v2", bad, token=admin)
        assert not reply.ok and reply.errors[0].field.startswith("working_hours")
    path.write_text(json.dumps(roster(["fi", "sv"], 10)))
    async with running(staff_settings, "meetings"):
        r = await call(nc, "query.meetings.roster.v2", q, token=worker_token)
        by_id = {p["professional_id"]: p for p in r.data["professionals"]}
        assert by_id["r-fw"]["roles"] == ["family_worker", "home_help"]  # the staff change stands
        assert by_id["r-psy"]["languages"] == ["fi", "sv"]  # the file change is applied
        assert r.data["rooms"][0]["capacity"] == 10
