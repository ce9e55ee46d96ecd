"""Notifications use cases for consumed events: who is told what (in the consumer's transaction),
and feeding the directory and the roster copy. Delivery is ``delivery.py``; staff queries are
``queries.py``; calendar replies are ``replies.py``."""

from __future__ import annotations

import logging
from typing import Any

from shared.case_access import CaseAccess
from shared.contracts.meetings import (
    MeetingCancelled,
    MeetingConvened,
    MeetingReminderDue,
    MeetingRescheduled,
    Participant,
    RosterProfessionalChanged,
    RosterRoomChanged,
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
    ReferralLinked,
    ReferralReceived,
    ReferralUnlinked,
    ReferralUrgent,
    UrgencyAssessed,
    UrgencyAssessmentOverdue,
)
from shared.telemetry import inject_context

from .adapters import NotificationsUnitOfWork
from .cancellation import cancel, withhold
from .config import StaffDirectory
from .domain import FAMILY_ROLES, MEETING_TEMPLATES, Notification, Recipient, plan_notifications
from .plan_copy import wants_copy

SIGNAL = "notifications.pending"  # set after a commit that added notifications: wakes the dispatcher
log = logging.getLogger("koolle.notifications")

URGENCY_PAGES = frozenset({"urgency_overdue", "urgency_overdue_lead"})


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

    def _staff_languages(self, recipients: list[Recipient]) -> dict[str, str]:
        """The languages of staff recipients just written from configuration (no need to read them back)."""
        return {r.contact_id: self.staff.staff[r.contact_id].get("language") or "fi" for r in recipients}

    # referral --------------------------------------------------------------------------------
    async def on_referral_received(self, ev: ReferralReceived, uow: NotificationsUnitOfWork) -> None:
        await uow.notifications.upsert_contacts(ev.case_id, [c.model_dump(mode="json") for c in ev.contacts])
        recipients = [Recipient(c.contact_id, c.role, "referrer") for c in ev.contacts if c.role == "referrer"]
        if not recipients and ev.channel == "e_contact":  # the family contacted us itself
            recipients = [Recipient(c.contact_id, c.role, "family") for c in ev.contacts if c.role in FAMILY_ROLES]
        # Every recipient is one of the contacts just written: their languages are the event's.
        languages = {c.contact_id: c.language or "fi" for c in ev.contacts}
        await _notify(uow, ev, "referral_ack", recipients, {"received_at": ev.received_at.isoformat()}, languages)
        if ev.team_id:  # the new case's team, as in the referral.assigned published with it
            await self._assigned(ev, ev.team_id, ev.municipality, uow)

    async def on_referral_unlinked(self, ev: ReferralUnlinked, uow: NotificationsUnitOfWork) -> None:
        """The unlinked referral's new case is its team's, as a new referral's would be."""
        if ev.team_id:
            await self._assigned(ev, ev.team_id, ev.municipality or "", uow)

    async def _assigned(self, ev: Any, team_id: str, municipality: str, uow: NotificationsUnitOfWork) -> None:
        await uow.notifications.set_team(ev.case_id, team_id, municipality)
        recipients = await self._staff(uow, ev.case_id, self.staff.team_members(team_id))
        # The recipients are the staff contacts just written from configuration.
        languages = self._staff_languages(recipients)
        await _notify(uow, ev, "referral_assigned", recipients, {}, languages)

    async def on_case_transferred(self, ev: CaseTransferred, uow: NotificationsUnitOfWork) -> None:
        await uow.notifications.set_team(ev.case_id, ev.team_id, ev.municipality)
        recipients = await self._staff(uow, ev.case_id, self.staff.team_members(ev.team_id))
        languages = self._staff_languages(recipients)
        await _notify(uow, ev, "case_transferred", recipients, {"municipality": ev.municipality}, languages)

    async def on_referral_urgent(self, ev: ReferralUrgent, uow: NotificationsUnitOfWork) -> None:
        duty = self.staff.on_duty_social_worker(ev.municipality, uow.now())
        recipients = await self._staff(uow, ev.case_id, [duty] if duty else [])
        if not recipients:
            log.error("no on-duty social worker configured for an urgent referral (case %s)", ev.case_id)
        await _notify(uow, ev, "referral_urgent", recipients, {"municipality": ev.municipality}, urgent=True)

    async def on_referral_linked(self, ev: ReferralLinked, uow: NotificationsUnitOfWork) -> None:
        """The team's social workers and lead hear of the repeat; the new referral's contacts join the
        case's directory, and its referrer is told of the receipt as a first referral's is (and later
        when the assessment is done)."""
        await uow.notifications.upsert_contacts(ev.case_id, [c.model_dump(mode="json") for c in ev.contacts])
        referrers = [Recipient(c.contact_id, c.role, "referrer") for c in ev.contacts if c.role == "referrer"]
        languages = {c.contact_id: c.language or "fi" for c in ev.contacts}
        await _notify(uow, ev, "referral_ack", referrers, {"received_at": ev.occurred_at.isoformat()}, languages)
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
                await cancel(uow, n, "urgency_assessed")
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
                await withhold(uow, n)

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
                await cancel(uow, n, reason)

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
        await self._plan_message(uow, ev, "plan_agreed")

    async def on_plan_revised(self, ev: PlanRevised, uow: NotificationsUnitOfWork) -> None:
        await self._plan_message(uow, ev, "plan_revised")

    async def _plan_message(self, uow: NotificationsUnitOfWork, ev: PlanAgreed | PlanRevised, template: str) -> None:
        recipients = await self._plan_people(uow, ev)
        params = await _plan_params(uow, ev) | {"contacts": await _workers(uow, ev.case_id, _worker_ids(ev))}
        await _notify(uow, ev, template, recipients, params, dedupe=f"plan:{ev.plan_id}:{ev.plan_version}")

    async def on_plan_copy_prepared(self, ev: PlanCopyPrepared, uow: NotificationsUnitOfWork) -> None:
        """The family's copy, kept until the plan messages are out (they wait for it a while)."""
        await uow.notifications.add_plan_copy(ev.case_id, ev.plan_id, ev.plan_version, ev.language, ev.html, ev.pdf_base64)
        # A plan message that came first and was put off to wait for this copy goes now, not when
        # its short wait is over.
        for n in await uow.notifications.pending_of_case(ev.case_id):
            waiting = n.not_before is not None and n.attempts == 0 and wants_copy(n.template, n.params)
            if waiting and n.params["plan_id"] == str(ev.plan_id) and int(n.params["plan_version"]) == ev.plan_version:
                n.not_before = None
                await uow.notifications.save(n)
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
        recipients = _workers_and_family(ev)
        await _notify(uow, ev, "followup_reminder", recipients, await _followup_params(uow, ev))

    async def on_followup_due(self, ev: FollowupDue, uow: NotificationsUnitOfWork) -> None:
        recipients = _workers_and_family(ev)
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
        recipients = _workers_and_family(ev)
        await _notify(uow, ev, "service_not_started", recipients, {"start_by": ev.start_by.isoformat()})

    async def on_followup_rescheduled(self, ev: FollowupRescheduled, uow: NotificationsUnitOfWork) -> None:
        recipients = _workers_and_family(ev)
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


def _workers_and_family(ev: FollowupReminderDue | FollowupDue | FollowupRescheduled | ServiceStartOverdue) -> list[Recipient]:
    """The responsible workers and the family contacts the event names."""
    recipients = [Recipient(w, "responsible_worker", "staff") for w in ev.responsible_worker_ids]
    return recipients + [Recipient(c, "family", "family") for c in ev.family_contact_ids]


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
