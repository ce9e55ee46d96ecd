"""Notifications use cases.

1. Event handlers decide who is told (in the consumer's transaction) and feed the directory.
2. The dispatcher delivers: pending -> sending (committed before the provider is called) -> sent /
   failed, with reconciliation of anything left in ``sending`` by a crash, retries with backoff,
   fallback to the next channel, quiet hours for families, and consent/role checked again at send time.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared import audit
from shared.case_access import CaseAccess
from shared.contracts.base import Reply
from shared.contracts.meetings import (
    MeetingCancelled,
    MeetingConvened,
    MeetingReminderDue,
    MeetingRescheduled,
    Participant,
    RosterProfessionalChanged,
    RosterRoomChanged,
)
from shared.contracts.notifications import (
    FailedNotificationsQuery,
    InvitationAnswered,
    NotificationCancelled,
    NotificationCaseQuery,
    NotificationFailed,
    NotificationPortalMessage,
    NotificationsAccessLogQuery,
    NotificationSent,
    SetContactPreference,
)
from shared.contracts.plans import (
    FollowupDue,
    FollowupOverdue,
    FollowupReminderDue,
    FollowupRescheduled,
    PlanAgreed,
    PlanClosed,
    PlanCopyPrepared,
    PlanHandedOver,
    PlanHandoverOpened,
    PlanRevised,
    PlanShared,
    ServiceStartOverdue,
)
from shared.contracts.referral import (
    AssessmentCompleted,
    CaseTransferred,
    ConsentGiven,
    ConsentWithdrawn,
    DeadlineApproaching,
    DeadlineBreached,
    ReferralAssigned,
    ReferralLinked,
    ReferralReceived,
    ReferralUrgent,
    UrgencyAssessed,
    UrgencyAssessmentOverdue,
)
from shared.errors import NotFound
from shared.telemetry import extract_context, inject_context, safe_attributes, tracer

from .adapters import NotificationsUnitOfWork
from .channels import Channel, DeliveryError, OutboundMessage
from .config import NotificationsConfig, StaffDirectory
from .domain import (
    FAMILY_ROLES,
    MEETING_TEMPLATES,
    Notification,
    Recipient,
    address_for,
    backoff,
    channel_order,
    plan_notifications,
    quiet_until,
    render,
    role_allows,
    sms_text,
)
from .imip import CalendarReply, Unreadable, read_reply
from .invite import build_invite
from .plan_copy import attachments, body_with_copy, wants_copy
from .templates import place_text

SERVICE = "notifications"
SIGNAL = "notifications.pending"
DISPATCH_LIMIT = 250  # notifications per dispatch round
log = logging.getLogger("koolle.notifications")
_tracer = tracer(SERVICE)


# -- deciding who is told ------------------------------------------------------------------------


def _case_ref(case_id: Any) -> str:
    return str(case_id)[:8]


async def _notify(
    uow: NotificationsUnitOfWork,
    ev: Any,
    template: str,
    recipients: list[Recipient],
    params: dict[str, Any],
    languages: dict[str, str] | None = None,
    **kw: Any,
) -> int:
    """``languages``: the recipients' languages when the caller has just written them to the
    directory (no need to read them back)."""
    if languages is None:
        languages = await uow.notifications.languages(ev.case_id) if recipients else {}
    planned = plan_notifications(
        case_id=ev.case_id,
        source_event_id=ev.event_id,
        source_event_type=ev.event_type,
        template=template,
        recipients=recipients,
        languages=languages,
        params={"case_ref": _case_ref(ev.case_id), **params},
        now=uow.now(),
        **kw,
    )
    for n in planned:
        n.trace = {}
        inject_context(n.trace)  # the send and notification.sent continue the event's trace
    added = await uow.notifications.add_all(planned)
    if added:  # nothing new to send: no dispatch round
        uow.after_commit(uow.db.signal(SIGNAL).set)
    return added


class EventHandlers:
    """One use case per consumed event. ``staff`` is configuration data: teams, on-duty roster."""

    def __init__(self, staff: StaffDirectory) -> None:
        self.staff = staff

    async def _staff(self, uow: NotificationsUnitOfWork, case_id: Any, staff_ids: list[str]) -> list[Recipient]:
        """Staff recipients from configuration, copied into the case's directory."""
        out, known = [], []
        for sid in staff_ids:
            c = self.staff.contact(sid)
            if c is None:
                log.warning("staff id missing from configuration")
                continue
            known.append(c)
            out.append(Recipient(sid, c["role"], "staff"))
        await uow.notifications.upsert_contacts(case_id, known)
        return out

    # referral --------------------------------------------------------------------------------
    async def on_referral_received(self, ev: ReferralReceived, uow: NotificationsUnitOfWork) -> None:
        await uow.notifications.upsert_contacts(ev.case_id, [c.model_dump(mode="json") for c in ev.contacts])
        recipients = [Recipient(c.contact_id, c.role, "referrer") for c in ev.contacts if c.role == "referrer"]
        if not recipients and ev.channel == "e_contact":  # the family contacted us itself
            recipients = [Recipient(c.contact_id, c.role, "family") for c in ev.contacts if c.role in FAMILY_ROLES]
        # Every recipient is one of the contacts just written: their languages are the event's.
        languages = {c.contact_id: c.language or "fi" for c in ev.contacts}
        await _notify(uow, ev, "referral_ack", recipients, {"received_at": ev.received_at.isoformat()}, languages)

    async def on_referral_assigned(self, ev: ReferralAssigned, uow: NotificationsUnitOfWork) -> None:
        await uow.notifications.set_team(ev.case_id, ev.team_id, ev.municipality)
        recipients = await self._staff(uow, ev.case_id, self.staff.team_members(ev.team_id))
        # The recipients are the staff contacts just written from configuration.
        languages = {r.contact_id: self.staff.staff[r.contact_id].get("language") or "fi" for r in recipients}
        await _notify(uow, ev, "referral_assigned", recipients, {}, languages)

    async def on_case_transferred(self, ev: CaseTransferred, uow: NotificationsUnitOfWork) -> None:
        await uow.notifications.set_team(ev.case_id, ev.team_id, ev.municipality)
        recipients = await self._staff(uow, ev.case_id, self.staff.team_members(ev.team_id))
        languages = {r.contact_id: self.staff.staff[r.contact_id].get("language") or "fi" for r in recipients}
        await _notify(uow, ev, "case_transferred", recipients, {"municipality": ev.municipality}, languages)

    async def on_referral_urgent(self, ev: ReferralUrgent, uow: NotificationsUnitOfWork) -> None:
        duty = self.staff.on_duty_social_worker(ev.municipality, uow.now())
        recipients = await self._staff(uow, ev.case_id, [duty] if duty else [])
        if not recipients:
            log.error("no on-duty social worker configured for an urgent referral (case %s)", ev.case_id)
        await _notify(uow, ev, "referral_urgent", recipients, {"municipality": ev.municipality}, urgent=True)

    async def on_referral_linked(self, ev: ReferralLinked, uow: NotificationsUnitOfWork) -> None:
        team = await uow.notifications.team(ev.case_id)
        recipients = await self._staff(uow, ev.case_id, self.staff.team_social_workers_and_lead(team))
        await _notify(uow, ev, "referral_linked", recipients, {"repeat_count": ev.repeat_count})

    async def _deadline(self, ev: DeadlineApproaching | DeadlineBreached, uow: NotificationsUnitOfWork, template: str) -> None:
        team = ev.team_id or await uow.notifications.team(ev.case_id)
        recipients = await self._staff(uow, ev.case_id, self.staff.team_social_workers_and_lead(team))
        if not recipients:
            log.error("no team known for a deadline (case %s)", ev.case_id)
        params = {"deadline": ev.deadline, "due_by": ev.due_by.isoformat()}
        await _notify(uow, ev, template, recipients, params, urgent=template == "deadline_breached")

    async def on_deadline_approaching(self, ev: DeadlineApproaching, uow: NotificationsUnitOfWork) -> None:
        await self._deadline(ev, uow, "deadline_approaching")

    async def on_deadline_breached(self, ev: DeadlineBreached, uow: NotificationsUnitOfWork) -> None:
        await self._deadline(ev, uow, "deadline_breached")

    async def on_urgency_assessment_overdue(self, ev: UrgencyAssessmentOverdue, uow: NotificationsUnitOfWork) -> None:
        """Page the on-duty social worker (by the hour's roster), then on escalation the team lead."""
        duty = self.staff.on_duty_social_worker(ev.municipality, uow.now())
        if ev.escalation == "team_lead":
            lead = self.staff.team_lead(ev.team_id or await uow.notifications.team(ev.case_id))
            staff_ids, template = ([lead] if lead else [duty] if duty else []), "urgency_overdue_lead"
        else:
            staff_ids, template = ([duty] if duty else []), "urgency_overdue"
        recipients = await self._staff(uow, ev.case_id, [s for s in staff_ids if s])
        if not recipients:
            log.error("nobody to page for an unassessed urgency (case %s)", ev.case_id)
        params = {"municipality": ev.municipality, "due_at": ev.due_at.isoformat(), "referral_id": str(ev.referral_id)}
        await _notify(uow, ev, template, recipients, params, urgent=True)

    async def on_urgency_assessed(self, ev: UrgencyAssessed, uow: NotificationsUnitOfWork) -> None:
        """A page that fired just before the assessment and is not out yet is not sent; the guardians
        of a child-protection notification are told it was received (unless that endangers the child:
        then the event names none)."""
        for n in await uow.notifications.pending_of_case(ev.case_id):
            if n.template in URGENCY_PAGES and n.params.get("referral_id") == str(ev.referral_id):
                await _cancel(uow, n, "urgency_assessed")
        if not ev.guardians_may_be_told:
            return
        recipients = [Recipient(g, "guardian", "family") for g in ev.guardian_contact_ids]
        await _notify(uow, ev, "notification_received", recipients, {"received_at": ev.received_at.isoformat()})

    async def on_assessment_completed(self, ev: AssessmentCompleted, uow: NotificationsUnitOfWork) -> None:
        """Every referrer hears that the assessment is done, whatever its conclusion (the Porvoo rule);
        the outcome category only where the law or the family's consent allows."""
        rows = await uow.notifications.contacts_of_case(ev.case_id)
        recipients = [Recipient(r.contact_id, r.role, "referrer") for r in rows if r.role == "referrer"]
        if ev.referrer_may_be_told:
            await _notify(
                uow, ev, "assessment_completed", recipients, {"outcome": ev.outcome}, consent_purpose="tell_referrer_outcome"
            )
        else:
            await _notify(uow, ev, "assessment_done", recipients, {})

    async def on_consent_given(self, ev: ConsentGiven, uow: NotificationsUnitOfWork) -> None:
        await uow.notifications.clear_withdrawal(ev.case_id, ev.purpose, ev.recipient)

    async def on_consent_withdrawn(self, ev: ConsentWithdrawn, uow: NotificationsUnitOfWork) -> None:
        """Withdrawn consent stops everything not yet sent to that party for that purpose."""
        await uow.notifications.record_withdrawal(ev.case_id, ev.purpose, ev.recipient, ev.consent_id)
        for n in await uow.notifications.pending_of_case(ev.case_id):
            if _withdrawal_covers(n, ev.purpose, ev.recipient, str(ev.consent_id)):
                await _withhold(uow, n)

    # meetings --------------------------------------------------------------------------------
    async def _participants(self, uow: NotificationsUnitOfWork, ev: Any, participants: list[Participant]) -> list[Recipient]:
        out = []
        for p in participants:
            if p.contact is not None:
                await uow.notifications.upsert_contact(
                    ev.case_id, p.contact.model_dump(mode="json") | {"contact_id": p.participant_id}
                )
            elif p.kind == "professional":
                await self._roster_contact(uow, ev.case_id, p.participant_id, p.role)
            out.append(Recipient(p.participant_id, p.role, {"professional": "staff"}.get(p.kind, p.kind)))
        return out

    async def _supersede(self, uow: NotificationsUnitOfWork, case_id: Any, meeting_id: str, reason: str) -> None:
        for n in await uow.notifications.pending_of_case(case_id):
            if n.meeting and n.meeting.get("meeting_id") == meeting_id and n.template in MEETING_TEMPLATES:
                await _cancel(uow, n, reason)

    async def on_meeting_convened(self, ev: MeetingConvened, uow: NotificationsUnitOfWork) -> None:
        await uow.notifications.meeting_revision(str(ev.meeting_id), ev.case_id, 0)
        meeting = _meeting(ev, 0, "REQUEST")
        recipients = await self._participants(uow, ev, ev.participants)
        flags = {"interpreter_needed": ev.interpreter_needed, "first_assessment_meeting": ev.first_assessment_meeting}
        details = await _meeting_details(uow, str(ev.meeting_id), ev.room, ev.participants, flags)
        await _notify(uow, ev, "meeting_invitation", recipients, meeting | details, meeting=meeting)

    async def on_meeting_rescheduled(self, ev: MeetingRescheduled, uow: NotificationsUnitOfWork) -> None:
        known = await uow.notifications.meeting(str(ev.meeting_id))
        if known is not None and (known.cancelled or known.sequence > ev.sequence):
            return  # an older revision arriving late, or the meeting is already cancelled
        await self._supersede(uow, ev.case_id, str(ev.meeting_id), "superseded")
        await uow.notifications.meeting_revision(str(ev.meeting_id), ev.case_id, ev.sequence)
        meeting = _meeting(ev, ev.sequence, "REQUEST")
        recipients = await self._participants(uow, ev, ev.participants)
        before = await uow.notifications.meeting_details(str(ev.meeting_id))
        flags = {k: before.get(k, False) for k in ("interpreter_needed", "first_assessment_meeting")}
        details = await _meeting_details(uow, str(ev.meeting_id), ev.room, ev.participants, flags)
        await _notify(uow, ev, "meeting_rescheduled", recipients, meeting | details, meeting=meeting)

    async def on_meeting_cancelled(self, ev: MeetingCancelled, uow: NotificationsUnitOfWork) -> None:
        await self._supersede(uow, ev.case_id, str(ev.meeting_id), "meeting_cancelled")
        await uow.notifications.meeting_revision(str(ev.meeting_id), ev.case_id, ev.sequence, cancelled=True)
        meeting = {"meeting_id": str(ev.meeting_id), "sequence": ev.sequence, "method": "CANCEL"}
        recipients = await self._participants(uow, ev, ev.participants)
        details = await uow.notifications.meeting_details(str(ev.meeting_id))
        await _notify(uow, ev, "meeting_cancelled", recipients, {"contacts": details.get("contacts", [])}, meeting=meeting)

    async def on_meeting_reminder_due(self, ev: MeetingReminderDue, uow: NotificationsUnitOfWork) -> None:
        known = await uow.notifications.meeting(str(ev.meeting_id))
        if known is not None and (known.cancelled or known.sequence > ev.sequence):
            return
        rows = {r.contact_id: r for r in await uow.notifications.contacts_of_case(ev.case_id)}
        recipients = [Recipient(pid, rows[pid].role if pid in rows else "participant") for pid in ev.participant_ids]
        meeting = {"meeting_id": str(ev.meeting_id), "sequence": ev.sequence}
        details = await uow.notifications.meeting_details(str(ev.meeting_id))
        params = {"starts_at": ev.starts_at.isoformat()} | {k: details[k] for k in ("place", "contacts") if k in details}
        await _notify(uow, ev, "meeting_reminder", recipients, params, meeting=meeting)

    # the roster: rooms and professionals (organisation data) -------------------------------------
    async def on_roster_professional_changed(self, ev: RosterProfessionalChanged, uow: NotificationsUnitOfWork) -> None:
        contact = ev.contact
        person = {
            "name": ev.name,
            "title": dict(ev.title),
            "role": _title_role(ev.roles),
            "unit": ev.unit,
            "email": contact.email if contact else None,
            "phone": contact.phone if contact else None,
            "active": ev.active,
        }
        await uow.notifications.set_roster_entry("person", ev.professional_id, ev.occurred_at, person)

    async def on_roster_room_changed(self, ev: RosterRoomChanged, uow: NotificationsUnitOfWork) -> None:
        place = {"name": ev.location, "names": dict(ev.names), "address": ev.address, "active": ev.active}
        await uow.notifications.set_roster_entry("room", ev.room_id, ev.occurred_at, place)

    # plans -----------------------------------------------------------------------------------
    async def _roster_contact(self, uow: NotificationsUnitOfWork, case_id: Any, staff_id: str, role: str) -> None:
        """A worker the event names without a contact point: the staff configuration's or the
        roster's work contact, copied into the case's directory (a known one is kept)."""
        c = self.staff.contact(staff_id)
        if c is not None:
            await uow.notifications.upsert_contact(case_id, c | {"role": role})

    async def _plan_people(self, uow: NotificationsUnitOfWork, ev: PlanAgreed | PlanRevised) -> list[Recipient]:
        for w in ev.responsible_workers:
            if w.contact is not None:
                await uow.notifications.upsert_contact(
                    ev.case_id, w.contact.model_dump(mode="json") | {"contact_id": w.worker_id, "role": "responsible_worker"}
                )
            else:
                await self._roster_contact(uow, ev.case_id, w.worker_id, "responsible_worker")
        for c in ev.family_contacts:
            await uow.notifications.upsert_contact(ev.case_id, c.model_dump(mode="json"))
        recipients = [Recipient(c.contact_id, c.role, "family") for c in ev.family_contacts]
        return recipients + [Recipient(w.worker_id, "responsible_worker", "staff") for w in ev.responsible_workers]

    async def on_plan_agreed(self, ev: PlanAgreed, uow: NotificationsUnitOfWork) -> None:
        recipients = await self._plan_people(uow, ev)
        params = await _plan_params(uow, ev) | {"contacts": await _workers(uow, ev.case_id, _worker_ids(ev))}
        await _notify(uow, ev, "plan_agreed", recipients, params, dedupe=f"plan:{ev.plan_id}:{ev.plan_version}")

    async def on_plan_revised(self, ev: PlanRevised, uow: NotificationsUnitOfWork) -> None:
        recipients = await self._plan_people(uow, ev)
        params = await _plan_params(uow, ev) | {"contacts": await _workers(uow, ev.case_id, _worker_ids(ev))}
        await _notify(uow, ev, "plan_revised", recipients, params, dedupe=f"plan:{ev.plan_id}:{ev.plan_version}")

    async def on_plan_copy_prepared(self, ev: PlanCopyPrepared, uow: NotificationsUnitOfWork) -> None:
        """The family's copy, kept until the plan messages are out (they wait for it a while)."""
        await uow.notifications.add_plan_copy(ev.case_id, ev.plan_id, ev.plan_version, ev.language, ev.html, ev.pdf_base64)
        uow.after_commit(uow.db.signal(SIGNAL).set)

    async def on_plan_shared(self, ev: PlanShared, uow: NotificationsUnitOfWork) -> None:
        """A plan.shared event is the basis: this recipient may have this version. Someone already told
        of this version (plan.agreed / plan.revised) is not told twice."""
        if ev.contact is not None:
            await uow.notifications.upsert_contact(
                ev.case_id, ev.contact.model_dump(mode="json") | {"contact_id": ev.recipient_id}
            )
        kind = {"family": "family", "responsible_worker": "staff"}.get(ev.basis, "")
        recipient = Recipient(ev.recipient_id, ev.recipient_role, kind)
        consent = (
            {"consent_purpose": "share_plan", "consent_id": str(ev.consent_id) if ev.consent_id else None}
            if ev.basis == "consent"
            else {}
        )
        await _notify(
            uow,
            ev,
            "plan_shared",
            [recipient],
            {"plan_version": ev.plan_version, "contacts": await _workers(uow, ev.case_id, await _case_workers(uow, ev.case_id))},
            dedupe=f"plan:{ev.plan_id}:{ev.plan_version}",
            **consent,
        )

    async def on_plan_closed(self, ev: PlanClosed, uow: NotificationsUnitOfWork) -> None:
        contacts = await _workers(uow, ev.case_id, await _case_workers(uow, ev.case_id))
        await _notify(uow, ev, "plan_closed", await _family_and_workers(uow, ev.case_id), {"contacts": contacts})

    async def on_followup_reminder_due(self, ev: FollowupReminderDue, uow: NotificationsUnitOfWork) -> None:
        recipients = [Recipient(w, "responsible_worker", "staff") for w in ev.responsible_worker_ids]
        recipients += [Recipient(c, "family", "family") for c in ev.family_contact_ids]
        await _notify(uow, ev, "followup_reminder", recipients, await _followup_params(uow, ev))

    async def on_followup_due(self, ev: FollowupDue, uow: NotificationsUnitOfWork) -> None:
        recipients = [Recipient(w, "responsible_worker", "staff") for w in ev.responsible_worker_ids]
        recipients += [Recipient(c, "family", "family") for c in ev.family_contact_ids]
        await _notify(uow, ev, "followup_due", recipients, await _followup_params(uow, ev))

    async def on_followup_overdue(self, ev: FollowupOverdue, uow: NotificationsUnitOfWork) -> None:
        recipients = [Recipient(w, "responsible_worker", "staff") for w in ev.responsible_worker_ids]
        recipients += [r for r in await _family_and_workers(uow, ev.case_id) if r.kind == "family"]
        await _notify(uow, ev, "followup_overdue", recipients, await _followup_params(uow, ev))

    async def on_handover_opened(self, ev: PlanHandoverOpened, uow: NotificationsUnitOfWork) -> None:
        if ev.successor_named:
            return  # plan.handed_over follows at once
        lead = self.staff.team_lead(await uow.notifications.team(ev.case_id))
        recipients = await self._staff(uow, ev.case_id, [lead] if lead else [])
        await _notify(uow, ev, "handover_opened", recipients, {})

    async def on_plan_handed_over(self, ev: PlanHandedOver, uow: NotificationsUnitOfWork) -> None:
        """The family hears its new contact in its language; the new worker hears of the handover."""
        w = ev.responsible_worker
        if w.contact is not None:
            await uow.notifications.upsert_contact(
                ev.case_id, w.contact.model_dump(mode="json") | {"contact_id": w.worker_id, "role": "responsible_worker"}
            )
        contact = w.contact
        email, phone = (str(contact.email) if contact.email else None, contact.phone) if contact else (None, None)
        if not (email or phone):  # a successor named by the roster travels without contact: its work contact
            known = await uow.notifications.roster_entries("person", [w.worker_id])
            person = known.get(w.worker_id) or self.staff.contact(w.worker_id) or {}
            email, phone = person.get("email"), person.get("phone")
            if email or phone:
                row = {"contact_id": w.worker_id, "role": "responsible_worker", "email": email, "phone": phone}
                await uow.notifications.upsert_contact(ev.case_id, row)
        params = {"organisation": w.organisation, "phone": phone, "email": email}
        family = [Recipient(c, "family", "family") for c in ev.family_contact_ids]
        await _notify(uow, ev, "responsible_worker_changed", family, params, dedupe=f"handover:{ev.handover_id}")
        staff = [Recipient(w.worker_id, "responsible_worker", "staff")]
        await _notify(uow, ev, "handover_received", staff, {}, dedupe=f"handover:{ev.handover_id}:worker")

    async def on_service_start_overdue(self, ev: ServiceStartOverdue, uow: NotificationsUnitOfWork) -> None:
        recipients = [Recipient(w, "responsible_worker", "staff") for w in ev.responsible_worker_ids]
        recipients += [Recipient(c, "family", "family") for c in ev.family_contact_ids]
        await _notify(uow, ev, "service_not_started", recipients, {"start_by": ev.start_by.isoformat()})

    async def on_followup_rescheduled(self, ev: FollowupRescheduled, uow: NotificationsUnitOfWork) -> None:
        recipients = [Recipient(w, "responsible_worker", "staff") for w in ev.responsible_worker_ids]
        recipients += [Recipient(c, "family", "family") for c in ev.family_contact_ids]
        await _notify(uow, ev, "followup_rescheduled", recipients, await _followup_params(uow, ev))


