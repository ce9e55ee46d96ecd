from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from services.notifications.config import StaffDirectory
from services.notifications.domain import (
    RULES,
    TEMPLATES,
    Notification,
    Recipient,
    address_for,
    backoff,
    channel_order,
    plan_notifications,
    quiet_until,
    render,
    role_allows,
    rules_markdown,
    sms_length,
    sms_text,
)
from services.notifications.invite import build_invite
from shared.clock import HELSINKI

PARAMS = {
    "case_ref": "abcd1234",
    "received_at": "2026-11-20T09:00:00+00:00",
    "municipality": "Testilä",
    "repeat_count": 2,
    "deadline": "assessment_decision",
    "due_by": "2026-11-30",
    "starts_at": "2026-11-24T08:00:00+00:00",
    "room": "Room 1",
    "plan_version": 2,
    "due_at": "2026-12-01T10:00:00+00:00",
    "outcome": "services_started",
    "start_by": "2026-12-15",
    "organisation": "Perhetyö",
    "phone": "+358401110099",
    "email": "perhetyo@testila.example",
}


def n(kind: str = "family", urgent: bool = False, language: str = "fi", template: str = "plan_agreed") -> Notification:
    return Notification(
        uuid4(),
        uuid4(),
        uuid4(),
        "plan.agreed",
        "guardian-1",
        "guardian",
        language,
        template,
        PARAMS,
        recipient_kind=kind,
        urgent=urgent,
    )


def test_one_notification_per_recipient_in_their_language() -> None:
    ns = plan_notifications(
        case_id=uuid4(),
        source_event_id=uuid4(),
        source_event_type="plan.agreed",
        template="plan_agreed",
        recipients=[
            Recipient("guardian-1", "guardian"),
            Recipient("guardian-1", "guardian"),
            Recipient("w", "responsible_worker"),
            Recipient("g2", "guardian"),
        ],
        languages={"guardian-1": "sv", "w": "fi", "g2": "other"},
        params={},
        now=datetime.now(UTC),
    )
    assert [(x.recipient_id, x.language, x.recipient_kind) for x in ns] == [
        ("guardian-1", "sv", "family"),
        ("w", "fi", "staff"),
        ("g2", "en", "family"),  # another language: English, as the plan copy
    ]


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_every_template_renders_in_finnish_swedish_and_english(name: str) -> None:
    rendered = {lang: render(name, lang, PARAMS) for lang in ("fi", "sv", "en")}
    for subject, body in rendered.values():
        assert subject and body and "{" not in body and "%(" not in body
    assert len({b for _, b in rendered.values()}) == 3  # really translated


def test_dates_are_shown_in_helsinki_time_as_people_in_finland_write_them() -> None:
    # 08:00 UTC on Tuesday 24 November is 10:00 in Helsinki.
    expected = {"fi": "ti 24.11.2026 klo 10.00", "sv": "tis 24.11.2026 kl. 10.00", "en": "Tue 24 Nov 2026 at 10:00"}
    for lang, when in expected.items():
        _, body = render("meeting_invitation", lang, PARAMS)
        assert when in body, (lang, body)
        assert "8.00" not in body and "8:00" not in body, lang  # not UTC


def test_assessment_outcome_is_a_category_only() -> None:
    _, body = render("assessment_completed", "fi", PARAMS)
    assert "palvelut on aloitettu" in body


def test_rules_table_covers_every_template_and_is_rendered_in_the_readme() -> None:
    assert {t for r in RULES for t in r.template.split(" / ")} - {"-"} == set(TEMPLATES)
    readme = (Path(__file__).parents[2] / "services" / "notifications" / "README.md").read_text(encoding="utf-8")
    assert rules_markdown() in readme, "run: python -m services.notifications.docs"


def test_quiet_hours_are_helsinki_nights() -> None:
    evening = datetime(2026, 11, 24, 21, 30, tzinfo=HELSINKI).astimezone(UTC)
    morning = quiet_until(evening)
    assert morning == datetime(2026, 11, 25, 8, 0, tzinfo=HELSINKI)
    assert quiet_until(datetime(2026, 11, 25, 7, 59, tzinfo=HELSINKI)) == datetime(2026, 11, 25, 8, 0, tzinfo=HELSINKI)
    assert quiet_until(datetime(2026, 11, 25, 8, 0, tzinfo=HELSINKI)) is None
    assert quiet_until(datetime(2026, 11, 25, 20, 59, tzinfo=HELSINKI)) is None
    # across the summer-time change the morning is still 08:00 local
    assert quiet_until(datetime(2026, 3, 28, 23, 0, tzinfo=HELSINKI)) == datetime(2026, 3, 29, 8, 0, tzinfo=HELSINKI)


def test_channel_order_preferred_first_urgent_sms_first_log_alone() -> None:
    assert channel_order(n(), None, ("email", "sms", "portal")) == ["email", "sms", "portal"]
    assert channel_order(n(), "sms", ("email", "sms", "portal")) == ["sms", "email", "portal"]
    assert channel_order(n(), "portal", ("email", "sms")) == ["email", "sms"]
    assert channel_order(n(kind="staff", urgent=True), "email", ("email", "sms")) == ["sms", "email"]
    assert channel_order(n(), "sms", ("log",)) == ["log"]


