"""A worker named without contact details is reached at the roster's work contact (issue 21, item 6):
the real notifications service over real SMTP, events published straight to JetStream."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from services.notifications.adapters import NotificationsUnitOfWork, metadata
from services.notifications.bootstrap import bootstrap
from services.notifications.channels import OutboundMessage, ProviderStatus, Receipt
from services.notifications.config import DEFAULT_ROSTER_FILE, NotificationsConfig, StaffDirectory
from services.notifications.delivery import Delivery, dispatch_once
from services.notifications.domain import Recipient, plan_notifications
from shared.clock import HELSINKI, FixedClock
from shared.contracts.plans import PlanAgreed
from shared.storage.database import Database
from tests.conftest import wait_for
from tests.support.notifications_fakes import SmtpServer
from tests.support.staff import publish_js

pytestmark = [pytest.mark.integration]

TUESDAY_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=HELSINKI).astimezone(UTC)
GUARDIAN = {"contact_id": "guardian-1", "role": "guardian", "language": "fi", "email": "g1@example.com"}


def roster_email(professional_id: str) -> str:
    """The work e-mail the meetings roster gives a professional (the data file the service reads)."""
    roster = json.loads(DEFAULT_ROSTER_FILE.read_text(encoding="utf-8"))
    return next(p["contact"]["email"] for p in roster["professionals"] if p["professional_id"] == professional_id)


class Recording:
    name = "email"

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    async def send(self, msg: OutboundMessage) -> Receipt:
        self.sent.append(msg)
        return Receipt(provider_ref=msg.notification_id)

    async def status(self, notification_id: str) -> ProviderStatus:
        return ProviderStatus("not_sent")


async def test_a_worker_without_a_directory_row_gets_the_message_at_the_rosters_address(tmp_path: Path) -> None:
    clock = FixedClock(TUESDAY_NOON)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'n.db'}", metadata)
    await db.create_all()
    try:
        async with NotificationsUnitOfWork(db, clock.now) as uow:
            planned = plan_notifications(
                case_id=uuid4(),
                source_event_id=uuid4(),
                source_event_type="followup.due",
                template="followup_due",
                recipients=[Recipient("staff-psy", "responsible_worker", "staff")],
                languages={},
                params={"due_at": clock.now().isoformat(), "case_ref": "x"},
                now=clock.now(),
            )
            await uow.notifications.add_all(planned)
            await uow.commit()
        email = Recording()
        staff = StaffDirectory.load(Path("/nonexistent"), DEFAULT_ROSTER_FILE)
        delivery = Delivery({"email": email}, NotificationsConfig(smtp_host="x"), staff)
        await dispatch_once(lambda: NotificationsUnitOfWork(db, clock.now), delivery)
        assert [m.address for m in email.sent] == [roster_email("staff-psy")]
        async with NotificationsUnitOfWork(db, clock.now) as uow:
            assert (await uow.notifications.get(planned[0].notification_id)).status == "sent"
    finally:
        await db.dispose()


async def test_a_responsible_worker_named_without_contact_gets_the_plan_message_from_the_roster(
    settings: Any, nc: Any, clean_streams: Any
) -> None:
    """Before: the worker's plan_agreed failed with no_contact_details although the roster had the e-mail."""
    clock = FixedClock(TUESDAY_NOON)
    with SmtpServer() as smtp:
        # plan.agreed is published alone here, without the plans service's copy: no wait for it.
        cfg = NotificationsConfig(smtp_host="127.0.0.1", smtp_port=smtp.port, receipt_poll_seconds=0, plan_copy_wait_seconds=0)
        svc = bootstrap(settings, clock, config=cfg)
        await svc.start()
        try:
            ev = PlanAgreed(
                producer="test",
                case_id=uuid4(),
                plan_id=uuid4(),
                plan_version=1,
                meeting_id=None,
                responsible_workers=[{"worker_id": "staff-fw", "organisation": "Testilän perhetyö", "public_service": True}],
                next_contact_at=TUESDAY_NOON + timedelta(days=14),
                family_contacts=[GUARDIAN],
            )
            await publish_js(nc.jetstream(), ev)
            await wait_for(lambda: smtp.to(roster_email("staff-fw")) and smtp.to("g1@example.com"), timeout=15)
        finally:
            await svc.stop()