async def _plan_params(uow: NotificationsUnitOfWork, ev: PlanAgreed | PlanRevised) -> dict[str, Any]:
    """The plan message joins the family's copy at send time (by plan id and version) and says
    where to see the plan online when a guardian of the case can sign in (a guardian link is known)."""
    (relation,) = await CaseAccess(uow).relations([ev.case_id])
    return {
        "plan_version": ev.plan_version,
        "plan_id": str(ev.plan_id),
        "guardian_online": bool(relation.guardians - relation.restricted_guardians),
    }


async def _family_and_workers(uow: NotificationsUnitOfWork, case_id: Any) -> list[Recipient]:
    rows = await uow.notifications.contacts_of_case(case_id)
    out = [Recipient(r.contact_id, r.role, "family") for r in rows if r.role in FAMILY_ROLES]
    return out + [Recipient(r.contact_id, r.role, "staff") for r in rows if r.role == "responsible_worker"]


# -- names and places instead of ids ----------------------------------------------------------------
# Messages show the roster's names, titles, places and work contacts (shared with the notifications
# service by roster.*_changed); nobody's id, a room id or a role code is ever shown to a person.

_FUNCTION_ROLES = frozenset({"close_worker", "responsible_worker"})


def _title_role(roles: list[str]) -> str:
    """The role that names a professional's work for a family: 'psychologist' rather than the
    function 'close_worker' they have in this case."""
    return next((r for r in roles if r not in _FUNCTION_ROLES), roles[0] if roles else "worker")