def test_addresses_are_checked_with_clear_reasons() -> None:
    assert address_for("email", "not-an-address", None, "g") == (None, "invalid_email")
    assert address_for("email", None, "+358401234567", "g") == (None, "no_contact_details")
    assert address_for("sms", None, "040 123", "g") == (None, "invalid_phone")
    assert address_for("sms", None, "+358401234567", "g") == ("+358401234567", None)
    assert address_for("portal", None, None, "g") == ("g", None)


def test_backoff_grows_and_is_capped() -> None:
    assert [backoff(i, 30, 100).total_seconds() for i in (1, 2, 3, 4)] == [30, 60, 100, 100]


def test_sms_length_gsm7_and_ucs2() -> None:
    assert sms_length("Hyvää päivää, Åsa!").encoding == "gsm7"  # ä, ö, å are in GSM 03.38
    assert sms_length("a" * 160).segments == 1
    assert sms_length("a" * 161).segments == 2
    assert sms_length("[" * 80).units == 160  # extension characters take two septets
    assert sms_length("Привет").encoding == "ucs2"
    assert sms_length("ž" * 70).segments == 1 and sms_length("ž" * 71).segments == 2


def test_sms_to_a_family_says_only_where_to_read() -> None:
    text = sms_text(n(language="sv", template="meeting_invitation"), "Inbjudan", "möte 10:00 Room 1", "https://portal.example")
    assert text == "Ni har ett nytt meddelande i Koolle-tjänsten. Läs det: https://portal.example"
    staff = sms_text(n(kind="staff"), "S", "x" * 1000, "https://p", max_segments=2)
    assert sms_length(staff).segments <= 2 and staff.endswith("...")


def test_role_is_checked_again_at_send_time() -> None:
    assert role_allows("referral_urgent", "social_worker")
    assert not role_allows("referral_urgent", "guardian")
    assert role_allows("assessment_completed", "referrer")
    assert not role_allows("assessment_completed", "guardian")
    assert role_allows("plan_agreed", None)


def test_ics_reschedule_keeps_uid_and_raises_sequence_cancel_uses_method_cancel() -> None:
    from icalendar import Calendar

    now = datetime.now(UTC)
    m = {
        "meeting_id": "m-1",
        "starts_at": PARAMS["starts_at"],
        "ends_at": "2026-11-24T09:00:00+00:00",
        "room": "Room 1",
        "sequence": 0,
    }
    first = Calendar.from_ical(
        build_invite(m, summary="s", description="d", attendee_email="a@example.com", organizer_email="o@example.com", now=now)
    )
    moved = Calendar.from_ical(
        build_invite(
            m | {"sequence": 1},
            summary="s",
            description="d",
            attendee_email="a@example.com",
            organizer_email="o@example.com",
            now=now,
        )
    )
    gone = Calendar.from_ical(
        build_invite(
            {"meeting_id": "m-1", "sequence": 2, "method": "CANCEL"},
            summary="s",
            description="d",
            attendee_email="a@example.com",
            organizer_email="o@example.com",
            now=now,
        )
    )
    e1, e2, e3 = (c.walk("VEVENT")[0] for c in (first, moved, gone))
    assert e1["UID"] == e2["UID"] == e3["UID"]
    assert (e1["SEQUENCE"], e2["SEQUENCE"], e3["SEQUENCE"]) == (0, 1, 2)
    assert str(first["METHOD"]) == "REQUEST" and str(gone["METHOD"]) == "CANCEL" and str(e3["STATUS"]) == "CANCELLED"


def test_on_duty_roster_office_hours_and_after_hours() -> None:
    staff = StaffDirectory.load(Path("services/notifications/staff.json"))
    tuesday_noon = datetime(2026, 11, 24, 12, 0, tzinfo=HELSINKI)
    assert staff.on_duty_social_worker("Testilä", tuesday_noon) == "duty-testila"
    assert staff.on_duty_social_worker("Testilä", tuesday_noon + timedelta(hours=10)) == "emergency-itauusimaa"
    assert staff.on_duty_social_worker("Muualla", tuesday_noon) == "emergency-itauusimaa"
    assert staff.team_social_workers_and_lead("testila-family-centre") == ["sw-testila-1", "sw-testila-2", "lead-testila"]


@pytest.mark.parametrize("template", ["urgency_overdue", "urgency_overdue_lead", "notification_received", "assessment_done"])
@pytest.mark.parametrize("language", ["fi", "sv", "en"])
def test_statutory_templates_render_in_finnish_swedish_and_english_without_personal_data(template: str, language: str) -> None:
    params = {
        "case_ref": "0a1b2c3d",
        "municipality": "Testilä",
        "due_at": "2026-11-28T01:30:00+00:00",
        "received_at": "2026-11-27T21:30:00+00:00",
        "referral_id": "r-1",
    }
    subject, body = render(template, language, params)
    assert subject and "0a1b2c3d" in body and "{{" not in body
    if template.startswith("urgency"):
        assert "03.30" in body or "3.30" in body or "03:30" in body or "3:30" in body  # 01:30 UTC shown in Helsinki time
    assert render(template, language, params) != render(template, "fi" if language != "fi" else "sv", params)
