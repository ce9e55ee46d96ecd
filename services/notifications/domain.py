"""Notifications domain: who is told what, on which channel, in which language, and when. Plain Python, no I/O.

Messages carry no personal data about the family: they say that something happened and where to
read more. The recipient's address is looked up from the service's own directory at send time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any
from uuid import UUID

from email_validator import EmailNotValidError, validate_email

from shared.clock import HELSINKI
from shared.contracts.base import time_ordered_id

from .templates import TEMPLATES, render, render_portal_notice, template_language  # noqa: F401 - re-exported

FAMILY_ROLES = frozenset({"guardian", "parent", "child", "family", "family_member", "foster_parent"})

# -- who is told what ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    event: str
    template: str
    recipients: str
    notes: str = ""


RULES: tuple[Rule, ...] = (
    Rule(
        "referral.received",
        "referral_ack",
        "The referrer (acknowledgement). A family that contacted us itself (no referrer) gets it instead.",
        "Directory is fed with the guardians' and referrer's contact points.",
    ),
    Rule(
        "referral.assigned",
        "referral_assigned",
        "Every member of the assigned team (staff configuration).",
        "Remembers the case's team for later deadlines.",
    ),
    Rule(
        "referral.urgent",
        "referral_urgent",
        "The on-duty social worker of the municipality (on-duty roster in configuration: office hours / after hours).",
        "At once: SMS first, no quiet hours, dispatched before everything else.",
    ),
    Rule(
        "referral.case_transferred",
        "case_transferred",
        "Every member of the new team (staff configuration).",
        "The case's team is now the new one: later deadlines warn it.",
    ),
    Rule("referral.linked", "referral_linked", "The social workers of the case's team, when the team is known.", ""),
    Rule(
        "referral.deadline_approaching",
        "deadline_approaching",
        "The team's social workers and the team lead.",
        "Team from the event, else from referral.assigned.",
    ),
    Rule(
        "referral.deadline_breached",
        "deadline_breached",
        "The team's social workers and the team lead.",
        "Sent urgently (SMS first).",
    ),
    Rule(
        "referral.urgency_assessment_overdue",
        "urgency_overdue / urgency_overdue_lead",
        "escalation on_duty: the municipality's on-duty social worker (roster by the hour); escalation team_lead: "
        "the lead of the case's team (the on-duty worker when no lead is configured).",
        "Paged: urgent (SMS first), no quiet hours. Skipped when the urgency was already assessed.",
    ),
    Rule(
        "referral.urgency_assessed",
        "notification_received",
        "The guardians named in guardian_contact_ids (a child-protection notification whose guardians may be told), "
        "each in their own language.",
        "Nothing when the social worker recorded that telling them would endanger the child. Remembers the "
        "assessment so a late overdue timer pages nobody.",
    ),
    Rule("referral.decision_recorded", "-", "Nobody is told.", "Staff read the decision in the case."),
    Rule(
        "meeting.convened",
        "meeting_invitation",
        "Each participant: family, professionals and the referrer.",
        "E-mail carries an .ics invitation (METHOD:REQUEST, SEQUENCE 0).",
    ),
    Rule(
        "meeting.rescheduled",
        "meeting_rescheduled",
        "Each participant.",
        ".ics update: same UID, higher SEQUENCE. Pending older messages of the meeting are superseded.",
    ),
    Rule(
        "meeting.cancelled",
        "meeting_cancelled",
        "Each participant.",
        ".ics METHOD:CANCEL. Pending invitations and reminders of the meeting are cancelled.",
    ),
    Rule(
        "meeting.reminder_due",
        "meeting_reminder",
        "The participants named in the reminder.",
        "Skipped when the meeting was cancelled or the reminder is from an older revision.",
    ),
    Rule(
        "plan.agreed",
        "plan_agreed",
        "The family contacts of the plan and the responsible worker(s).",
        "The e-mail carries the plan itself (plan.copy_prepared): HTML body, PDF and HTML to print; the family's "
        "message says where to see it online when a guardian can sign in.",
    ),
    Rule(
        "plan.copy_prepared",
        "-",
        "Nobody is told.",
        "The family's copy of the plan version, kept for the plan e-mails (purged after plan_copy_retention_hours).",
    ),
    Rule(
        "plan.shared",
        "plan_shared",
        "The recipient named in the event (family, responsible worker, or a party the family consented to).",
        "A plan.shared event is the consented basis; basis=consent is re-checked at send time. No second message to someone already told of this plan version.",
    ),
    Rule("plan.revised", "plan_revised", "The family contacts and the responsible worker(s).", ""),
    Rule("plan.closed", "plan_closed", "The case's family contacts and responsible worker(s) from the directory.", ""),
    Rule(
        "plan.handover_opened",
        "handover_opened",
        "The lead of the case's team, when the roster change named no successor.",
        "With a successor the handover completes at once (plan.handed_over).",
    ),
    Rule(
        "plan.handed_over",
        "responsible_worker_changed / handover_received",
        "The family contacts, each in their language, with the new worker's organisation and contact "
        "(responsible_worker_changed); the new responsible worker (handover_received).",
        "The new worker's contact point is added to the case's directory.",
    ),
    Rule(
        "plan.service_start_overdue",
        "service_not_started",
        "Responsible worker(s) and the family contacts.",
        "Only the agreed day travels; the service's name stays in the plan.",
    ),
    Rule("followup.reminder_due", "followup_reminder", "Responsible worker(s) and the family contacts.", ""),
    Rule("followup.due", "followup_due", "Responsible worker(s) and the family contacts.", ""),
    Rule("followup.overdue", "followup_overdue", "Responsible worker(s) and the case's family contacts.", ""),
    Rule(
        "followup.rescheduled",
        "followup_rescheduled",
        "Responsible worker(s) and the family contacts.",
        "The new time of the agreed next contact; the plans service moved its reminder with it.",
    ),
    Rule(
        "assessment.completed",
        "assessment_completed / assessment_done",
        "The referrer, always, whatever the conclusion: with the outcome category (assessment_completed) when "
        "referrer_may_be_told, else only that the assessment is done (assessment_done).",
        "The outcome is consent-bound (purpose tell_referrer_outcome; withdrawn consent cancels it).",
    ),
    Rule(
        "consent.withdrawn",
        "-",
        "Nobody is told.",
        "Pending notifications to that party for that purpose are cancelled (notification.cancelled).",
    ),
)
RULE_BY_EVENT = {r.event: r for r in RULES}

STAFF_ONLY = frozenset(
    {
        "referral_assigned",
        "referral_urgent",
        "referral_linked",
        "deadline_approaching",
        "deadline_breached",
        "urgency_overdue",
        "urgency_overdue_lead",
    }
)
REFERRER_ONLY = frozenset({"assessment_completed", "assessment_done"})
FAMILY_ONLY = frozenset({"notification_received"})
MEETING_TEMPLATES = frozenset({"meeting_invitation", "meeting_rescheduled", "meeting_cancelled", "meeting_reminder"})


def role_allows(template: str, current_role: str | None) -> bool:
    """Checked again at send time: the recipient's role in the directory must still fit the message."""
    if current_role is None:
        return True  # not in the directory: delivery fails for want of contact details instead
    kind = Recipient("", current_role).resolved_kind()
    if template in STAFF_ONLY:
        return kind == "staff"
    if template in REFERRER_ONLY:
        return kind == "referrer"
    if template in FAMILY_ONLY:
        return kind == "family"
    return True


