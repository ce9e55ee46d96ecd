"""Meetings use cases: one async function per command, query or consumed event."""

from __future__ import annotations

import copy
import json
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from shared import audit
from shared.calendar import helsinki_date
from shared.case_access import CaseAccess
from shared.contracts import ConveneMeeting, MeetingCaseQuery, MeetingConvened, MeetingHeld, RecordMeetingHeld, Reply
from shared.contracts.base import FieldError
from shared.contracts.common import ContactPoint
from shared.contracts.meetings import (
    AcceptProposal,
    AdoptionStageRecorded,
    CancelMeeting,
    FeedbackRecorded,
    JointWorkStatisticsQuery,
    MeetingCancelled,
    MeetingReminderDue,
    MeetingRescheduled,
    MeetingResponseRecordedV2,
    MeetingsAccessLogQuery,
    MeetingStatisticsQuery,
    Participant,
    ProposeMeeting,
    RecordAdoptionStage,
    RecordFeedback,
    RescheduleMeeting,
    RespondToInvitation,
    ResponsibleWorkerDeactivated,
    RosterProfessionalChanged,
    RosterQuery,
    RosterRoomChanged,
    UpsertProfessional,
    UpsertRoom,
)
from shared.contracts.notifications import InvitationAnswered
from shared.contracts.plans import FollowupMeetingRequested, ResponsibleWorker
from shared.contracts.referral import (
    AssessmentStarted,
    ConsentGiven,
    ConsentWithdrawn,
    ReferralLinked,
    ReferralReceived,
    ReferralUnlinked,
)
from shared.errors import DomainError, NotFound
from shared.gc_pause import collections_paused

from . import domain, joint_statistics, meeting_statistics, stats
from .adapters import MeetingsUnitOfWork
from .slots import NoSlot, Professional, Proposal, Room, SlotRequest, find_slot, substitutes

log = logging.getLogger("koolle.meetings")

SERVICE = "meetings"
ROSTER_FILE = Path(__file__).with_name("roster.json")


def _participants(m: domain.Meeting) -> list[Participant]:
    return [Participant.model_validate(p) for p in m.participants]


def _timer_subject(meeting_id: UUID) -> str:
    return f"timers.meetings.reminder.{meeting_id}"


def _schedule_reminder(uow: MeetingsUnitOfWork, m: domain.Meeting, causation: UUID | None) -> None:
    """A durable reminder ``reminder_lead`` before the meeting. Scheduling the same subject again
    (after a reschedule) replaces the earlier timer; a reminder whose time has passed is dropped."""
    at = m.starts_at - uow.reminder_lead
    if at <= uow.now():
        if m.sequence:
            uow.cancel_timer(_timer_subject(m.meeting_id), f"reminder-drop-{m.meeting_id}-{m.sequence}")
        return
    uow.schedule(
        uow.envelope(
            MeetingReminderDue,
            case_id=m.case_id,
            causation_id=causation,
            meeting_id=m.meeting_id,
            starts_at=m.starts_at,
            participant_ids=sorted(p["participant_id"] for p in m.participants),
            sequence=m.sequence,
        ),
        timer_subject=_timer_subject(m.meeting_id),
        at=at,
        timer_id=f"reminder-{m.meeting_id}-{m.sequence}",
    )