def _shown(entry: dict[str, Any] | None, role: str, contact: Any = None) -> dict[str, Any]:
    """A professional as a message shows them: name, title, unit and work contact (never the id)."""
    e = entry or {}
    return {
        "name": e.get("name"),
        "title": e.get("title") or {},
        "role": e.get("role") or role,
        "unit": e.get("unit"),
        "phone": e.get("phone") or getattr(contact, "phone", None),
        "email": e.get("email") or getattr(contact, "email", None),
    }


async def _meeting_details(
    uow: NotificationsUnitOfWork, meeting_id: str, room: str, participants: list[Participant], flags: dict[str, bool]
) -> dict[str, Any]:
    """The place (name and address from the roster), the convening worker (the close worker of the
    meeting, else its first professional) as contact person, and the other professionals; remembered
    for the meeting's reminder and cancellation."""
    place = (await uow.notifications.roster_entries("room", [room])).get(room)
    pros = [p for p in participants if p.kind == "professional"]
    people = await uow.notifications.roster_entries("person", [p.participant_id for p in pros])
    convener = next((p for p in pros if p.role == "close_worker"), pros[0] if pros else None)
    shown = {p.participant_id: _shown(people.get(p.participant_id), p.role, p.contact) for p in pros}
    details: dict[str, Any] = {
        "place": {k: place.get(k) for k in ("name", "names", "address")} if place else None,
        "convener": shown[convener.participant_id] if convener else None,
        "participants": [shown[p.participant_id] for p in pros if p is not convener],
        "contacts": [shown[convener.participant_id]] if convener else [],
        **flags,
    }
    await uow.notifications.set_meeting_details(meeting_id, details)
    return details