def rules_markdown() -> str:
    lines = [
        "| Event | Template | Recipients | Notes |",
        "|---|---|---|---|",
    ]
    for r in RULES:
        lines.append(f"| `{r.event}` | `{r.template}` | {r.recipients} | {r.notes} |")
    return "\n".join(lines)


# -- the notification --------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    contact_id: str
    role: str
    kind: str = ""  # family | staff | referrer; derived from the role when empty

    def resolved_kind(self) -> str:
        if self.kind:
            return self.kind
        if self.role == "referrer":
            return "referrer"
        return "family" if self.role in FAMILY_ROLES else "staff"


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
    params: dict[str, Any]
    recipient_kind: str = "staff"
    channel: str = "log"
    status: str = "pending"  # pending -> sending -> sent | failed; pending -> cancelled
    attempts: int = 0  # all delivery attempts
    channel_attempts: int = 0  # attempts on the current channel
    channels_tried: list[str] = field(default_factory=list)
    created_at: datetime | None = None
    sent_at: datetime | None = None
    not_before: datetime | None = None
    urgent: bool = False
    consent_purpose: str | None = None
    consent_id: str | None = None
    dedupe_key: str | None = None
    meeting: dict[str, Any] | None = None  # for the .ics: meeting_id, starts_at, ends_at, room, sequence, method
    failure: str | None = None
    provider_ref: str | None = None
    receipt: str | None = None  # delivery receipt where the channel gives one: delivered | undeliverable
    trace: dict[str, str] | None = None  # W3C trace context of the event that caused it (ids only)