# -- roster ------------------------------------------------------------------------------------------
def read_roster_file(path: Path) -> tuple[list[Professional], list[Room]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    pros = [Professional.from_dict(_valid(UpsertProfessional, d)) for d in data.get("professionals", [])]
    rooms = [Room.from_dict(_valid(UpsertRoom, r)) for r in data.get("rooms", [])]
    return pros, rooms


def _valid(contract: type[UpsertProfessional] | type[UpsertRoom], entry: dict[str, Any]) -> dict[str, Any]:
    """A roster file entry obeys the same rules as the staff command that changes it."""
    cmd = contract.model_validate({"command_id": str(uuid4()), "recorded_by": "roster-file", **entry})
    return cmd.model_dump(mode="json", exclude={"command_id", "recorded_by"})


async def load_roster(uow: MeetingsUnitOfWork, path: Path) -> tuple[int, int]:
    """Load the configuration file into the database. Entries changed by staff commands win. Each
    entry that changed is announced (roster.*_changed) in the same transaction."""
    pros, rooms = read_roster_file(path)
    n = sum([await _save_professional(uow, p, "config", keep_staff=True) for p in pros])
    r = sum([await _save_room(uow, x, "config", keep_staff=True) for x in rooms])
    await uow.commit()
    return n, r


async def _save_professional(uow: MeetingsUnitOfWork, p: Professional, source: str, keep_staff: bool = False) -> bool:
    if not await uow.meetings.upsert_professional(p, source, keep_staff=keep_staff):
        return False
    uow.emit(
        RosterProfessionalChanged,
        case_id=None,
        professional_id=p.professional_id,
        municipality=p.municipality,
        name=p.name,
        title=p.title,
        roles=list(p.roles),
        unit=p.unit,
        contact=p.contact,
        active=p.active,
        team=p.team,
    )
    return True


async def _save_room(uow: MeetingsUnitOfWork, r: Room, source: str, keep_staff: bool = False) -> bool:
    if not await uow.meetings.upsert_room(r, source, keep_staff=keep_staff):
        return False
    uow.emit(
        RosterRoomChanged,
        case_id=None,
        room_id=r.room_id,
        municipality=r.municipality,
        location=r.location,
        address=r.address,
        names=r.names,
        active=r.active,
    )
    return True


async def upsert_professional(cmd: UpsertProfessional, uow: MeetingsUnitOfWork) -> Reply:
    """Add or change a roster entry. Deactivating a professional who is responsible for families'
    plans hands each case over: one ``meeting.responsible_worker_deactivated`` per case, naming the
    successor (an active roster entry) when the change gives one."""
    data = cmd.model_dump(mode="json", exclude={"command_id", "recorded_by", "successor_id"})
    roster = {p.professional_id: p for p in await uow.meetings.roster()}
    before = roster.get(cmd.professional_id)
    successor = None
    if cmd.successor_id is not None:
        found = roster.get(cmd.successor_id)
        if cmd.active or found is None or not found.active or cmd.successor_id == cmd.professional_id:
            raise DomainError("unknown_successor", "successor_id")
        successor = ResponsibleWorker(
            worker_id=found.professional_id,
            organisation=found.unit,
            public_service=True,
            contact=ContactPoint.model_validate(
                found.contact | {"contact_id": found.professional_id, "role": "responsible_worker"}
            )
            if found.contact
            else None,
        )
    await _save_professional(uow, Professional.from_dict(data), "staff")
    if before is not None and before.active and not cmd.active:
        for case_id in await CaseAccess(uow).cases_of("responsible", cmd.professional_id):
            uow.emit(
                ResponsibleWorkerDeactivated,
                case_id=UUID(case_id),
                worker_id=cmd.professional_id,
                successor=successor,
                recorded_by=uow.actor,
            )
    return Reply(ok=True, id=cmd.professional_id)


async def upsert_room(cmd: UpsertRoom, uow: MeetingsUnitOfWork) -> Reply:
    data = cmd.model_dump(mode="json", exclude={"command_id", "recorded_by"})
    await _save_room(uow, Room.from_dict(data), "staff")
    return Reply(ok=True, id=cmd.room_id)


async def roster_query(q: RosterQuery, uow: MeetingsUnitOfWork) -> Reply:
    pros = [p.to_dict() for p in await uow.meetings.roster() if p.municipality == q.municipality]
    rooms = [r.to_dict() for r in await uow.meetings.rooms(q.municipality)]
    return Reply(
        ok=True, id=q.municipality, data={"professionals": sorted(pros, key=lambda p: p["professional_id"]), "rooms": rooms}
    )


# -- consumed events -----------------------------------------------------------------------------------
async def _preload_convenings(events: list[Any], uow: MeetingsUnitOfWork) -> None:
    await uow.meetings.preload_convenings({str(ev.case_id) for ev in events})


async def open_convening(ev: ReferralReceived, uow: MeetingsUnitOfWork) -> None:
    """Every received referral opens a convening for its case; the intake consent is its first
    ledger entry."""
    referrer = next((c.model_dump(mode="json") for c in ev.contacts if c.role == "referrer"), None)
    added = await uow.meetings.add_convening(
        domain.Convening(
            case_id=ev.case_id,
            municipality=ev.municipality,
            language=ev.language,
            interpreter_needed=ev.interpreter_needed,
            consent_to_convene=ev.consent_to_convene,
            statutory=ev.statutory,
            opened_at=ev.received_at,
            family_contacts=[c.model_dump(mode="json") for c in ev.contacts if c.role == "guardian"],
            deadline=ev.decision_due_by,
            referrer=referrer,
        )
    )
    if added and ev.consent_to_convene:
        await uow.meetings.record_consent(ev.case_id, domain.INTAKE, "convene_team", withdrawn=False)


async def on_consent_given(ev: ConsentGiven, uow: MeetingsUnitOfWork) -> None:
    if ev.purpose in ("convene_team", "invite_referrer"):
        await uow.meetings.record_consent(ev.case_id, str(ev.consent_id), ev.purpose, withdrawn=False, valid_until=ev.valid_until)


async def on_consent_withdrawn(ev: ConsentWithdrawn, uow: MeetingsUnitOfWork) -> None:
    """A withdrawal stops what is not done yet: without convene_team consent the case's future
    meetings are cancelled (voluntary work), without invite_referrer the referrer is taken off them."""
    if ev.purpose not in ("convene_team", "invite_referrer"):
        return
    await uow.meetings.record_consent(ev.case_id, str(ev.consent_id), ev.purpose, withdrawn=True)
    await uow.meetings.record_consent(ev.case_id, domain.INTAKE, ev.purpose, withdrawn=True)
    convening = await uow.meetings.convening(ev.case_id)
    if convening is None:
        return
    rows = await uow.meetings.consents(ev.case_id)
    today = helsinki_date(uow.now())
    if domain.consent_active(rows, ev.purpose, today):
        return
    for m in await uow.meetings.meetings_of_case(ev.case_id):
        if m.status != "convened" or m.starts_at <= uow.now():
            continue
        if ev.purpose == "convene_team" and not convening.statutory:
            await _cancel(uow, m, "consent_withdrawn", ev.event_id)
        elif ev.purpose == "invite_referrer" and any(p["kind"] == "referrer" for p in m.participants):
            m.participants = [p for p in m.participants if p["kind"] != "referrer"]
            m.sequence += 1
            await uow.meetings.release_bookings(m.meeting_id)
            await uow.meetings.book(m)
            await uow.meetings.save_meeting(m)
            _emit_rescheduled(uow, m, "referrer_consent_withdrawn", ev.event_id)
            _schedule_reminder(uow, m, ev.event_id)


async def on_referral_linked(ev: ReferralLinked, uow: MeetingsUnitOfWork) -> None:
    c = await uow.meetings.convening(ev.case_id)
    if c is not None and str(ev.referral_id) not in c.linked_referrals:
        c.linked_referrals.append(str(ev.referral_id))
        await uow.meetings.save_convening(c)


async def on_referral_unlinked(ev: ReferralUnlinked, uow: MeetingsUnitOfWork) -> None:
    c = await uow.meetings.convening(ev.previous_case_id)
    if c is not None and str(ev.referral_id) in c.linked_referrals:
        c.linked_referrals.remove(str(ev.referral_id))
        await uow.meetings.save_convening(c)


async def on_assessment_started(ev: AssessmentStarted, uow: MeetingsUnitOfWork) -> None:
    """From now on the next meeting is the first of the service-need assessment; it must be held
    before the assessment's completion deadline."""
    c = await uow.meetings.convening(ev.case_id)
    if c is None:
        raise RuntimeError("convening not open yet")  # retried: referral.received comes first
    c.assessment_started_on = ev.started_on
    c.deadline = ev.complete_by
    await uow.meetings.save_convening(c)


async def on_followup_meeting_requested(ev: FollowupMeetingRequested, uow: MeetingsUnitOfWork) -> None:
    """A plan asks for a follow-up meeting: open a proposal the responsible worker can accept."""
    c = await uow.meetings.convening(ev.case_id)
    if c is None:
        raise RuntimeError("convening not open yet")
    roster = await uow.meetings.roster()
    known = {p.professional_id for p in roster}
    fixed = [pid for pid in [ev.requested_by, *ev.participant_ids] if pid in known]
    not_before = max(uow.now(), ev.not_before) if ev.not_before else uow.now()
    await _propose(
        uow,
        c,
        roster,
        roles=list(ev.roles_needed),
        fixed=list(dict.fromkeys(fixed)),
        windows=[],
        duration=timedelta(hours=1),
        not_before=not_before,
        requested_by=ev.requested_by,
        source=f"followup:{ev.plan_id}:{ev.plan_version}",
        proposal_id=uuid4(),
    )


# -- proposals ----------------------------------------------------------------------------------------
def _party_size(c: domain.Convening, with_referrer: bool) -> int:
    return max(1, len(c.family_contacts)) + (1 if c.interpreter_needed else 0) + (1 if with_referrer else 0)


async def _referrer_invited(uow: MeetingsUnitOfWork, c: domain.Convening) -> tuple[bool, bool]:
    """(first assessment meeting?, referrer to be invited?)"""
    first = domain.is_first_assessment_meeting(c, await uow.meetings.meetings_of_case(c.case_id))
    consent = domain.consent_active(await uow.meetings.consents(c.case_id), "invite_referrer", helsinki_date(uow.now()))
    return first, first and consent and c.referrer is not None


async def _propose(
    uow: MeetingsUnitOfWork,
    c: domain.Convening,
    roster: list[Professional],
    *,
    roles: list[str],
    fixed: list[str],
    windows: list[tuple[Any, Any]],
    duration: timedelta,
    not_before: Any,
    requested_by: str,
    source: str,
    proposal_id: UUID,
    kind: str = "convene",
    meeting_id: UUID | None = None,
    busy_extra_ignore: UUID | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[Proposal | None, NoSlot | None]:
    _, with_referrer = await _referrer_invited(uow, c)
    resources = [f"person:{p.professional_id}" for p in roster] + [
        f"room:{r.room_id}" for r in await uow.meetings.rooms(c.municipality)
    ]
    busy = await uow.meetings.busy_intervals(resources, uow.now())
    if busy_extra_ignore is not None:  # a meeting being moved does not block itself
        own = await uow.meetings.meeting(busy_extra_ignore)
        if own is not None:
            for r in own.resources():
                busy[r] = [i for i in busy.get(r, []) if i != (own.starts_at, own.ends_at)]
    req = SlotRequest(
        municipality=c.municipality,
        language=c.language,
        roles=roles,
        fixed_ids=fixed,
        family_windows=windows,
        not_before=max(not_before, uow.now() + timedelta(minutes=1)),
        duration=duration,
        deadline=c.deadline,
        party_size=_party_size(c, with_referrer),
    )
    state: dict[str, Any] = {
        "requested_by": requested_by,
        "source": source,
        "roles": roles,
        "meeting_id": str(meeting_id) if meeting_id else None,
    }
    state |= extra or {}
    try:
        p = find_slot(req, roster, await uow.meetings.rooms(c.municipality), busy)
    except NoSlot as no:
        state |= {
            "no_slot": no.code,
            "earliest_after_deadline": no.earliest_after_deadline.to_dict() if no.earliest_after_deadline else None,
        }
        await uow.meetings.add_proposal(proposal_id, c.case_id, kind, state | {"status_reason": no.code}, uow.now())
        await uow.meetings.set_proposal_status(proposal_id, "no_slot")
        return None, no
    state["proposal"] = p.to_dict()
    await uow.meetings.add_proposal(proposal_id, c.case_id, kind, state, uow.now())
    return p, None


async def propose(cmd: ProposeMeeting, uow: MeetingsUnitOfWork) -> Reply:
    c = await uow.meetings.convening(cmd.case_id)
    if c is None:
        raise DomainError("unknown_case", "case_id")
    await _require_consent(uow, c)
    roster = await uow.meetings.roster()
    known = {p.professional_id for p in roster}
    fixed = list(cmd.participant_ids)
    if cmd.include_requester and uow.actor in known and uow.actor not in fixed:
        fixed.insert(0, uow.actor)
    pid = uuid4()
    p, no = await _propose(
        uow,
        c,
        roster,
        roles=list(cmd.roles),
        fixed=fixed,
        windows=[(w.starts_at, w.ends_at) for w in cmd.family_availability],
        duration=timedelta(minutes=cmd.duration_minutes),
        not_before=cmd.not_before or uow.now(),
        requested_by=uow.actor,
        source="staff",
        proposal_id=pid,
    )
    if no is not None:
        data = {
            "proposal_id": str(pid),
            "earliest_after_deadline": no.earliest_after_deadline.to_dict() if no.earliest_after_deadline else None,
        }
        reply = Reply(ok=False, id=str(pid), errors=[FieldError(field=no.field, code=no.code, message=no.messages())], data=data)
    else:
        assert p is not None
        reply = Reply(ok=True, id=str(pid), data={"proposal_id": str(pid), **p.to_dict()})
    return reply


async def _meeting(uow: MeetingsUnitOfWork, cmd: Any) -> domain.Meeting | None:
    """The meeting the command names, if it belongs to the case it names (access was decided from
    the case); otherwise none (not found)."""
    m = await uow.meetings.meeting(cmd.meeting_id)
    return m if m is not None and str(m.case_id) == str(cmd.case_id) else None


async def accept_proposal(cmd: AcceptProposal, uow: MeetingsUnitOfWork) -> Reply:
    row = await uow.meetings.proposal(cmd.proposal_id)
    if row is None or str(row["case_id"]) != str(cmd.case_id):
        raise NotFound("proposal_id")
    if row["status"] != "open":
        raise DomainError("proposal_closed", "proposal_id")
    state, kind = row["state"], row["kind"]
    prop = state["proposal"]
    starts, ends = datetime.fromisoformat(prop["starts_at"]), datetime.fromisoformat(prop["ends_at"])
    if kind == "convene":
        c = await uow.meetings.convening(UUID(row["case_id"]))
        assert c is not None
        roster = {p.professional_id: p for p in await uow.meetings.roster()}
        participants = [
            {"participant_id": f["contact_id"], "kind": "family", "role": f["role"], "contact": f} for f in c.family_contacts
        ]
        participants += [
            {
                "participant_id": a["professional_id"],
                "kind": "professional",
                "role": a["role"],
                "contact": roster[a["professional_id"]].contact,
            }
            for a in prop["assignments"]
        ]
        meeting = await _convene(uow, c, starts, ends, prop["room"], participants, uow.actor, cmd.command_id, cmd.proposal_id)
        result_id = meeting.meeting_id
    elif kind == "substitute":
        m = await uow.meetings.meeting(UUID(state["meeting_id"]))
        busy = await uow.meetings.busy_resources([f"person:{state['substitute']}"], m.starts_at, m.ends_at) if m else set()
        roster = {p.professional_id: p for p in await uow.meetings.roster()}
        new = {
            "participant_id": state["substitute"],
            "kind": "professional",
            "role": state["role"],
            "contact": roster[state["substitute"]].contact,
        }
        m = domain.replace_participant(m, old_id=state["declined"], new=new, busy=busy)
        await uow.meetings.release_bookings(m.meeting_id)
        await uow.meetings.book(m)
        await uow.meetings.save_meeting(m)
        _emit_rescheduled(uow, m, "substitute", cmd.command_id)
        _schedule_reminder(uow, m, cmd.command_id)
        result_id = m.meeting_id
    else:  # reschedule to a new slot (after a decline)
        m = await uow.meetings.meeting(UUID(state["meeting_id"]))
        if m is not None and state.get("declined"):
            roster = {p.professional_id: p for p in await uow.meetings.roster()}
            keep = [p for p in m.participants if p["participant_id"] != state["declined"]]
            assigned = {a["professional_id"]: a["role"] for a in prop["assignments"]}
            for pid_, role in assigned.items():
                if pid_ not in {p["participant_id"] for p in keep}:
                    keep.append({"participant_id": pid_, "kind": "professional", "role": role, "contact": roster[pid_].contact})
            if m.participant(state["declined"]) and m.participant(state["declined"])["kind"] == "family":  # type: ignore[index]
                keep = m.participants
            m.participants = keep
        m = await _move(uow, m, starts, ends, prop["room"], "new_slot_after_decline", cmd.command_id)
        result_id = m.meeting_id
    await uow.meetings.set_proposal_status(cmd.proposal_id, "accepted")
    return Reply(ok=True, id=str(result_id))


# -- convening ----------------------------------------------------------------------------------------
async def _require_consent(uow: MeetingsUnitOfWork, c: domain.Convening) -> bool:
    ok = c.statutory or domain.consent_active(await uow.meetings.consents(c.case_id), "convene_team", helsinki_date(uow.now()))
    if not ok:
        raise DomainError("consent_missing", "case_id")
    return ok


async def _convene(
    uow: MeetingsUnitOfWork,
    c: domain.Convening | None,
    starts_at: Any,
    ends_at: Any,
    room: str,
    participants: list[dict[str, Any]],
    convened_by: str,
    causation: UUID,
    proposal_id: UUID | None = None,
) -> domain.Meeting:
    consent, referrer_ok, first = None, False, False
    if c is not None:
        rows = await uow.meetings.consents(c.case_id)
        today = helsinki_date(uow.now())
        consent = domain.consent_active(rows, "convene_team", today)
        referrer_ok = domain.consent_active(rows, "invite_referrer", today)
        first, invite = await _referrer_invited(uow, c)
        if invite and not any(p["kind"] == "referrer" for p in participants):
            assert c.referrer is not None
            participants = participants + [
                {"participant_id": c.referrer["contact_id"], "kind": "referrer", "role": "referrer", "contact": c.referrer}
            ]
    roster = {p.professional_id: p for p in await uow.meetings.roster()}
    resources = [f"room:{room}"] + [f"person:{p['participant_id']}" for p in participants if p["kind"] == "professional"]
    busy = await uow.meetings.busy_resources(resources, starts_at, ends_at)
    meeting = domain.convene(
        c,
        now=uow.now(),
        starts_at=starts_at,
        ends_at=ends_at,
        room=room,
        participants=participants,
        convened_by=convened_by,
        busy=busy,
        consent=consent,
        referrer_consent=referrer_ok,
        roster=roster,
        room_info=await uow.meetings.room(room),
        check_room=True,
        first_assessment_meeting=first,
    )
    meeting.proposal_id = proposal_id
    await uow.meetings.add_meeting(meeting)
    uow.emit(
        MeetingConvened,
        case_id=meeting.case_id,
        causation_id=causation,
        meeting_id=meeting.meeting_id,
        starts_at=meeting.starts_at,
        ends_at=meeting.ends_at,
        room=meeting.room,
        language=meeting.language,  # type: ignore[arg-type]
        interpreter_needed=meeting.interpreter_needed,
        participants=_participants(meeting),
        municipality=meeting.municipality,
        first_assessment_meeting=meeting.first_assessment_meeting,
        proposal_id=proposal_id,
    )
    _schedule_reminder(uow, meeting, causation)
    return meeting


async def convene_meeting(cmd: ConveneMeeting, uow: MeetingsUnitOfWork) -> Reply:
    convening = await uow.meetings.convening(cmd.case_id)
    participants = [p.model_dump(mode="json") for p in cmd.participants]
    meeting = await _convene(uow, convening, cmd.starts_at, cmd.ends_at, cmd.room, participants, uow.actor, cmd.command_id)
    # Staff may pick a time outside someone's working hours (agreed with them): allowed, but said.
    roster = {x.professional_id: x for x in await uow.meetings.roster()}
    warnings = [
        p["participant_id"]
        for p in meeting.participants
        if p["kind"] == "professional" and not roster[p["participant_id"]].works(meeting.starts_at, meeting.ends_at)
    ]
    data = {"outside_working_hours": warnings} if warnings else None
    return Reply(ok=True, id=str(meeting.meeting_id), data=data)


# -- changes ------------------------------------------------------------------------------------------
def _emit_rescheduled(uow: MeetingsUnitOfWork, m: domain.Meeting, reason: str, causation: UUID | None) -> None:
    uow.emit(
        MeetingRescheduled,
        case_id=m.case_id,
        causation_id=causation,
        meeting_id=m.meeting_id,
        starts_at=m.starts_at,
        ends_at=m.ends_at,
        room=m.room,
        reason=reason,
        participants=_participants(m),
        sequence=m.sequence,
    )


async def _move(
    uow: MeetingsUnitOfWork,
    m: domain.Meeting | None,
    starts_at: Any,
    ends_at: Any,
    room: str | None,
    reason: str,
    causation: UUID,
) -> domain.Meeting:
    if m is not None:
        await uow.meetings.release_bookings(m.meeting_id)
        target_room = room or m.room
        resources = [f"room:{target_room}"] + [
            f"person:{p['participant_id']}" for p in m.participants if p["kind"] == "professional"
        ]
        busy = await uow.meetings.busy_resources(resources, starts_at, ends_at)
        if room and await uow.meetings.room(room) is None:
            raise DomainError("unknown_room", "room")
    else:
        busy = set()
    m = domain.reschedule(m, now=uow.now(), starts_at=starts_at, ends_at=ends_at, room=room, busy=busy)
    await uow.meetings.book(m)
    await uow.meetings.save_meeting(m)
    _emit_rescheduled(uow, m, reason, causation)
    _schedule_reminder(uow, m, causation)
    return m


async def reschedule(cmd: RescheduleMeeting, uow: MeetingsUnitOfWork) -> Reply:
    m = await _move(uow, await _meeting(uow, cmd), cmd.starts_at, cmd.ends_at, cmd.room, cmd.reason, cmd.command_id)
    return Reply(ok=True, id=str(m.meeting_id), data={"sequence": m.sequence})


async def _cancel(uow: MeetingsUnitOfWork, m: domain.Meeting | None, reason: str, causation: UUID | None) -> domain.Meeting:
    m = domain.cancel(m, reason=reason)
    await uow.meetings.release_bookings(m.meeting_id)
    await uow.meetings.save_meeting(m)
    uow.cancel_timer(_timer_subject(m.meeting_id), f"reminder-cancel-{m.meeting_id}")
    uow.emit(
        MeetingCancelled,
        case_id=m.case_id,
        causation_id=causation,
        meeting_id=m.meeting_id,
        reason=reason,
        participants=_participants(m),
        sequence=m.sequence,
    )
    return m


async def cancel(cmd: CancelMeeting, uow: MeetingsUnitOfWork) -> Reply:
    m = await _cancel(uow, await _meeting(uow, cmd), cmd.reason, cmd.command_id)
    return Reply(ok=True, id=str(m.meeting_id))


async def respond(cmd: RespondToInvitation, uow: MeetingsUnitOfWork) -> Reply:
    """RSVP. A professional's decline gets a substitute proposal (same role, free at that time),
    or else a proposal for a new slot; the family's decline gets a new-slot proposal."""
    m = await _meeting(uow, cmd)
    data = await _record_answer(uow, m, cmd.participant_id, cmd.answer, cmd.command_id)
    assert m is not None
    return Reply(ok=True, id=str(m.meeting_id), data=data)


async def on_invitation_answered(ev: InvitationAnswered, uow: MeetingsUnitOfWork) -> None:
    """An answer from the participant's own calendar (an iMIP reply the notifications service read):
    recorded as :func:`respond` records one. An answer to an older time of the meeting, to a meeting
    no longer open, or from someone no longer invited changes nothing (a reply never fails the consumer)."""
    m = await uow.meetings.meeting(ev.meeting_id)
    if m is None or str(m.case_id) != str(ev.case_id) or ev.sequence < m.sequence:
        log.info("calendar answer for meeting %s not recorded: unknown or stale", ev.meeting_id)
        return
    try:
        await _record_answer(uow, m, ev.participant_id, ev.answer, ev.event_id)
    except DomainError as exc:
        log.info("calendar answer for meeting %s not recorded: %s", ev.meeting_id, exc.code)


async def _record_answer(
    uow: MeetingsUnitOfWork, m: domain.Meeting | None, participant_id: str, answer: str, causation: UUID
) -> dict[str, Any]:
    m, changed = domain.respond(m, participant_id, answer)
    data: dict[str, Any] = {"answer": answer}
    if not changed:
        return data
    await uow.meetings.save_meeting(m)
    answered = {"case_id": m.case_id, "meeting_id": m.meeting_id, "participant_id": participant_id, "answer": answer}
    uow.emit(MeetingResponseRecordedV2, **answered)
    who = m.participant(participant_id)
    assert who is not None
    if answer == "declined" and who["kind"] in ("professional", "family"):
        data |= await _after_decline(uow, m, who, causation)
    return data


async def _after_decline(uow: MeetingsUnitOfWork, m: domain.Meeting, who: dict[str, Any], causation: UUID) -> dict[str, Any]:
    c = await uow.meetings.convening(m.case_id)
    if c is None:
        return {}
    roster = await uow.meetings.roster()
    pid = uuid4()
    if who["kind"] == "professional":
        resources = [f"person:{p.professional_id}" for p in roster]
        busy = await uow.meetings.busy_intervals(resources, uow.now())
        subs = substitutes(
            who["role"], m.starts_at, m.ends_at, roster, c.municipality, c.language, busy, exclude=m.participant_ids()
        )
        if subs:
            state = {
                "meeting_id": str(m.meeting_id),
                "declined": who["participant_id"],
                "role": who["role"],
                "substitute": subs[0],
                "alternatives": subs[1:],
                "proposal": {
                    "starts_at": m.starts_at.isoformat(),
                    "ends_at": m.ends_at.isoformat(),
                    "room": m.room,
                    "assignments": [],
                },
            }
            await uow.meetings.add_proposal(pid, m.case_id, "substitute", state, uow.now())
            return {"proposal_id": str(pid), "kind": "substitute", "substitute": subs[0], "role": who["role"]}
        fixed = [
            p["participant_id"]
            for p in m.participants
            if p["kind"] == "professional" and p["participant_id"] != who["participant_id"]
        ]
        roles = [who["role"]]
        roster = [p for p in roster if p.professional_id != who["participant_id"]]
    else:
        fixed = [p["participant_id"] for p in m.participants if p["kind"] == "professional"]
        roles = []
    p, no = await _propose(
        uow,
        c,
        roster,
        roles=roles,
        fixed=fixed,
        windows=[],
        duration=m.ends_at - m.starts_at,
        not_before=uow.now(),
        requested_by=m.convened_by,
        source="decline",
        proposal_id=pid,
        kind="reschedule",
        meeting_id=m.meeting_id,
        extra={"declined": who["participant_id"]},
    )
    if no is not None or p is None:
        return {"proposal_id": str(pid), "kind": "reschedule", "no_slot": no.code if no else "no_feasible_slot"}
    return {"proposal_id": str(pid), "kind": "reschedule", **p.to_dict()}


# -- the meeting held -------------------------------------------------------------------------------
async def record_held(cmd: RecordMeetingHeld, uow: MeetingsUnitOfWork) -> Reply:
    meeting = domain.record_held(
        await _meeting(uow, cmd),
        now=uow.now(),
        attendance=[a.model_dump() for a in cmd.attendance],
        child_heard=cmd.child_heard,
        responsible_worker_ids=list(cmd.responsible_worker_ids),
        wellbeing=[w.model_dump(mode="json") for w in cmd.wellbeing],
        feedback=cmd.feedback.model_dump(mode="json") if cmd.feedback else None,
    )
    await uow.meetings.save_meeting(meeting)
    assert meeting.held_at is not None
    if meeting.held_at < meeting.ends_at:  # recorded before its booked end: free the rest of the slot
        await uow.meetings.end_bookings(meeting.meeting_id, meeting.held_at)
    uow.emit(
        MeetingHeld,
        case_id=meeting.case_id,
        occurred_at=meeting.held_at,
        meeting_id=meeting.meeting_id,
        held_at=meeting.held_at,
        family_present=meeting.family_present,
        child_heard=cmd.child_heard,
        attendance=list(cmd.attendance),
        responsible_worker_ids=meeting.responsible_worker_ids,
        wellbeing_scores={w.area: w.score for w in cmd.wellbeing},
        municipality=meeting.municipality,
    )
    reply = Reply(ok=True, id=str(meeting.meeting_id))
    return reply


# -- queries ------------------------------------------------------------------------------------------
async def case_meetings(q: MeetingCaseQuery, uow: MeetingsUnitOfWork) -> Reply:
    """Audited: the read and its record commit together; a refused read is recorded too."""
    scope = f"case:{q.case_id}"
    convening = await uow.meetings.convening(q.case_id)
    if convening is None:
        await uow.audit.read(q, "read_meetings", q.case_id, audit.NOT_FOUND, scope)
        raise NotFound("case_id")
    found = await uow.meetings.meetings_of_case(q.case_id)
    rows = await uow.meetings.consents(q.case_id)
    proposals = await uow.meetings.proposals_of_case(q.case_id)
    today = helsinki_date(uow.now())
    await uow.audit.read(q, "read_meetings", q.case_id, audit.FOUND, scope)
    return Reply(
        ok=True,
        id=str(q.case_id),
        data={
            "convening": {
                "status": convening.status,
                "consent_to_convene": domain.consent_active(rows, "convene_team", today),
                "invite_referrer": domain.consent_active(rows, "invite_referrer", today),
                "statutory": convening.statutory,
                "deadline": convening.deadline.isoformat() if convening.deadline else None,
                "assessment_started_on": convening.assessment_started_on.isoformat() if convening.assessment_started_on else None,
            },
            "meetings": [
                {
                    "meeting_id": str(m.meeting_id),
                    "starts_at": m.starts_at.isoformat(),
                    "ends_at": m.ends_at.isoformat(),
                    "room": m.room,
                    "status": m.status,
                    "sequence": m.sequence,
                    "first_assessment_meeting": m.first_assessment_meeting,
                    "responses": m.responses,
                    "participants": [{k: p[k] for k in ("participant_id", "kind", "role")} for p in m.participants],
                    "wellbeing": m.wellbeing,
                    "feedback": m.feedback,
                }
                for m in found
            ],
            "proposals": [
                {
                    "proposal_id": r["proposal_id"],
                    "kind": r["kind"],
                    "status": r["status"],
                    "source": r["state"].get("source"),
                    "proposal": r["state"].get("proposal"),
                    "no_slot": r["state"].get("no_slot"),
                }
                for r in proposals
            ],
        },
    )


async def access_log(q: MeetingsAccessLogQuery, uow: MeetingsUnitOfWork) -> Reply:
    """Who has read these cases' meetings. The answer is itself a disclosure: audited after it is read."""
    return await audit.answer_access_log(q, uow.audit)


async def statistics(q: MeetingStatisticsQuery, uow: MeetingsUnitOfWork) -> Reply:
    """Counts per municipality, unit and month only: no one family's data, so not audited. Computed
    from the joint-meeting statistics read model (services/meetings/meeting_statistics.py)."""
    model = meeting_statistics.MeetingStatisticsModel(await _meeting_statistics_facts(uow, _months(q.from_month, q.to_month)))
    with collections_paused():  # no await inside: only this query's own records are built meanwhile
        result = stats.compute(
            model.meetings(),
            model.convenings(),
            model.units(),
            municipality=q.municipality,
            from_month=q.from_month,
            to_month=q.to_month,
        )
    if q.format == "csv":
        return Reply(ok=True, data={"csv": stats.to_csv(result)})
    return Reply(ok=True, data=result)


EVERY_MONTH = ("0000-00", "9999-99")


def _months(first: str | None, last: str | None) -> tuple[str, str]:
    return first or EVERY_MONTH[0], last or EVERY_MONTH[1]


async def _meeting_statistics_facts(uow: MeetingsUnitOfWork, months: tuple[str, str]) -> dict[str, dict[str, Any]]:
    """What ``stats.compute`` needs for these months: the meetings held in them, their cases (the
    referral and the deadline) and the roster (units and teams, as they are now)."""
    if not await uow.meetings.statistics_facts_indexed("meetings"):  # just upgraded: not yet
        return await uow.meetings.all_statistics_facts("meetings")
    facts = await uow.meetings.statistics_facts_of_kind("meetings", ("meeting",), months)
    if months == EVERY_MONTH:  # every case may be one of them: read them all at once
        return facts | await uow.meetings.statistics_facts_of_kind("meetings", ("case", "pro"))
    facts |= await uow.meetings.statistics_facts_by_key("meetings", {f"case:{f['case']}" for f in facts.values()})
    return facts | await uow.meetings.statistics_facts_of_kind("meetings", ("pro",))


def _payload(ev: Any, uow: MeetingsUnitOfWork) -> dict[str, Any]:
    """The event's JSON form, dumped once per transaction (the read models only read it)."""
    found = uow.payloads.get(id(ev))
    if found is None or found[0] is not ev:
        found = uow.payloads[id(ev)] = (ev, ev.model_dump(mode="json"))
    return found[1]


async def _preload_meeting_statistics(events: list[Any], uow: MeetingsUnitOfWork) -> None:
    keys = {meeting_statistics.MeetingStatisticsModel.key_of(ev.event_type, _payload(ev, uow)) for ev in events}
    await uow.meetings.preload_statistics_facts(keys, "meetings")


async def on_meeting_statistics_event(ev: Any, uow: MeetingsUnitOfWork) -> None:
    """The live joint-meeting statistics read model, folded exactly as a rebuild folds the streams."""
    payload = _payload(ev, uow)
    key = meeting_statistics.MeetingStatisticsModel.key_of(ev.event_type, payload)
    known = await uow.meetings.statistics_facts(key, "meetings")
    model = meeting_statistics.MeetingStatisticsModel({key: copy.deepcopy(known or {})})
    if model.apply(ev.event_type, payload) is not None and model.facts[key] != known:
        await uow.meetings.save_statistics_facts(key, model.facts[key], new=known is None, model="meetings")


# -- joint-work statistics (services/meetings/joint_statistics.py) --------------------------------
async def record_feedback(cmd: RecordFeedback, uow: MeetingsUnitOfWork) -> Reply:
    """The family's own answer (a guardian's token) or a worker's record of it (a staff token)."""
    given_by = "family" if getattr(uow.principal, "kind", "staff") == "guardian" else "worker"
    meeting = domain.record_feedback(await _meeting(uow, cmd), given_by=given_by, rating=cmd.rating, felt_heard=cmd.felt_heard)
    await uow.meetings.save_meeting(meeting)
    uow.emit(
        FeedbackRecorded,
        case_id=meeting.case_id,
        meeting_id=meeting.meeting_id,
        given_by=given_by,
        rating=cmd.rating,
        felt_heard=cmd.felt_heard,
        municipality=meeting.municipality,
    )
    return Reply(ok=True, id=str(meeting.meeting_id))


async def record_adoption_stage(cmd: RecordAdoptionStage, uow: MeetingsUnitOfWork) -> Reply:
    """Audited: the record and the event commit with the change. The municipality must have
    professionals in the roster (a typo would start a municipality of its own in the statistics)."""
    if not any(p.municipality == cmd.municipality for p in await uow.meetings.roster()):
        raise DomainError("unknown_municipality", "municipality")
    previous = await uow.meetings.adoption_stage(cmd.municipality)
    await uow.meetings.save_adoption_stage(cmd.municipality, cmd.stage, uow.now(), uow.actor, new=previous is None)
    await uow.audit.record(
        actor=uow.actor,
        case_id=None,
        action="record_adoption_stage",
        purpose=f"{previous or 'none'} -> {cmd.stage}",
        result=audit.FOUND,
        scope=f"municipality:{cmd.municipality}",
    )
    uow.emit(
        AdoptionStageRecorded,
        case_id=None,
        municipality=cmd.municipality,
        stage=cmd.stage,
        previous_stage=previous,
        recorded_by=uow.actor,
    )
    return Reply(ok=True, data={"municipality": cmd.municipality, "stage": cmd.stage, "previous_stage": previous})


async def _preload_joint_statistics(events: list[Any], uow: MeetingsUnitOfWork) -> None:
    keys = {joint_statistics.JointWorkStatistics.key_of(ev.event_type, _payload(ev, uow)) for ev in events}
    await uow.meetings.preload_statistics_facts(keys)


async def on_joint_statistics_event(ev: Any, uow: MeetingsUnitOfWork) -> None:
    """The live joint-work statistics read model, folded exactly as a rebuild folds the streams."""
    payload = _payload(ev, uow)
    key = joint_statistics.JointWorkStatistics.key_of(ev.event_type, payload)
    known = await uow.meetings.statistics_facts(key)
    model = joint_statistics.JointWorkStatistics({key: copy.deepcopy(known or {})})  # nested: compared after
    if model.apply(ev.event_type, payload) is not None and model.facts[key] != known:
        await uow.meetings.save_statistics_facts(key, model.facts[key], new=known is None)


async def _joint_statistics_facts(uow: MeetingsUnitOfWork, months: tuple[str, str]) -> dict[str, dict[str, Any]]:
    """What ``figures`` needs for these months' rows: what counts in them (meetings held, follow-ups,
    services), every held meeting of their cases (which one was a case's first), those cases (the
    contact and the municipality) and the adoption stages."""
    m = uow.meetings
    if not await m.statistics_facts_indexed("joint"):  # just upgraded: not yet
        return await m.all_statistics_facts("joint")
    if months == EVERY_MONTH:  # every record may count: read them all at once
        return await m.statistics_facts_of_kind("joint", ("case", "meeting", "followup", "overdue", "service", "stage"))
    facts = await m.statistics_facts_of_kind("joint", ("meeting", "followup", "overdue", "service"), months)
    facts |= await m.statistics_facts_of_kind("joint", ("service",), months, on="last_month")
    cases = {f["case"] for f in facts.values() if f.get("case")}
    # Is a meeting in the months its case's first? Its case's meetings held before them tell (the
    # months' own were read above; a later one is never a case's first).
    facts |= await m.statistics_facts_of_cases("joint", "meeting", cases, before=months[0])
    facts |= await m.statistics_facts_by_key("joint", {f"case:{c}" for c in cases})
    return facts | await m.statistics_facts_of_kind("joint", ("stage",))


async def index_statistics_facts(uow: MeetingsUnitOfWork) -> int:
    """One page of each read model's records that have no index columns yet (a database from before
    them) gets their values; returns how many did. Run by the service after its start until none are
    left (services/meetings/entrypoints.py)."""
    done = 0
    for model in ("meetings", "joint"):
        done += await uow.meetings.index_statistics_facts(model)
    await uow.commit()
    return done


async def joint_work_statistics(q: JointWorkStatisticsQuery, uow: MeetingsUnitOfWork) -> Reply:
    """Aggregates per municipality and month only: not audited (no one family's data)."""
    months = _months(q.from_month, q.to_month)
    facts = await _joint_statistics_facts(uow, months)
    with collections_paused():  # no await inside: only this query's own records are built meanwhile
        rows = [
            r for r in joint_statistics.JointWorkStatistics(facts).figures(q.municipality) if months[0] <= r["month"] <= months[1]
        ]
    data: dict[str, Any] = {"rows": rows}
    if q.format == "csv":
        data["csv"] = joint_statistics.to_csv(rows)
    elif q.format == "svg":
        data |= {"content_type": "image/svg+xml", "svg": joint_statistics.chart(rows, q.language)}
    return Reply(ok=True, data=data)


# A consumed batch reads at once what its events' handlers would read one by one (Subscription.preload).
open_convening.preload = _preload_convenings  # type: ignore[attr-defined]
on_meeting_statistics_event.preload = _preload_meeting_statistics  # type: ignore[attr-defined]
on_joint_statistics_event.preload = _preload_joint_statistics  # type: ignore[attr-defined]
