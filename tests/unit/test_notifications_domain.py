from datetime import datetime, timezone
from uuid import uuid4

from services.notifications.domain import TEMPLATES, Recipient, plan_notifications, render


def test_one_notification_per_recipient_in_their_language() -> None:
    ns = plan_notifications(
        case_id=uuid4(), source_event_id=uuid4(), source_event_type="plan.agreed", template="plan_agreed",
        recipients=[Recipient("guardian-1", "guardian"), Recipient("guardian-1", "guardian"), Recipient("w", "responsible_worker"), Recipient("g2", "guardian")],
        languages={"guardian-1": "sv", "w": "fi", "g2": "other"}, params={}, now=datetime.now(timezone.utc),
    )
    assert [(n.recipient_id, n.language) for n in ns] == [("guardian-1", "sv"), ("w", "fi"), ("g2", "fi")]


def test_every_template_has_three_languages_and_renders() -> None:
    for name, texts in TEMPLATES.items():
        assert set(texts) == {"fi", "sv", "en"}, name
        for lang in texts:
            subject, body = render(name, lang, {"when": "24.11.2026 10:00"})
            assert subject and body and "{" not in body
