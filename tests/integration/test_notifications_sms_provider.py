"""The SMS channel speaks the documented 46elks API (issue 21, item 5): the test double is that API on
loopback (tests/support/notifications_fakes.py), delivery reports included, and the provider is
chosen by configuration."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest

from services.notifications.bootstrap import bootstrap
from services.notifications.channels import OutboundMessage, PermanentFailure, TemporaryFailure
from services.notifications.config import NotificationsConfig
from services.notifications.sms import PROVIDERS, FortySixElks
from shared.clock import HELSINKI, FixedClock
from shared.contracts.referral import ReferralUrgent
from tests.conftest import wait_for
from tests.support.notifications_fakes import FakeSmsGateway
from tests.support.staff import publish_js

pytestmark = [pytest.mark.integration]

NIGHT = datetime(2026, 11, 24, 23, 0, tzinfo=HELSINKI).astimezone(UTC)


def message(number: str = "+358401230001", text: str = "Kokous siirtyi.") -> OutboundMessage:
    return OutboundMessage(str(uuid4()), "sw-1", number, "fi", "Aihe", text)


async def test_a_message_is_posted_form_encoded_with_basic_auth_and_the_provider_keeps_no_copy(tmp_path: Path) -> None:
    async with FakeSmsGateway(auto_deliver=False) as api:
        sms = FortySixElks(
            api.url,
            tmp_path / "j.jsonl",
            api.username,
            api.password,
            sender="Koolle",
            delivery_report_url="https://k.example/dlr",
        )
        try:
            msg = message()
            receipt = await sms.send(msg)
            [sent] = api.to("+358401230001")
            assert (sent["from"], sent["message"], sent["dontlog"]) == ("Koolle", "Kokous siirtyi.", "message")
            assert sent["whendelivered"] == "https://k.example/dlr"
            assert receipt.provider_ref == sent["id"] and receipt.receipt is None  # "created": not final yet
            # Receipts by the documented GET /sms/{id}: none while created, then the carrier's answer.
            assert (await sms.status(msg.notification_id)).receipt is None
            api.messages[sent["id"]]["status"] = "failed"
            st = await sms.status(msg.notification_id)
            assert (st.state, st.provider_ref, st.receipt) == ("sent", sent["id"], "undeliverable")
        finally:
            await sms.close()


async def test_refusals_and_outages_map_to_permanent_and_temporary_failures(tmp_path: Path) -> None:
    async with FakeSmsGateway() as api:
        api.invalid_numbers.add("+358401239999")
        sms = FortySixElks(api.url, tmp_path / "j.jsonl", api.username, api.password)
        wrong = FortySixElks(api.url, tmp_path / "k.jsonl", api.username, "wrong")
        try:
            with pytest.raises(PermanentFailure) as bad_number:
                await sms.send(message("+358401239999"))
            assert bad_number.value.code == "invalid_phone"
            with pytest.raises(PermanentFailure) as bad_auth:
                await wrong.send(message())
            assert bad_auth.value.code == "provider_rejected"
            api.down = True
            with pytest.raises(TemporaryFailure):
                await sms.send(message())
            assert not api.messages
        finally:
            await sms.close()
            await wrong.close()


async def test_after_a_crash_the_journal_says_the_provider_took_it_so_it_is_not_sent_again(tmp_path: Path) -> None:
    async with FakeSmsGateway() as api:
        first = FortySixElks(api.url, tmp_path / "j.jsonl", api.username, api.password)
        msg = message()
        await first.send(msg)
        await first.close()
        restarted = FortySixElks(api.url, tmp_path / "j.jsonl", api.username, api.password)  # a new process, same journal
        try:
            st = await restarted.status(msg.notification_id)
            assert (st.state, st.receipt) == ("sent", "delivered")
            assert (await restarted.status(str(uuid4()))).state == "unknown"  # never handed over: sent again
            assert api.posts == 1
        finally:
            await restarted.close()


def test_the_provider_is_chosen_by_configuration() -> None:
    assert PROVIDERS["46elks"] is FortySixElks
    assert NotificationsConfig().sms_provider == "46elks"


async def test_an_urgent_page_goes_by_sms_and_its_delivery_report_is_recorded(settings: Any, nc: Any, clean_streams: Any) -> None:
    clock = FixedClock(NIGHT)
    async with FakeSmsGateway(auto_deliver=False) as api:
        cfg = NotificationsConfig(
            sms_gateway_url=api.url,
            sms_api_username=api.username,
            sms_api_password=api.password,
            sms_report_port=0,
            sms_report_key="k1",
            receipt_poll_seconds=3600,
        )
        svc = bootstrap(settings, clock, config=cfg)
        await svc.start()
        try:
            receiver = svc.delivery.report_receiver  # type: ignore[attr-defined]
            await wait_for(lambda: receiver.port != 0, timeout=5)
            # The public URL would be the county's proxy; here the receiver itself.
            svc.delivery.channels["sms"].delivery_report_url = f"http://127.0.0.1:{receiver.port}/dlr?key=k1"  # type: ignore[attr-defined]
            case_id = uuid4()
            ev = ReferralUrgent(producer="test", case_id=case_id, referral_id=uuid4(), municipality="Testilä", channel="phone")
            await publish_js(nc.jetstream(), ev)
            [sent] = await wait_for(lambda: api.to("+358401119999"), timeout=10)  # emergency social services at night
            assert sent["message"].startswith("KIIREELLINEN")

            async def delivered() -> bool:
                async with svc.uow() as uow:
                    [n] = await uow.notifications.of_case(case_id)
                    return n.state.get("receipt") == "delivered"

            assert not await delivered()  # the poll is an hour away: only the report can tell
            assert await api.deliver(sent["id"]) == 204
            await wait_for(delivered, timeout=10)
            # A report without the shared key is refused.
            async with httpx.AsyncClient() as client:
                r = await client.post(f"http://127.0.0.1:{receiver.port}/dlr", data={"id": sent["id"], "status": "failed"})
            assert r.status_code == 403
        finally:
            await svc.stop()
