"""A moved follow-up reaches people: the real plans service moves the agreed next contact
(``cmd.plans.reschedule_followup.v2`` with the close worker's token -> ``followup.rescheduled.v1``), and the real notifications
service tells the family and the responsible worker over real SMTP, each in their own language."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from services.notifications.bootstrap import bootstrap as notifications
from services.notifications.config import NotificationsConfig
from services.plans.bootstrap import bootstrap as plans
from shared.client import call
from shared.clock import HELSINKI, FixedClock
from shared.datetext import when_text
from shared.service import Service
from tests.conftest import wait_for
from tests.support.notifications_fakes import SmtpServer
from tests.support.staff import TEAM, assign, relation_known
from tests.support.system import EventLog

pytestmark = [pytest.mark.integration]

TUESDAY_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=HELSINKI).astimezone(UTC)
GUARDIAN = {"contact_id": "guardian-1", "role": "guardian", "language": "sv", "email": "g1@example.com"}
WORKER = {"contact_id": "staff-close", "role": "responsible_worker", "language": "en", "email": "close@example.com"}


@asynccontextmanager
async def started(*services: Service) -> AsyncIterator[None]:
    for s in services:
        await s.start()
    try:
        yield
    finally:
        for s in reversed(services):
            await s.stop()


async def test_a_moved_followup_is_told_to_the_family_and_the_responsible_worker_in_their_languages(
    staff_settings: Any, nc: Any, clean_streams: Any, worker_token: str
) -> None:
    settings = staff_settings
    clock = FixedClock(TUESDAY_NOON)
    log = await EventLog().attach(nc, ("followup.>", "notification.>"))
    first, moved = TUESDAY_NOON + timedelta(days=14), TUESDAY_NOON + timedelta(days=21)
    with SmtpServer() as smtp:
        cfg = NotificationsConfig(smtp_host="127.0.0.1", smtp_port=smtp.port, backoff_base_seconds=60, receipt_poll_seconds=0)
        plans_service = plans(settings, clock)
        async with started(plans_service, notifications(settings, clock, config=cfg)):
            case_id = str(uuid4())
            await assign(nc, case_id, TEAM)  # the case's team, as the referral service routes it
            await relation_known([plans_service], case_id)
            agreed = await call(
                nc,
                "cmd.plans.agree.v2",
                {
                    "command_id": str(uuid4()),
                    "case_id": case_id,
                    "changes_needed": ["Mornings run smoothly"],
                    "actions_at_home": [{"what": "Picture schedule", "who": "parent"}],
                    "worker_contacts_family": "Phone call on Mondays",
                    "family_contacts_worker": "Text message on weekdays",
                    "responsible_workers": [
                        {"worker_id": "staff-close", "organisation": "City ECEC", "public_service": True, "contact": WORKER}
                    ],
                    "next_contact_at": first.isoformat(),
                    "family_contacts": [GUARDIAN],
                },
                token=worker_token,
            )
            assert agreed.ok, agreed.errors
            await wait_for(lambda: len(smtp.to("g1@example.com")) == 1 and len(smtp.to("close@example.com")) == 1, timeout=15)

            reply = await call(
                nc,
                "cmd.plans.reschedule_followup.v2",
                {"command_id": str(uuid4()), "case_id": case_id, "plan_id": agreed.id, "next_contact_at": moved.isoformat()},
                token=worker_token,
            )
            assert reply.ok, reply.errors
            await wait_for(lambda: len(smtp.to("g1@example.com")) == 2 and len(smtp.to("close@example.com")) == 2, timeout=15)

            family, worker = smtp.to("g1@example.com")[-1], smtp.to("close@example.com")[-1]
            assert family["Subject"] == "Den överenskomna kontakten har flyttats"
            assert worker["Subject"] == "The agreed follow-up has moved"
            # The new time, in Helsinki time as people in Finland write it in the recipient's language.
            for msg, language in ((family, "sv"), (worker, "en")):
                text = msg.get_body(("plain",)).get_content()
                assert when_text(moved, language) in text and when_text(first, language) not in text, text
            assert "tis 15.12.2026 kl. 12.00" in family.get_body(("plain",)).get_content()

            def sent() -> list[dict[str, Any]]:
                return [e for e in log.of("notification.sent") if e["source_event_type"] == "followup.rescheduled"]

            await wait_for(lambda: len(sent()) == 2, timeout=10)
            assert sorted((e["recipient_id"], e["template"]) for e in sent()) == [
                ("guardian-1", "followup_rescheduled"),
                ("staff-close", "followup_rescheduled"),
            ]
