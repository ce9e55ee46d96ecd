"""A family's invitation names the place, its address and the people, never an id: the real meetings
service announces its roster (roster.room_changed / roster.professional_changed), the real
notifications service keeps it, and the e-mail a guardian receives over real SMTP reads as a person
would write it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from services.meetings.bootstrap import bootstrap as meetings
from services.notifications.bootstrap import bootstrap as notifications
from services.notifications.config import NotificationsConfig
from services.referral.bootstrap import bootstrap as referral
from shared.case_access import CaseAccess
from shared.client import call
from shared.clock import HELSINKI
from shared.datetext import when_text
from shared.glossary import problems, roles
from shared.service import Service
from tests.conftest import wait_for
from tests.support.data import submission
from tests.support.identity import TestIdentity
from tests.support.notifications_fakes import SmtpServer

pytestmark = [pytest.mark.integration]

TEAM = "testila-family-centre"  # where the routing puts a Testilä concern raised with the family


@asynccontextmanager
async def started(*services: Service) -> AsyncIterator[None]:
    for s in services:
        await s.start()
    try:
        yield
    finally:
        for s in reversed(services):
            await s.stop()


async def test_the_invitation_names_the_place_its_address_and_the_convening_worker_and_no_id(
    settings: Any, nc: Any, clean_streams: Any, identity: TestIdentity
) -> None:
    settings = identity.settings(settings)
    token = identity.worker("staff-close", TEAM, "Testilä")
    tomorrow = (datetime.now(HELSINKI) + timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
    with SmtpServer() as smtp:
        cfg = NotificationsConfig(smtp_host="127.0.0.1", smtp_port=smtp.port, receipt_poll_seconds=0)
        ref, meet, note = referral(settings), meetings(settings), notifications(settings, config=cfg)
        async with started(ref, meet, note):
            sub = submission()
            await nc.jetstream().publish(
                "intake.referral.v1", json.dumps(sub).encode(), headers={"Nats-Msg-Id": sub["submission_id"]}
            )

            async def case_id() -> str | None:
                async with ref.uow() as uow:
                    found = await uow.referrals.by_submission(sub["submission_id"])  # type: ignore[attr-defined]
                    return str(found.case_id) if found else None

            case = await wait_for(case_id)

            async def team_known() -> bool:
                async with meet.uow() as uow:
                    (rel,) = await CaseAccess(uow).relations([case])
                return bool(rel.teams)

            await wait_for(team_known)
            reply = await call(
                nc,
                "cmd.meetings.convene.v2",
                {
                    "command_id": str(uuid4()),
                    "case_id": case,
                    "starts_at": tomorrow.astimezone(UTC).isoformat(),
                    "ends_at": (tomorrow + timedelta(minutes=90)).astimezone(UTC).isoformat(),
                    "room": "Room 1",
                    "participants": [
                        {"participant_id": "guardian-1", "kind": "family", "role": "guardian"},
                        {"participant_id": "staff-close", "kind": "professional", "role": "close_worker"},
                        {"participant_id": "staff-psy", "kind": "professional", "role": "psychologist"},
                    ],
                },
                token=token,
            )
            assert reply.ok, reply.errors
            await wait_for(lambda: len(smtp.to("maija@example.com")) >= 1, timeout=20)

    (invitation,) = [m for m in smtp.to("maija@example.com") if m["Subject"] == "Kutsu yhteiseen tapaamiseen"]
    text = invitation.get_body(("plain",)).get_content()
    # The place and its address from the roster, the convening worker with title and work contact.
    for expected in (
        "Testilän perhekeskus, 1. krs",
        "Testikatu 5, 00990 Testilä",
        "Sanna Lehtonen, varhaiskasvatuksen opettaja",
        "040\u00a01234501",  # formatted for Finland, never wrapped
        "sanna.lehtonen@testila.example",
        "Mikael Nyström, psykologi",
        when_text(tomorrow, "fi") + "–13.30",
    ):
        assert expected in text, (expected, text)
    # No room id, person id or role code in the text or in the calendar entry's place.
    ics = next(p for p in invitation.walk() if p.get_content_type() == "text/calendar").get_content()
    for internal in ("Room 1", "staff-close", "staff-psy", "guardian-1", *roles()):
        assert internal not in text, internal
    assert "LOCATION:Testilän perhekeskus\\, 1. krs\\, Testikatu 5\\, 00990 Testilä" in ics.replace("\r\n ", "")
    assert problems(text, "fi") == []
