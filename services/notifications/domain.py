"""Notifications domain: who is told what, in which language. Plain Python, no I/O.

Messages carry no personal data about the family: they say that something happened and where to
read more. The recipient's address is looked up from the service's own directory at send time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

TEMPLATES: dict[str, dict[str, tuple[str, str]]] = {
    "referral_ack": {
        "fi": ("Yhteydenottonne on vastaanotettu", "Koolle on vastaanottanut yhteydenottonne. Perhekeskus ottaa yhteyttä."),
        "sv": ("Er kontakt har tagits emot", "Koolle har tagit emot er kontakt. Familjecentret tar kontakt."),
        "en": ("Your referral was received", "Koolle has received your referral. The family centre will be in touch."),
    },
    "meeting_invitation": {
        "fi": ("Kutsu yhteiseen tapaamiseen", "Teidät on kutsuttu yhteiseen tapaamiseen {when}. Tiedot: Koolle-palvelu."),
        "sv": ("Inbjudan till gemensamt möte", "Ni är inbjudna till ett gemensamt möte {when}. Detaljer: Koolle-tjänsten."),
        "en": ("Invitation to a joint meeting", "You are invited to a joint meeting on {when}. Details: the Koolle service."),
    },
    "plan_agreed": {
        "fi": ("Yhteinen suunnitelma on kirjattu", "Yhteinen suunnitelma on kirjattu. Voit lukea sen Koolle-palvelussa."),
        "sv": ("Den gemensamma planen är registrerad", "Den gemensamma planen är registrerad. Du kan läsa den i Koolle-tjänsten."),
        "en": ("The joint plan was recorded", "The joint plan was recorded. You can read it in the Koolle service."),
    },
    "followup_due": {
        "fi": ("Sovittu yhteydenotto on nyt", "Sovitun yhteydenoton aika on {when}."),
        "sv": ("Dags för överenskommen kontakt", "Tiden för den överenskomna kontakten är {when}."),
        "en": ("The agreed follow-up is due", "The agreed follow-up contact is due {when}."),
    },
}


@dataclass(frozen=True)
class Recipient:
    contact_id: str
    role: str


@dataclass
class Notification:
    notification_id: UUID
    case_id: UUID
    source_event_id: UUID
    source_event_type: str
    recipient_id: str
    recipient_role: str
    language: str
    template: str
    params: dict[str, str]
    channel: str = "log"
    status: str = "pending"  # pending -> sent | failed
    attempts: int = 0
    created_at: datetime | None = None
    sent_at: datetime | None = None


def render(template: str, language: str, params: dict[str, str]) -> tuple[str, str]:
    texts = TEMPLATES[template]
    subject, body = texts.get(language) or texts["fi"]
    return subject, body.format(**params)


def plan_notifications(
    *,
    case_id: UUID,
    source_event_id: UUID,
    source_event_type: str,
    template: str,
    recipients: list[Recipient],
    languages: dict[str, str],
    params: dict[str, str],
    now: datetime,
) -> list[Notification]:
    """One notification per distinct recipient; the language is the recipient's own."""
    seen: set[str] = set()
    out = []
    for r in recipients:
        if r.contact_id in seen:
            continue
        seen.add(r.contact_id)
        out.append(
            Notification(
                notification_id=uuid4(),
                case_id=case_id,
                source_event_id=source_event_id,
                source_event_type=source_event_type,
                recipient_id=r.contact_id,
                recipient_role=r.role,
                # Finnish when the recipient's language has no template (e.g. "other": an interpreter helps).
                language=languages.get(r.contact_id) if languages.get(r.contact_id) in TEMPLATES[template] else "fi",
                template=template,
                params=params,
                created_at=now,
            )
        )
    return out
