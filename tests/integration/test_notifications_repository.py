"""The notifications repository's statements (built once, upserts per dialect) on SQLite and on
PostgreSQL: the same results on both (no broker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from services.notifications.adapters import NotificationsUnitOfWork, metadata
from services.notifications.channels import OutboundMessage, ProviderStatus, Receipt
from services.notifications.config import NotificationsConfig
from services.notifications.delivery import Delivery, dispatch_once
from services.notifications.domain import Recipient, plan_notifications
from shared.clock import FixedClock
from shared.storage.database import Database
from tests.support.databases import KINDS, fresh_database

pytestmark = [pytest.mark.integration]


@pytest.fixture(params=KINDS)
async def db(request: Any, tmp_path: Any) -> Any:
    async with fresh_database(request.param, metadata, tmp_path, "notifications") as d:
        yield d


CLOCK = datetime(2026, 11, 24, 10, tzinfo=UTC)


async def test_contact_upsert_keeps_known_details_and_team_is_replaced(db: Database) -> None:
    clock = FixedClock(CLOCK)
    case_id = uuid4()
    async with NotificationsUnitOfWork(db, clock.now) as uow:
        await uow.notifications.upsert_contact(
            case_id,
            {"contact_id": "g-1", "role": "guardian", "language": "sv", "email": "g1@example.com", "phone": "+358401230001"},
        )
        assert await uow.notifications.set_preference(case_id, "g-1", "sms", None)
        assert not await uow.notifications.set_preference(case_id, "nobody", "sms", "en")
        clock.advance(minutes=1)
        # A later event without e-mail, phone or preference: the known ones stay; role and language follow the event.
        await uow.notifications.upsert_contact(case_id, {"contact_id": "g-1", "role": "parent", "email": ""})
        await uow.notifications.upsert_contact(
            case_id, {"contact_id": "ref", "role": "referrer", "email": "r@example.com", "preferred_channel": "email"}
        )
        await uow.notifications.set_team(case_id, "team-a", "Porvoo")
        await uow.notifications.set_team(case_id, "team-b", None)
        await uow.commit()
    async with NotificationsUnitOfWork(db, clock.now) as uow:
        g = await uow.notifications.contact(case_id, "g-1")
        assert (g.role, g.language, g.email, g.phone, g.preferred_channel) == (
            "parent",
            "fi",
            "g1@example.com",
            "+358401230001",
            "sms",
        )
        assert g.updated_at == clock.now()
        r = await uow.notifications.contact(case_id, "ref")
        assert (r.email, r.phone, r.preferred_channel) == ("r@example.com", None, "email")
        assert await uow.notifications.languages(case_id) == {"g-1": "fi", "ref": "fi"}
        assert await uow.notifications.team(case_id) == "team-b"
        assert set(await uow.notifications.contacts_of_cases({str(case_id), str(uuid4())})) == {
            (str(case_id), "g-1"),
            (str(case_id), "ref"),
        }
        assert await uow.notifications.set_preference(case_id, "ref", "sms", "sv")
        await uow.commit()
    async with NotificationsUnitOfWork(db, clock.now) as uow:
        r = await uow.notifications.contact(case_id, "ref")
        assert (r.preferred_channel, r.language) == ("sms", "sv")


async def test_withdrawals_and_meeting_revisions(db: Database) -> None:
    clock = FixedClock(CLOCK)
    case_id, consent_id = uuid4(), uuid4()
    async with NotificationsUnitOfWork(db, clock.now) as uow:
        await uow.notifications.record_withdrawal(case_id, "share_plan", None, consent_id)
        await uow.notifications.record_withdrawal(case_id, "share_plan", None, consent_id)  # again: replaced, not doubled
        assert await uow.notifications.consent_withdrawn(case_id, "share_plan", "anyone", None)
        assert not await uow.notifications.consent_withdrawn(case_id, "tell_referrer_outcome", "anyone", None)
        await uow.notifications.clear_withdrawal(case_id, "share_plan", None)
        assert not await uow.notifications.consent_withdrawn(case_id, "share_plan", "anyone", None)
        await uow.notifications.meeting_revision("m-1", case_id, 2)
        await uow.notifications.meeting_revision("m-1", case_id, 1, cancelled=True)  # older: ignored
        m = await uow.notifications.meeting("m-1")
        assert (m.sequence, m.cancelled) == (2, False)
        await uow.notifications.meeting_revision("m-1", case_id, 3, cancelled=True)
        m = await uow.notifications.meeting("m-1")
        assert (m.sequence, m.cancelled) == (3, True)
        await uow.commit()


class Channel:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[OutboundMessage] = []

    async def send(self, msg: OutboundMessage) -> Receipt:
        self.sent.append(msg)
        return Receipt(provider_ref="p")

    async def status(self, notification_id: str) -> ProviderStatus:
        return ProviderStatus("not_sent")


async def test_batch_of_notifications_is_stored_deduplicated_and_dispatched(db: Database) -> None:
    clock = FixedClock(CLOCK)
    case_id = uuid4()
    people = [
        Recipient("w-1", "responsible_worker", "staff"),
        Recipient("w-2", "responsible_worker", "staff"),
        Recipient("w-3", "responsible_worker", "staff"),
    ]

    def plan(recipients: list[Recipient]) -> list[Any]:
        return plan_notifications(
            case_id=case_id,
            source_event_id=uuid4(),
            source_event_type="plan.agreed",
            template="plan_agreed",
            recipients=recipients,
            languages={"w-2": "sv"},
            params={"case_ref": "x", "plan_version": 1},
            now=clock.now(),
            dedupe="plan:p:1",
        )

    async with NotificationsUnitOfWork(db, clock.now) as uow:
        for i in (1, 2):  # w-3 has no contact details
            await uow.notifications.upsert_contact(
                case_id, {"contact_id": f"w-{i}", "role": "responsible_worker", "email": f"w{i}@example.com"}
            )
        assert await uow.notifications.add_all(plan(people[:2])) == 2
        assert await uow.notifications.add_all(plan(people)) == 1  # w-1 and w-2 were told of this version already
        assert not await uow.notifications.add(plan(people[:1])[0])
        await uow.commit()
    async with NotificationsUnitOfWork(db, clock.now) as uow:
        due = await uow.notifications.due(clock.now(), limit=2)
        assert len(due) == 2 and len(await uow.notifications.due(clock.now())) == 3
        got = await uow.notifications.get_many([n.notification_id for n in due] + [uuid4()])
        assert set(got) == {str(n.notification_id) for n in due}
        assert set((await uow.notifications.statuses([n.notification_id for n in due])).values()) == {"pending"}
    email = Channel("email")
    await dispatch_once(
        lambda: NotificationsUnitOfWork(db, clock.now), Delivery({"email": email}, NotificationsConfig(smtp_host="x"))
    )
    assert sorted(m.address for m in email.sent) == ["w1@example.com", "w2@example.com"]
    assert {m.address: m.language for m in email.sent}["w2@example.com"] == "sv"
    async with NotificationsUnitOfWork(db, clock.now) as uow:
        rows = {r.recipient_id: r for r in await uow.notifications.of_case(case_id)}
        assert {k: (r.status, r.failure) for k, r in rows.items()} == {
            "w-1": ("sent", None),
            "w-2": ("sent", None),
            "w-3": ("failed", "no_contact_details"),
        }
        assert rows["w-1"].state["sent_at"] is not None
        assert await uow.notifications.due(clock.now() + timedelta(days=1)) == []
        assert [f.recipient_id for f in await uow.notifications.failed(case_id, 10)] == ["w-3"]
        # Each disclosure is in the audit log (written together at the end of the batch).
        audit = await uow.audit.entries([str(case_id)])
        assert sorted((e["actor"], e["action"], e["result"]) for e in audit) == [
            ("w-1", "send_notification", "disclosed"),
            ("w-2", "send_notification", "disclosed"),
        ]


async def test_a_dispatch_round_sends_its_batch_together_on_both_databases(db: Database, caplog: Any) -> None:
    """The batch path, not the one-by-one fallback (which is correct but slow: on PostgreSQL a
    batched claim's row count cannot be read, and every round had fallen back)."""

    class Spool:
        name = "log"
        sent: list[str] = []

        async def send(self, msg: OutboundMessage) -> Receipt:
            self.sent.append(msg.recipient_id)
            return Receipt(provider_ref=msg.notification_id)

        async def status(self, notification_id: str) -> ProviderStatus:
            return ProviderStatus("not_sent")

    clock = FixedClock(CLOCK)
    case_id = uuid4()
    async with NotificationsUnitOfWork(db, clock.now) as uow:
        people = [
            {"contact_id": f"w-{i}", "role": "responsible_worker", "language": "fi", "email": f"w{i}@example.com"}
            for i in range(5)
        ]
        await uow.notifications.upsert_contacts(case_id, people)
        await uow.notifications.add_all(
            plan_notifications(
                case_id=case_id,
                source_event_id=uuid4(),
                source_event_type="followup.due",
                template="followup_due",
                recipients=[Recipient(p["contact_id"], p["role"]) for p in people],
                languages={},
                params={"due_at": CLOCK.isoformat(), "case_ref": "x"},
                now=clock.now(),
            )
        )
        await uow.commit()
    spool = Spool()
    with caplog.at_level("WARNING", logger="koolle.notifications"):
        assert (
            await dispatch_once(lambda: NotificationsUnitOfWork(db, clock.now), Delivery({"log": spool}, NotificationsConfig()))
            == 5
        )
    assert sorted(spool.sent) == [f"w-{i}" for i in range(5)]
    assert not [r for r in caplog.records if "one by one" in r.getMessage()]
