"""Reminders before the meeting are durable JetStream timers: they fire while the service is down (and
the reminder goes out once it is back),
move with a reschedule (the same timer subject is scheduled again) and disappear with a cancellation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from shared.client import call
from tests.conftest import wait_for
from tests.integration.test_meetings_convening import convene_cmd, opened, publish_case, received
from tests.support.staff import TEAM
from tests.support.system import EventLog, running

pytestmark = [pytest.mark.integration]


async def test_reminders_survive_restarts_follow_reschedules_and_vanish_on_cancel(
    staff_settings, nc, clean_streams, monkeypatch, identity, worker_token
):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KOOLLE_MEETINGS_REMINDER_LEAD_SECONDS", "3600")
    log = await EventLog().attach(nc, ("meeting.>", "timers.meetings.fired"))
    lead = timedelta(hours=1)
    t0 = datetime.now(UTC).replace(microsecond=0)
    w = worker_token
    async with running(staff_settings, "meetings"):
        ev = received(consent=True)
        await publish_case(nc, ev)
        await opened(nc, ev.case_id, w)
        room = await call(
            nc,
            "cmd.meetings.upsert_room.v2",
            {
                "command_id": str(uuid4()),
                "room_id": "Room 3",
                "municipality": "Testilä",
                "capacity": 6,
                "location": "Testilän perhekeskus",
            },
            token=identity.team_lead("lead-1", TEAM),  # a team lead keeps the roster
        )
        assert room.ok
        a = await call(nc, "cmd.meetings.convene.v2", convene_cmd(ev.case_id, t0 + lead + timedelta(seconds=3)), token=w)
        b = await call(
            nc,
            "cmd.meetings.convene.v2",
            convene_cmd(ev.case_id, t0 + lead + timedelta(seconds=3), pros=[("staff-fw", "family_worker")], room="Room 2"),
            token=w,
        )
        c = await call(
            nc,
            "cmd.meetings.convene.v2",
            convene_cmd(ev.case_id, t0 + lead + timedelta(seconds=3), pros=[("staff-sc", "social_counsellor")], room="Room 3"),
            token=w,
        )
        assert a.ok and b.ok and c.ok, (a.errors, b.errors, c.errors)
        moved_to = t0 + lead + timedelta(seconds=6)
        r = await call(
            nc,
            "cmd.meetings.reschedule.v2",
            {
                "command_id": str(uuid4()),
                "case_id": str(ev.case_id),
                "meeting_id": b.id,
                "starts_at": moved_to.isoformat(),
                "ends_at": (moved_to + lead).isoformat(),
                "reason": "family asked",
            },
            token=w,
        )
        assert r.ok and r.data["sequence"] == 1
        x = await call(
            nc,
            "cmd.meetings.cancel.v2",
            {"command_id": str(uuid4()), "case_id": str(ev.case_id), "meeting_id": c.id, "reason": "not needed"},
            token=w,
        )
        assert x.ok
        await wait_for(lambda: log.of("meeting.cancelled"))  # the outbox (timers included) is out
    # The service is down; the reminder for meeting a fires from JetStream all the same, into the
    # service's own timers subject, and waits there for the service.
    fired = await wait_for(lambda: log.of("timers.meetings.fired"), timeout=10)
    assert [e["meeting_id"] for e in fired] == [a.id]
    assert not log.of("meeting.reminder_due")
    async with running(staff_settings, "meetings"):
        reminders = await wait_for(
            lambda: len(log.of("meeting.reminder_due")) >= 2 and log.of("meeting.reminder_due"), timeout=10
        )
        await asyncio.sleep(1.0)  # nothing else may follow: not b's old time, not the cancelled c
        reminders = log.of("meeting.reminder_due")
    by_meeting = {e["meeting_id"]: e for e in reminders}
    assert len(reminders) == 2 and set(by_meeting) == {a.id, b.id}
    assert by_meeting[b.id]["sequence"] == 1
    assert datetime.fromisoformat(by_meeting[b.id]["starts_at"]) == moved_to
    assert "guardian-1" in by_meeting[a.id]["participant_ids"]
    assert c.id not in by_meeting