def _worker_ids(ev: PlanAgreed | PlanRevised) -> list[tuple[str, Any]]:
    return [(w.worker_id, w.contact) for w in ev.responsible_workers]


async def _case_workers(uow: NotificationsUnitOfWork, case_id: Any) -> list[tuple[str, Any]]:
    return [(r.contact_id, r) for r in await uow.notifications.contacts_of_case(case_id) if r.role == "responsible_worker"]


async def _workers(uow: NotificationsUnitOfWork, case_id: Any, workers: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    """The responsible worker(s) as the family's contact people: the roster's name, title and work
    contact, else the contact point the plan gave."""
    people = await uow.notifications.roster_entries("person", [w for w, _ in workers])
    return [_shown(people.get(w), "responsible_worker", contact) for w, contact in workers]


async def _followup_params(
    uow: NotificationsUnitOfWork, ev: FollowupReminderDue | FollowupDue | FollowupOverdue | FollowupRescheduled
) -> dict[str, Any]:
    rows = {r.contact_id: r for r in await uow.notifications.contacts_of_case(ev.case_id)}
    workers = [(w, rows.get(w)) for w in ev.responsible_worker_ids]
    return {"due_at": ev.due_at.isoformat(), "contacts": await _workers(uow, ev.case_id, workers)}


def _meeting(ev: MeetingConvened | MeetingRescheduled, sequence: int, method: str) -> dict[str, Any]:
    return {
        "meeting_id": str(ev.meeting_id),
        "starts_at": ev.starts_at.isoformat(),
        "ends_at": ev.ends_at.isoformat(),
        "room": ev.room,
        "sequence": sequence,
        "method": method,
    }


def _withdrawal_covers(n: Notification, purpose: str, recipient: str | None, consent_id: str) -> bool:
    if purpose == "invite_referrer":
        return n.recipient_kind == "referrer" and n.template in MEETING_TEMPLATES
    if n.consent_purpose != purpose:
        return False
    return recipient in (None, n.recipient_id) or n.consent_id == consent_id


async def _withhold(uow: NotificationsUnitOfWork, n: Notification) -> bool:
    """Consent withdrawn: the notification is cancelled (True). An outcome to the referrer instead
    becomes only that the assessment is done: the referrer always hears back, the outcome needs consent."""
    if n.template == "assessment_completed":
        n.template = "assessment_done"
        n.params = {k: v for k, v in n.params.items() if k != "outcome"}
        n.consent_purpose = n.consent_id = None
        await uow.notifications.save(n)
        return False
    await _cancel(uow, n, "consent_withdrawn")
    return True


URGENCY_PAGES = frozenset({"urgency_overdue", "urgency_overdue_lead"})

# Cancellations that refuse the recipient the content (as opposed to a superseded or cancelled meeting).
WITHHOLDING = frozenset({"consent_withdrawn", "role_not_allowed"})


async def _cancel(uow: NotificationsUnitOfWork, n: Notification, reason: str) -> None:
    n.status = "cancelled"
    n.failure = reason
    await uow.notifications.save(n)
    if reason in WITHHOLDING:
        await _audit_disclosure(uow, n, audit.WITHHELD, reason)
    uow.emit(
        NotificationCancelled,
        case_id=n.case_id,
        causation_id=n.source_event_id,
        notification_id=n.notification_id,
        source_event_id=n.source_event_id,
        recipient_id=n.recipient_id,
        reason=reason,
    )


# -- calendar replies --------------------------------------------------------------------------


async def record_calendar_reply(reply: CalendarReply | Unreadable, uow: NotificationsUnitOfWork) -> str:
    """An iMIP reply from the organizer mailbox becomes the participant's answer
    (``notification.invitation_answered``, which the meetings service records), once: the reply is
    recorded in the same transaction as the event. Returns the outcome code (safe to log)."""
    if await uow.notifications.calendar_reply_seen(reply.message_key):
        return "duplicate"
    outcome, meeting_id = await _answer(reply, uow)
    await uow.notifications.record_calendar_reply(reply.message_key, meeting_id, outcome)
    return outcome


async def _answer(reply: CalendarReply | Unreadable, uow: NotificationsUnitOfWork) -> tuple[str, str | None]:
    if isinstance(reply, Unreadable):
        return reply.reason, None
    known = await uow.notifications.meeting(reply.meeting_id)
    if known is None:
        return "unknown_meeting", reply.meeting_id
    if known.cancelled:
        return "meeting_cancelled", reply.meeting_id
    if reply.sequence < known.sequence:
        return "stale", reply.meeting_id  # an answer to a time that has since moved
    rows = await uow.notifications.contacts_of_case(known.case_id)
    who = [r.contact_id for r in rows if (r.email or "").lower() == reply.attendee]
    if len(who) != 1:
        return "unknown_attendee" if not who else "ambiguous_attendee", reply.meeting_id
    uow.emit(
        InvitationAnswered,
        case_id=known.case_id,
        meeting_id=reply.meeting_id,
        participant_id=who[0],
        answer=reply.answer,
        sequence=reply.sequence,
        answered_at=reply.answered_at or uow.now(),
    )
    return "recorded", reply.meeting_id


async def read_replies(uow_factory: Any, box: Any, poll_seconds: float) -> None:
    """Runs for the life of the service: reads the organizer mailbox (``box``: new mails as
    (key, bytes), and ``done(key)`` once a mail is recorded). A mail is marked done only after its
    transaction commits, so a crash in between reads it again and the inbox drops the copy."""
    while True:
        try:
            await read_replies_once(uow_factory, box)
        except Exception as exc:  # noqa: BLE001 - the mailbox is unreachable: try again next round
            log.warning("reply mailbox read failed (%s)", type(exc).__name__)
        await asyncio.sleep(poll_seconds)


async def read_replies_once(uow_factory: Any, box: Any) -> int:
    handled = 0
    for key, raw in await asyncio.to_thread(box.new):
        try:
            async with uow_factory() as uow:
                outcome = await record_calendar_reply(read_reply(raw), uow)
                await uow.commit()
        except Exception as exc:  # noqa: BLE001 - one bad mail never stops the others; it is tried again
            log.warning("calendar reply not recorded (%s)", type(exc).__name__)
            continue
        log.info("calendar reply: %s", outcome)
        await asyncio.to_thread(box.done, key)
        handled += 1
    return handled


# -- requests ----------------------------------------------------------------------------------


async def case_notifications(q: NotificationCaseQuery, uow: NotificationsUnitOfWork) -> Reply:
    rows = await uow.notifications.of_case(q.case_id)
    # Audited, a refused read too: the record commits before the answer (or the refusal) leaves.
    await uow.audit.read(q, "read_notifications", q.case_id, audit.FOUND if rows else audit.NOT_FOUND, f"case:{q.case_id}")
    if not rows:
        raise NotFound("case_id")
    return Reply(
        ok=True,
        id=str(q.case_id),
        data={
            "notifications": [
                {
                    "notification_id": r.notification_id,
                    "recipient_id": r.recipient_id,
                    "status": r.status,
                    "failure": r.failure,
                    "template": r.state["template"],
                    "source_event_type": r.state["source_event_type"],
                    "channel": r.state.get("channel"),
                    "channels_tried": r.state.get("channels_tried", []),
                    "attempts": r.state.get("attempts", 0),
                    "receipt": r.state.get("receipt"),
                    "not_before": r.state.get("not_before"),
                }
                for r in rows
            ]
        },
    )


async def failed_notifications(q: FailedNotificationsQuery, uow: NotificationsUnitOfWork) -> Reply:
    rows = await uow.notifications.failed(q.case_id, q.limit)
    scope = f"case:{q.case_id}" if q.case_id else "all"
    await uow.audit.read_cases(q, "list_failed_notifications", (r.case_id for r in rows), scope, empty_case=q.case_id)
    return Reply(
        ok=True,
        data={
            "failed": [
                {
                    "case_id": r.case_id,
                    "notification_id": r.notification_id,
                    "recipient_id": r.recipient_id,
                    "recipient_role": r.state["recipient_role"],
                    "template": r.state["template"],
                    "source_event_type": r.state["source_event_type"],
                    "reason": r.failure,
                    "channels_tried": r.state.get("channels_tried", []),
                    "attempts": r.state.get("attempts", 0),
                    "failed_at": r.updated_at.isoformat() if r.updated_at else None,
                }
                for r in rows
            ]
        },
    )


async def access_log(q: NotificationsAccessLogQuery, uow: NotificationsUnitOfWork) -> Reply:
    """Who has read these cases' notifications and who was sent one. Audited after it is read."""
    return await audit.answer_access_log(q, uow.audit)


async def set_preference(cmd: SetContactPreference, uow: NotificationsUnitOfWork) -> Reply:
    if not await uow.notifications.set_preference(cmd.case_id, cmd.contact_id, cmd.preferred_channel, cmd.language):
        raise NotFound("contact_id")
    return Reply(ok=True, id=cmd.contact_id)


# -- delivering --------------------------------------------------------------------------------


@dataclass
class Delivery:
    """The channels and the delivery policy."""

    channels: dict[str, Channel]
    config: NotificationsConfig = field(default_factory=NotificationsConfig)
    staff: StaffDirectory = field(default_factory=StaffDirectory)
    purged_at: datetime | None = None
    report_receiver: Any = None  # the SMS provider's delivery-report webhook, when configured
    receipts_polled_at: datetime | None = None
    reconciled_at: datetime | None = None

    @classmethod
    def of(cls, channel: Channel | Delivery) -> Delivery:
        return channel if isinstance(channel, Delivery) else cls({channel.name: channel}, NotificationsConfig())

    @property
    def available(self) -> tuple[str, ...]:
        return tuple(self.channels) + (
            ("portal",) if "portal" in self.config.channels() and "portal" not in self.channels else ()
        )


async def dispatch_once(uow_factory: Any, channel: Channel | Delivery, limit: int = 100, reconcile_all: bool = False) -> int:
    """One round: reconcile notifications a crash left in ``sending``, then deliver the due ones.
    Returns how many were handled."""
    delivery = Delivery.of(channel)
    now = uow_factory().now()
    stuck: list[Notification] = []
    # Crashed sends are rare: looked for at start and every reconcile_check_seconds, not every round.
    checked, cfg = delivery.reconciled_at, delivery.config
    every = timedelta(seconds=min(cfg.reconcile_check_seconds, cfg.reconcile_after_seconds / 2))
    if reconcile_all or checked is None or now - checked >= every:
        delivery.reconciled_at = now
        async with uow_factory() as uow:
            before = None if reconcile_all else now - timedelta(seconds=cfg.reconcile_after_seconds)
            stuck = await uow.notifications.sending(before, limit)
    for n in stuck:
        await _guard(_reconcile(uow_factory, delivery, n), n, uow_factory)
    due = await _deliver_batch(uow_factory, delivery, limit)
    if delivery.purged_at is None or now - delivery.purged_at >= timedelta(hours=1):
        delivery.purged_at = now
        async with uow_factory() as uow:  # the family's plan copies, once their messages are long out
            await uow.notifications.purge_plan_copies(now - timedelta(hours=cfg.plan_copy_retention_hours))
            await uow.commit()
    if "sms" in delivery.channels and (
        delivery.receipts_polled_at is None
        or now - delivery.receipts_polled_at >= timedelta(seconds=delivery.config.receipt_poll_seconds)
    ):
        delivery.receipts_polled_at = now
        try:
            await poll_receipts(uow_factory, delivery, "sms", now)
        except Exception as exc:  # noqa: BLE001 - receipts are best effort; delivery goes on
            log.warning("receipt poll failed (%s)", type(exc).__name__)
    return len(stuck) + due


async def poll_receipts(uow_factory: Any, delivery: Delivery, channel_name: str, now: datetime) -> int:
    """Ask the provider for delivery receipts of recently sent messages."""
    channel = delivery.channels[channel_name]
    async with uow_factory() as uow:
        waiting = await uow.notifications.awaiting_receipt(
            channel_name, now - timedelta(hours=delivery.config.receipt_window_hours)
        )
    got = 0
    for n in waiting:
        st = await channel.status(str(n.notification_id))
        if st.receipt is None:
            continue
        async with uow_factory() as uow:
            fresh = await uow.notifications.get(n.notification_id)
            if fresh is None:
                continue
            fresh.receipt = st.receipt
            await uow.notifications.save(fresh)
            await uow.commit()
            got += 1
    return got


async def _guard(step: Any, n: Notification, uow_factory: Any) -> None:
    try:
        await step
    except Exception as exc:  # noqa: BLE001 - one bad notification never stops the others
        log.warning("notification %s: dispatch step failed (%s)", n.notification_id, type(exc).__name__)
        try:  # and it does not come round again at once
            async with uow_factory() as uow:
                fresh = await uow.notifications.get(n.notification_id)
                if fresh is not None and fresh.status == "pending":
                    fresh.not_before = uow.now() + timedelta(seconds=60)
                    await uow.notifications.save(fresh)
                    await uow.commit()
        except Exception:  # noqa: BLE001 - the database itself is failing; the dispatcher loop backs off
            pass


async def _reconcile(uow_factory: Any, delivery: Delivery, n: Notification) -> None:
    """A crash left this notification in ``sending``: ask the provider instead of sending again."""
    channel = delivery.channels.get(n.channel)
    status = await channel.status(str(n.notification_id)) if channel else None
    async with uow_factory() as uow:
        fresh = await uow.notifications.get(n.notification_id)
        if fresh is None or fresh.status != "sending":
            return
        if status is not None and status.state == "sent":
            log.info("notification %s reconciled as sent", n.notification_id)
            fresh.provider_ref, fresh.receipt = status.provider_ref, status.receipt
            await _record_sent(uow, fresh, fresh.channel)
        elif status is None or status.state == "not_sent" or getattr(channel, "resend_when_unknown", False):
            fresh.status = "pending"  # the provider never took it: sending it now is not a duplicate
            fresh.not_before = None
            await uow.notifications.save(fresh)
        else:
            await uow.notifications.save(fresh)  # cannot tell yet: ask again later
            await uow.commit()
            return
        await uow.commit()


@dataclass
class _Ready:
    """A notification marked ``sending``, with its rendered message, waiting for the channel."""

    n: Notification
    chosen: str
    msg: OutboundMessage
    fallback_left: bool


_UNREAD: Any = object()


async def _prepare(
    uow: NotificationsUnitOfWork,
    delivery: Delivery,
    n: Notification,
    fresh: Notification | None = _UNREAD,
    contact: Any = _UNREAD,
) -> _Ready | None:
    """Checks at send time and the channel choice, in the caller's transaction. Returns the message
    to send (the row is then ``sending``), or None when the notification was settled here.

    ``fresh`` and ``contact``, when given, were read in this same transaction (a batch reads them
    all at once); otherwise they are read here."""
    cfg = delivery.config
    now = uow.now()
    n = await uow.notifications.get(n.notification_id) if fresh is _UNREAD else fresh  # type: ignore[assignment]
    if n is None or n.status != "pending" or (n.not_before is not None and n.not_before > now):
        return None
    if contact is _UNREAD:
        contact = await uow.notifications.contact(n.case_id, n.recipient_id)
    if n.recipient_kind == "staff" and (contact is None or not (contact.email or contact.phone)):
        contact = _staff_contact(delivery.staff, n.recipient_id, contact)
    # Consent and role, again, at send time.
    if n.consent_purpose and await uow.notifications.consent_withdrawn(
        n.case_id, n.consent_purpose, n.recipient_id, n.consent_id
    ):
        if await _withhold(uow, n):
            return None
    if not role_allows(n.template, contact.role if contact else None):
        await _cancel(uow, n, "role_not_allowed")
        return None
    if n.meeting and n.template in ("meeting_invitation", "meeting_rescheduled", "meeting_reminder"):
        m = await uow.notifications.meeting(str(n.meeting["meeting_id"]))
        if m is not None and (m.cancelled or m.sequence > int(n.meeting.get("sequence", 0))):
            await _cancel(uow, n, "meeting_cancelled" if m.cancelled else "superseded")
            return None
    # Choose the channel: preferred first, then fallbacks; skip missing/invalid details.
    usable, reasons = [], []
    preferred = contact.preferred_channel if contact else None
    for ch in channel_order(n, preferred, delivery.available):
        if ch in n.channels_tried and (ch != n.channel or n.channel_attempts == 0):
            continue  # given up on this one already
        addr, problem = address_for(ch, contact.email if contact else None, contact.phone if contact else None, n.recipient_id)
        if problem:
            reasons.append(problem)
            continue
        usable.append((ch, addr))
    chosen, address = usable[0] if usable else (None, None)
    if chosen is None:
        await _fail(uow, n, n.failure or _best_reason(reasons))
        return None
    if chosen == "sms" and n.recipient_kind == "family" and not n.urgent:
        until = quiet_until(now, cfg.quiet_start_hour, cfg.quiet_end_hour)
        if until is not None:
            n.not_before = until  # no SMS to a family at night: queued until morning
            await uow.notifications.save(n)
            return None
    copy = None
    if chosen == "email" and wants_copy(n.template, n.params):
        copy = await uow.notifications.plan_copy(n.params["plan_id"], int(n.params["plan_version"]))
        waited = (now - n.created_at).total_seconds() if n.created_at else cfg.plan_copy_wait_seconds
        if copy is None and waited < cfg.plan_copy_wait_seconds:
            n.not_before = now + timedelta(seconds=min(5.0, cfg.plan_copy_wait_seconds - waited))
            await uow.notifications.save(n)  # the copy is on its way (plan.copy_prepared): a moment
            return None
    if chosen not in n.channels_tried:
        n.channels_tried.append(chosen)
        n.channel_attempts = 0
    n.channel = chosen
    if chosen == "portal":  # the portal message is published with the state change: exactly once
        n.attempts += 1
        with _in_trace(n):
            await _record_sent(uow, n, "portal")
        return None
    try:
        msg = _message(n, chosen, address or "", cfg, delivery, now, copy)
    except Exception as exc:  # noqa: BLE001 - a message we cannot render is failed, not retried forever
        log.error("notification %s: cannot render (%s)", n.notification_id, type(exc).__name__)
        await _fail(uow, n, "template_error")
        return None
    n.status = "sending"
    n.attempts += 1
    n.channel_attempts += 1
    # Once committed, a crash means reconciliation, not a blind resend. The claim is conditional, so
    # when several replicas dispatch, only one of them sends a given notification.
    if not await uow.notifications.claim_sending(n):
        return None
    return _Ready(n, chosen, msg, len(usable) > 1)


@dataclass(frozen=True)
class _WorkContact:
    """A worker's work contact point from configuration (staff file or roster), shaped as a directory row."""

    role: str
    email: str | None
    phone: str | None
    preferred_channel: str | None = None


def _staff_contact(staff: StaffDirectory, staff_id: str, row: Any) -> Any:
    """The directory row when it has details; else the worker's configured work contact, keeping the
    role the case gave them (a worker named without contact details still gets the message)."""
    c = staff.contact(staff_id)
    if c is None:
        return row
    role = row.role if row is not None else c.get("role") or "staff"
    return _WorkContact(role, c.get("email"), c.get("phone"), row.preferred_channel if row is not None else None)


def _in_trace(n: Notification) -> Any:
    """Continue the trace of the event that caused the notification."""
    return _tracer.start_as_current_span(
        "notification record", context=extract_context(n.trace), attributes={"messaging.message.id": str(n.notification_id)}
    )


async def _send(delivery: Delivery, r: _Ready) -> tuple[Any, DeliveryError | None]:
    n, chosen = r.n, r.chosen
    with _tracer.start_as_current_span(
        f"notification send {chosen}",
        context=extract_context(n.trace),
        attributes=safe_attributes(
            **{
                "koolle.case_id": str(n.case_id),
                "koolle.event_type": n.source_event_type,
                "messaging.message.id": str(n.notification_id),
            }
        ),
    ) as span:
        try:
            receipt, error = await delivery.channels[chosen].send(r.msg), None
        except DeliveryError as exc:
            receipt, error = None, exc
        except Exception as exc:  # noqa: BLE001 - an adapter bug is a temporary failure, not a dead worker
            log.warning("notification %s: channel %s raised %s", n.notification_id, chosen, type(exc).__name__)
            receipt, error = None, DeliveryError("channel_error")
        span.set_attribute("koolle.outcome", error.code if error else "sent")
    return receipt, error


async def _conclude(
    uow: NotificationsUnitOfWork,
    delivery: Delivery,
    r: _Ready,
    receipt: Any,
    error: DeliveryError | None,
    status: str | None = _UNREAD,
) -> bool:
    """Record the channel's answer in the caller's transaction. True when the notification should
    be tried again at once on its next channel (fallback). ``status``, when given, is the row's
    status read in this same transaction."""
    cfg = delivery.config
    n, chosen = r.n, r.chosen
    now = uow.now()
    if status is _UNREAD:
        status = await uow.notifications.status(n.notification_id)
    if status != "sending":
        return False  # someone reconciled it meanwhile: record nothing twice
    if error is None:
        n.provider_ref, n.receipt = receipt.provider_ref, receipt.receipt
        with _in_trace(n):
            await _record_sent(uow, n, chosen)
        return False
    log.info("notification %s: %s on %s (attempt %d)", n.notification_id, error.code, chosen, n.channel_attempts)
    n.failure = error.code
    n.status = "pending"
    # Urgent messages do not wait for a retry while another channel can reach the person now.
    if error.temporary and n.channel_attempts < cfg.attempts_per_channel and not (n.urgent and r.fallback_left):
        n.not_before = now + backoff(n.channel_attempts, cfg.backoff_base_seconds, cfg.backoff_cap_seconds)
        await uow.notifications.save(n)
        return False
    # This channel is done for: fall back to the next one at once.
    n.channel_attempts = 0
    n.not_before = None
    await uow.notifications.save(n)
    return True


async def _deliver(uow_factory: Any, delivery: Delivery, n: Notification) -> None:
    """One notification in its own transactions (the isolation path when a batch fails)."""
    for _ in range(len(delivery.available) + 1):  # fall through channels that cannot be used
        async with uow_factory() as uow:
            r = await _prepare(uow, delivery, n)
            await uow.commit()
        if r is None:
            return
        receipt, error = await _send(delivery, r)
        async with uow_factory() as uow:
            again = await _conclude(uow, delivery, r, receipt, error)
            await uow.commit()
        if not again:
            return
        n = r.n


async def _deliver_batch(uow_factory: Any, delivery: Delivery, limit: int = 100) -> int:
    """Up to ``limit`` due notifications with two transactions in all: read and mark them
    ``sending`` together (what is read there is fresh, no second read), send them concurrently,
    record the answers together. Any error falls back to one at a time. Returns how many were due."""
    due: list[Notification] = []
    try:
        ready: list[_Ready] = []
        async with uow_factory() as uow:
            due = await uow.notifications.due(uow.now(), limit)
            fresh = {str(n.notification_id): n for n in due}
            if not due:
                return 0
            directory = await uow.notifications.contacts_of_cases({str(f.case_id) for f in fresh.values()})
            # The claims in one statement; if another replica took one meanwhile, one by one below.
            async with uow.notifications.claims_together():
                for n in due:
                    f = fresh.get(str(n.notification_id))
                    contact = None if f is None else directory.get((str(f.case_id), f.recipient_id))
                    r = await _prepare(uow, delivery, n, f, contact)
                    if r is not None:
                        ready.append(r)
            await uow.commit()
    except Exception as exc:  # noqa: BLE001 - find the bad one by going one by one
        log.warning("notification batch prepare failed (%s); one by one", type(exc).__name__)
        for n in due:
            await _guard(_deliver(uow_factory, delivery, n), n, uow_factory)
        return len(due)
    # Sends at once per channel: a provider's connections are limited, the spool file is not (its
    # journal writes everything waiting with one fsync).
    gates = {name: asyncio.Semaphore(getattr(ch, "max_concurrent", 20)) for name, ch in delivery.channels.items()}

    async def send(r: _Ready) -> tuple[Any, DeliveryError | None]:
        async with gates[r.chosen]:
            return await _send(delivery, r)

    results = await asyncio.gather(*(send(r) for r in ready))
    try:
        fall_back = []
        async with uow_factory() as uow:
            statuses = await uow.notifications.statuses([r.n.notification_id for r in ready])
            # Nothing here reads back what it writes: the saves and audit records go in one statement each.
            async with uow.notifications.saves_together(), uow.audit.together():
                for r, (receipt, error) in zip(ready, results, strict=True):
                    if await _conclude(uow, delivery, r, receipt, error, statuses.get(str(r.n.notification_id))):
                        fall_back.append(r.n)
            await uow.commit()
        for n in fall_back:  # the next channel at once, as the one-by-one path does
            await _guard(_deliver(uow_factory, delivery, n), n, uow_factory)
    except Exception as exc:  # noqa: BLE001
        log.warning("notification batch record failed (%s); one by one", type(exc).__name__)
        for r, (receipt, error) in zip(ready, results, strict=True):
            try:
                async with uow_factory() as uow:
                    await _conclude(uow, delivery, r, receipt, error)
                    await uow.commit()
            except Exception as exc1:  # noqa: BLE001 - stays 'sending': reconciled later, never resent blindly
                log.warning("notification %s: record failed (%s)", r.n.notification_id, type(exc1).__name__)
    return len(due)


def _best_reason(reasons: list[str]) -> str:
    for r in ("invalid_email", "invalid_phone"):
        if r in reasons:
            return r
    return reasons[0] if reasons else "no_channel"


def _message(
    n: Notification, channel: str, address: str, cfg: NotificationsConfig, delivery: Delivery, now: datetime, copy: Any = None
) -> OutboundMessage:
    subject, body = render(n.template, n.language, n.params, n.recipient_kind)
    ics = None
    method = "REQUEST"
    html, attached = None, ()
    if channel == "email" and wants_copy(n.template, n.params):
        online = cfg.plan_portal_url if n.params.get("guardian_online") and n.recipient_kind == "family" else None
        body = body_with_copy(body, n.language, copy is not None, online)
        if copy is not None:
            html, attached = copy.html, attachments(copy, int(n.params["plan_version"]))
    if channel == "sms":
        body = sms_text(n, subject, body, cfg.portal_url, cfg.sms_max_segments)
    elif channel == "email" and n.meeting and n.template in ("meeting_invitation", "meeting_rescheduled", "meeting_cancelled"):
        method = n.meeting.get("method", "REQUEST")
        # Replies go to the mailbox this service reads (``reply_address``), else to the sender.
        organizer = cfg.reply_address or getattr(delivery.channels.get("email"), "organizer", "no-reply@koolle.example")
        # The calendar entry's LOCATION names the place, never the room id.
        meeting = {k: v for k, v in n.meeting.items() if k != "room"} | {"room": place_text(n.params, n.language)}
        ics = build_invite(meeting, summary=subject, description=body, attendee_email=address, organizer_email=organizer, now=now)
    return OutboundMessage(
        notification_id=str(n.notification_id),
        recipient_id=n.recipient_id,
        address=address,
        language=n.language,
        subject=subject,
        body=body,
        ics=ics,
        ics_method=method,
        html=html,
        attachments=attached,
    )


async def _record_sent(uow: NotificationsUnitOfWork, n: Notification, channel: str) -> None:
    now = uow.now()
    n.status = "sent"
    n.sent_at = now
    n.failure = None
    n.not_before = None
    await uow.notifications.save(n)
    await _audit_disclosure(uow, n, audit.DISCLOSED, f"{n.template} via {channel}")
    uow.emit(NotificationSent, **_sent(n, channel, now))
    if channel == "portal" or (channel == "sms" and n.recipient_kind == "family"):
        # The SMS to a family only says where to read the message: the message itself goes to the portal.
        subject, body = render(n.template, n.language, n.params, n.recipient_kind)
        uow.emit(
            NotificationPortalMessage,
            case_id=n.case_id,
            causation_id=n.source_event_id,
            notification_id=n.notification_id,
            recipient_id=n.recipient_id,
            recipient_role=n.recipient_role,
            audience="staff" if n.recipient_kind == "staff" else "family",
            template=n.template,
            language=n.language,
            title=subject,
            body=body,
            source_event_type=n.source_event_type,
        )


async def _audit_disclosure(uow: NotificationsUnitOfWork, n: Notification, result: str, why: str) -> None:
    """A notification's content given to (or withheld from) its recipient, in the same transaction
    as its status: who = the recipient, what = the template."""
    await uow.audit.record(
        actor=n.recipient_id,
        case_id=n.case_id,
        action="send_notification",
        purpose=f"{why} to {n.recipient_role}",
        result=result,
        scope=f"notification:{n.notification_id}",
    )


async def _fail(uow: NotificationsUnitOfWork, n: Notification, reason: str) -> None:
    now = uow.now()
    n.status = "failed"
    n.failure = reason
    await uow.notifications.save(n)
    log.info("notification %s failed: %s", n.notification_id, reason)
    uow.emit(
        NotificationFailed,
        case_id=n.case_id,
        causation_id=n.source_event_id,
        notification_id=n.notification_id,
        source_event_id=n.source_event_id,
        source_event_type=n.source_event_type,
        recipient_id=n.recipient_id,
        recipient_role=n.recipient_role,
        template=n.template,
        channels_tried=list(n.channels_tried),
        attempts=n.attempts,
        reason=reason,
        failed_at=now,
    )


def _sent(n: Notification, channel: str, now: datetime) -> dict[str, Any]:
    """notification.sent's payload (a dispatch round handles no one event: its cause is named)."""
    return {
        "case_id": n.case_id,
        "causation_id": n.source_event_id,
        "occurred_at": now,
        "notification_id": n.notification_id,
        "source_event_id": n.source_event_id,
        "source_event_type": n.source_event_type,
        "recipient_id": n.recipient_id,
        "recipient_role": n.recipient_role,
        "channel": channel,
        "template": n.template,
        "language": n.language,
        "sent_at": now,
    }


async def dispatcher(uow_factory: Any, channel: Channel | Delivery, wake: asyncio.Event, poll_seconds: float = 1.0) -> None:
    """Runs for the life of the service; ``wake`` is set right after a consumer commits new notifications.
    Notifications a crashed process left in ``sending`` are reconciled once they are
    ``reconcile_after_seconds`` old (``KOOLLE_NOTIFICATIONS_RECONCILE_AFTER_SECONDS``)."""
    while True:
        wake.clear()  # before looking: work committed from here on wakes the next wait at once
        try:
            # Only sends older than reconcile_after_seconds are reconciled: a send in flight in
            # another replica is never taken for a crashed one.
            n = await dispatch_once(uow_factory, channel, DISPATCH_LIMIT)
        except Exception as exc:  # noqa: BLE001 - keep delivering; the row stays pending
            log.warning("dispatch failed (%s)", type(exc).__name__)
            await asyncio.sleep(1.0)
            continue
        # Fewer than a round's worth: nothing else is due now. What was committed meanwhile has
        # set ``wake`` again, so the wait returns at once (no empty round to find that out).
        if n < DISPATCH_LIMIT:
            try:
                await asyncio.wait_for(wake.wait(), poll_seconds)
            except TimeoutError:
                pass