def plan_notifications(
    *,
    case_id: UUID,
    source_event_id: UUID,
    source_event_type: str,
    template: str,
    recipients: list[Recipient],
    languages: dict[str, str],
    params: dict[str, Any],
    now: datetime,
    urgent: bool = False,
    consent_purpose: str | None = None,
    consent_id: str | None = None,
    meeting: dict[str, Any] | None = None,
    dedupe: str | None = None,
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
                notification_id=time_ordered_id(),
                case_id=case_id,
                source_event_id=source_event_id,
                source_event_type=source_event_type,
                recipient_id=r.contact_id,
                recipient_role=r.role,
                recipient_kind=r.resolved_kind(),
                language=template_language(template, languages.get(r.contact_id)),
                template=template,
                params=params,
                created_at=now,
                urgent=urgent,
                consent_purpose=consent_purpose,
                consent_id=consent_id,
                meeting=meeting,
                dedupe_key=f"{dedupe}:{r.contact_id}" if dedupe else None,
            )
        )
    return out


# -- channels ----------------------------------------------------------------------------------

DEFAULT_ORDER = ("email", "sms", "portal")
URGENT_ORDER = ("sms", "email", "portal")


def channel_order(n: Notification, preferred: str | None, available: tuple[str, ...]) -> list[str]:
    """Channels to try, best first: the person's preferred one, then the usual order; only those
    configured. The log channel alone is used when no real channel is configured."""
    if available == ("log",):
        return ["log"]
    base = list(URGENT_ORDER if n.urgent else DEFAULT_ORDER)
    if preferred in base and not n.urgent:
        base.remove(preferred)
        base.insert(0, preferred)
    return [c for c in base if c in available]


_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


@lru_cache(maxsize=4096)
def _valid_email(email: str) -> bool:
    """Syntax check only; the same few addresses (staff, referrers) come round again and again."""
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def address_for(channel: str, email: str | None, phone: str | None, recipient_id: str) -> tuple[str | None, str | None]:
    """(address, failure code). The portal addresses by contact id; the log channel takes any address."""
    if channel == "portal":
        return recipient_id, None
    if channel == "log":
        return (email or phone), (None if (email or phone) else "no_contact_details")
    if channel == "email":
        if not email:
            return None, "no_contact_details"
        return (email, None) if _valid_email(email) else (None, "invalid_email")
    if channel == "sms":
        if not phone:
            return None, "no_contact_details"
        if not _E164.match(phone):
            return None, "invalid_phone"
        return phone, None
    return None, "unknown_channel"


def backoff(attempt: int, base: float = 30.0, cap: float = 3600.0) -> timedelta:
    """Delay before the next attempt after ``attempt`` failed ones (1, 2, ...): exponential, capped."""
    return timedelta(seconds=min(cap, base * (2 ** max(0, attempt - 1))))


def quiet_until(now: datetime, start_hour: int = 21, end_hour: int = 8) -> datetime | None:
    """When ``now`` falls in the quiet hours (Helsinki time), the end of them (UTC-aware); else None."""
    local = now.astimezone(HELSINKI)
    t = local.time()
    start, end = time(start_hour), time(end_hour)
    in_quiet = (t >= start or t < end) if start > end else (start <= t < end)
    if not in_quiet:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=HELSINKI).astimezone(now.tzinfo)


# -- SMS length: GSM 03.38 or UCS-2 --------------------------------------------------------------

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsLength:
    encoding: str  # gsm7 | ucs2
    units: int  # septets (gsm7) or UTF-16 code units (ucs2)
    segments: int


def sms_length(text: str) -> SmsLength:
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text):
        units = sum(2 if ch in GSM7_EXTENDED else 1 for ch in text)
        single, multi = 160, 153
        enc = "gsm7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi = 70, 67
        enc = "ucs2"
    segments = 1 if units <= single else -(-units // multi)
    return SmsLength(enc, units, segments)


def sms_text(n: Notification, subject: str, body: str, portal_url: str, max_segments: int = 3) -> str:
    """An SMS to a family says only that there is a message and where to read it. Staff get the
    message itself, cut to ``max_segments``."""
    if n.recipient_kind == "family":
        return render_portal_notice(n.language, portal_url)
    text = f"{subject}: {body}"
    while sms_length(text).segments > max_segments:
        text = text[:-13].rstrip() + "..."
    return text
