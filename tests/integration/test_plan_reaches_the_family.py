"""The plan reaches the family (issue 21, item 2): the real plans and notifications services over
real SMTP. The plan-agreed e-mail carries the plan itself (HTML body, PDF and HTML to print), and
says where to see it online when a guardian of the case can sign in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from shared.client import call
from shared.contracts.referral import ReferralAssigned
from tests.conftest import wait_for
from tests.support.data import referral_received
from tests.support.notifications_fakes import SmtpServer
from tests.support.staff import publish_js
from tests.support.system import running

pytestmark = [pytest.mark.integration]

TEAM = "testila-family-centre"
PORTAL = "https://perhe.koolle.example/suunnitelma"
GUARDIAN = {"contact_id": "guardian-1", "role": "guardian", "language": "sv", "email": "anna.testinen@example.com"}
WORKER_CONTACT = {"contact_id": "staff-close", "role": "responsible_worker", "language": "fi", "phone": "+358401234567"}


async def _case(nc: Any, svcs: dict[str, Any], guardian_keys: list[str]) -> Any:
    case_id = uuid4()
    received = referral_received(
        case_id=case_id,
        submission_id=f"s-{uuid4()}",
        channel="concern_with_family",
        language="sv",
        contacts=[GUARDIAN],
        guardian_keys=guardian_keys,
        team_id=TEAM,  # the routing's team (the services take it from here)
    )
    assigned = ReferralAssigned(
        producer="test", case_id=case_id, referral_id=received.referral_id, team_id=TEAM, municipality="Testilä"
    )
    for ev in (received, assigned):
        await publish_js(nc.jetstream(), ev)
    return case_id


def _plan(case_id: Any) -> dict[str, Any]:
    return {
        "command_id": str(uuid4()),
        "case_id": str(case_id),
        "changes_needed": ["Morgnarna går lugnt"],
        "actions_at_home": [{"what": "Bildschema för morgonen", "who": "föräldern"}],
        "worker_contacts_family": "Telefon på måndagar",
        "family_contacts_worker": "Textmeddelande på vardagar",
        "responsible_workers": [
            {
                "worker_id": "staff-close",
                "organisation": "Testilä familjecenter",
                "public_service": True,
                "name": "Liisa Lähityöntekijä",
                "role": "social_counsellor",
                "contact": WORKER_CONTACT,
            }
        ],
        "next_contact_at": (datetime.now(UTC) + timedelta(days=14)).isoformat(),
        "family_contacts": [GUARDIAN],
    }


async def test_the_plan_agreed_mail_carries_the_plan_as_html_and_pdf_and_says_where_to_see_it_online(
    settings: Any, nc: Any, clean_streams: Any, identity: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpServer() as smtp:
        for key, value in {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "PLAN_PORTAL_URL": PORTAL}.items():
            monkeypatch.setenv(f"KOOLLE_NOTIFICATIONS_{key}", value)
        monkeypatch.setenv("KOOLLE_NOTIFICATIONS_ROSTER_FILE", "")  # the worker is reached only as the plan says
        async with running(identity.settings(settings), "plans", "notifications") as svcs:
            case_id = await _case(nc, svcs, guardian_keys=["gk-anna"])

            async def agree() -> Any:
                reply = await call(
                    nc, "cmd.plans.agree.v2", _plan(case_id), token=identity.worker("staff-close", TEAM, "Testilä")
                )
                return reply if reply.ok else None

            await wait_for(agree, timeout=30)  # once the team has reached the case
            [mail] = await wait_for(lambda: smtp.to(GUARDIAN["email"]), timeout=30)

            text = mail.get_body(("plain",)).get_content()
            assert "bifogad (PDF och HTML)" in text and PORTAL in text
            html = mail.get_body(("html",)).get_content()
            assert html.startswith("<!DOCTYPE html>") and 'lang="sv"' in html and "Gemensam plan" in html
            assert "Liisa Lähityöntekijä, socialhandledare" in html and "040 1234567" in html
            assert "staff-close" not in html and "social_counsellor" not in html
            files = {p.get_filename(): p for p in mail.iter_attachments()}
            assert set(files) == {"gemensam-plan-v1.pdf", "gemensam-plan-v1.html"}
            pdf = files["gemensam-plan-v1.pdf"]
            assert pdf.get_content_type() == "application/pdf" and pdf.get_content().startswith(b"%PDF-")
            assert "Gemensam plan" in files["gemensam-plan-v1.html"].get_content()


async def test_without_a_guardian_who_can_sign_in_the_mail_names_no_online_view(
    settings: Any, nc: Any, clean_streams: Any, identity: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SmtpServer() as smtp:
        for key, value in {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp.port), "PLAN_PORTAL_URL": PORTAL}.items():
            monkeypatch.setenv(f"KOOLLE_NOTIFICATIONS_{key}", value)
        async with running(identity.settings(settings), "plans", "notifications"):
            case_id = await _case(nc, {}, guardian_keys=[])

            async def agree() -> Any:
                reply = await call(
                    nc, "cmd.plans.agree.v2", _plan(case_id), token=identity.worker("staff-close", TEAM, "Testilä")
                )
                return reply if reply.ok else None

            await wait_for(agree, timeout=30)
            [mail] = await wait_for(lambda: smtp.to(GUARDIAN["email"]), timeout=30)
            text = mail.get_body(("plain",)).get_content()
            assert "bifogad (PDF och HTML)" in text and PORTAL not in text
            assert len(list(mail.iter_attachments())) == 2
