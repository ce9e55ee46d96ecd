"""The dispatcher's state machine on a real SQLite database, with scripted channels (no broker)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from services.notifications.adapters import NotificationsUnitOfWork, metadata
from services.notifications.channels import OutboundMessage, ProviderStatus, Receipt, TemporaryFailure
from services.notifications.config import NotificationsConfig
from services.notifications.delivery import Delivery, dispatch_once
from services.notifications.domain import Recipient, plan_notifications
from shared.clock import FixedClock
from shared.storage.database import Database
from tests.support.databases import KINDS, fresh_database

pytestmark = [pytest.mark.integration]


class Scripted:
    def __init__(self, name: str, status: str = "not_sent", fail: int = 0, resend_when_unknown: bool = False) -> None:
        self.name, self._status, self.fail = name, status, fail
        self.resend_when_unknown = resend_when_unknown
        self.sent: list[OutboundMessage] = []

    async def send(self, msg: OutboundMessage) -> Receipt:
        if self.fail:
            self.fail -= 1
            raise TemporaryFailure("provider_unavailable")
        self.sent.append(msg)
        return Receipt(provider_ref="p-1")

    async def status(self, notification_id: str) -> ProviderStatus:
        return ProviderStatus(self._status)


@pytest.fixture(params=KINDS)
async def db(request: Any, tmp_path: Any) -> Any:
    async with fresh_database(request.param, metadata, tmp_path, "n") as d:
        yield d


async def _one(db: Database, clock: FixedClock, contact: dict[str, Any], status: str = "pending", channel: str = "email") -> Any:
    case_id = uuid4()
    async with NotificationsUnitOfWork(db, clock.now) as uow:
        await uow.notifications.upsert_contact(case_id, contact)
        [n] = plan_notifications(
            case_id=case_id,
            source_event_id=uuid4(),
            source_event_type="followup.due",
            template="followup_due",
            recipients=[Recipient(contact["contact_id"], contact["role"])],
            languages={},
            params={"due_at": clock.now().isoformat(), "case_ref": "x"},
            now=clock.now(),
        )
        n.status, n.channel = status, channel
        if status == "sending":
            n.channels_tried, n.attempts, n.channel_attempts = [channel], 1, 1
        await uow.notifications.add(n)
        await uow.notifications.save(n)
        await uow.commit()
    return n


async def _status(db: Database, clock: FixedClock, n: Any) -> Any:
    async with NotificationsUnitOfWork(db, clock.now) as uow:
        return await uow.notifications.get(n.notification_id)


WORKER = {"contact_id": "w-1", "role": "responsible_worker", "email": "w1@example.com", "phone": "+358401230020"}


async def test_email_left_sending_without_journal_line_is_sent_again_once(db: Database) -> None:
    clock = FixedClock(datetime(2026, 11, 24, 10, tzinfo=UTC))
    email = Scripted("email", status="unknown", resend_when_unknown=True)
    n = await _one(db, clock, WORKER, status="sending")
    delivery = Delivery({"email": email}, NotificationsConfig(smtp_host="x"))
    uow = lambda: NotificationsUnitOfWork(db, clock.now)  # noqa: E731
    await dispatch_once(uow, delivery, reconcile_all=True)
    await dispatch_once(uow, delivery)
    assert len(email.sent) == 1
    assert (await _status(db, clock, n)).status == "sent"


async def test_sms_whose_provider_cannot_answer_stays_sending_not_resent(db: Database) -> None:
    clock = FixedClock(datetime(2026, 11, 24, 10, tzinfo=UTC))
    sms = Scripted("sms", status="unknown")
    n = await _one(db, clock, WORKER, status="sending", channel="sms")
    delivery = Delivery({"sms": sms}, NotificationsConfig(sms_gateway_url="http://x", receipt_poll_seconds=3600))
    uow = lambda: NotificationsUnitOfWork(db, clock.now)  # noqa: E731
    await dispatch_once(uow, delivery, reconcile_all=True)
    assert sms.sent == [] and (await _status(db, clock, n)).status == "sending"
    sms._status = "sent"
    await dispatch_once(uow, delivery, reconcile_all=True)
    assert sms.sent == [] and (await _status(db, clock, n)).status == "sent"


async def test_temporary_failure_backs_off_then_falls_back_to_the_next_channel(db: Database) -> None:
    clock = FixedClock(datetime(2026, 11, 24, 10, tzinfo=UTC))
    email, sms = Scripted("email", fail=99), Scripted("sms")
    n = await _one(db, clock, WORKER)
    cfg = NotificationsConfig(
        smtp_host="x", sms_gateway_url="http://x", attempts_per_channel=2, backoff_base_seconds=30, receipt_poll_seconds=3600
    )
    delivery = Delivery({"email": email, "sms": sms}, cfg)
    uow = lambda: NotificationsUnitOfWork(db, clock.now)  # noqa: E731
    await dispatch_once(uow, delivery)
    after_first = await _status(db, clock, n)
    assert after_first.status == "pending" and after_first.attempts == 1
    assert (after_first.not_before - clock.now()).total_seconds() == 30
    await dispatch_once(uow, delivery)  # not yet due: nothing happens
    assert (await _status(db, clock, n)).attempts == 1
    clock.advance(seconds=31)
    await dispatch_once(uow, delivery)  # second e-mail attempt fails -> SMS at once
    done = await _status(db, clock, n)
    assert done.status == "sent" and done.channels_tried == ["email", "sms"] and done.attempts == 3
    assert len(sms.sent) == 1 and email.fail == 97


async def test_urgent_message_falls_back_at_once_instead_of_waiting_for_a_retry(db: Database) -> None:
    clock = FixedClock(datetime(2026, 11, 24, 10, tzinfo=UTC))
    email, sms = Scripted("email"), Scripted("sms", fail=1)
    n = await _one(db, clock, WORKER)
    async with NotificationsUnitOfWork(db, clock.now) as uow:
        fresh = await uow.notifications.get(n.notification_id)
        fresh.urgent = True
        await uow.notifications.save(fresh)
        await uow.commit()
    delivery = Delivery(
        {"email": email, "sms": sms}, NotificationsConfig(smtp_host="x", sms_gateway_url="http://x", receipt_poll_seconds=3600)
    )
    await dispatch_once(lambda: NotificationsUnitOfWork(db, clock.now), delivery)
    done = await _status(db, clock, n)
    assert done.status == "sent" and done.channels_tried == ["sms", "email"] and len(email.sent) == 1


async def test_a_message_that_cannot_be_rendered_fails_with_a_reason_and_others_go_on(db: Database) -> None:
    clock = FixedClock(datetime(2026, 11, 24, 10, tzinfo=UTC))
    email = Scripted("email")
    bad = await _one(db, clock, WORKER)
    async with NotificationsUnitOfWork(db, clock.now) as uow:
        fresh = await uow.notifications.get(bad.notification_id)
        # A producer bug: the due time is not a time. (A missing value only leaves its line out.)
        fresh.params = {**fresh.params, "due_at": "not a time"}
        await uow.notifications.save(fresh)
        await uow.commit()
    good = await _one(db, clock, WORKER)
    delivery = Delivery({"email": email}, NotificationsConfig(smtp_host="x"))
    await dispatch_once(lambda: NotificationsUnitOfWork(db, clock.now), delivery)
    assert (await _status(db, clock, bad)).failure == "template_error"
    assert (await _status(db, clock, good)).status == "sent" and len(email.sent) == 1


async def test_a_batch_whose_claim_was_lost_goes_one_by_one_and_sends_each_once(db: Database, monkeypatch: Any) -> None:
    """Another replica claimed one of the batch between our read and our claim (PostgreSQL can
    interleave them): the batch's one claim statement notices, and nothing is sent twice."""
    from services.notifications.adapters import ClaimLost, NotificationRepository

    clock = FixedClock(datetime(2026, 11, 24, 10, tzinfo=UTC))
    email = Scripted("email")
    mine = [await _one(db, clock, {**WORKER, "contact_id": f"w-{i}"}) for i in range(3)]
    theirs = await _one(db, clock, {**WORKER, "contact_id": "w-other"}, status="sending")  # the other replica's
    real_due = NotificationRepository.due

    async def stale_due(self: Any, now: Any, limit: int = 100) -> Any:  # read before the other replica claimed
        rows = await real_due(self, now, limit)
        stale = await self.get(theirs.notification_id)
        stale.status = "pending"
        return [*rows, stale]

    monkeypatch.setattr(NotificationRepository, "due", stale_due)
    async with NotificationsUnitOfWork(db, clock.now) as uow:
        with pytest.raises(ClaimLost):
            async with uow.notifications.claims_together():
                for n in [*mine, theirs]:
                    fresh = await uow.notifications.get(n.notification_id)
                    fresh.status = "sending"
                    assert await uow.notifications.claim_sending(fresh)
    delivery = Delivery({"email": email}, NotificationsConfig(smtp_host="x"))
    await dispatch_once(lambda: NotificationsUnitOfWork(db, clock.now), delivery)
    assert sorted(m.recipient_id for m in email.sent) == ["w-0", "w-1", "w-2"]  # not the other replica's
    for n in mine:
        assert (await _status(db, clock, n)).status == "sent"
    assert (await _status(db, clock, theirs)).status == "sending"  # left to its owner
