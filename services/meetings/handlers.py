"""Meetings use cases."""

from __future__ import annotations

from shared.contracts import ConveneMeeting, MeetingCaseQuery, MeetingConvened, MeetingHeld, RecordMeetingHeld, Reply
from shared.contracts.meetings import Participant
from shared.contracts.referral import ReferralReceived
from shared.errors import NotFound

from . import domain
from .adapters import MeetingsUnitOfWork

SERVICE = "meetings"


async def open_convening(ev: ReferralReceived, uow: MeetingsUnitOfWork) -> None:
    """Every received referral opens a convening for its case."""
    await uow.meetings.add_convening(
        domain.Convening(
            case_id=ev.case_id,
            municipality=ev.municipality,
            language=ev.language,
            interpreter_needed=ev.interpreter_needed,
            consent_to_convene=ev.consent_to_convene,
            statutory=ev.statutory,
            opened_at=ev.received_at,
            family_contacts=[c.model_dump(mode="json") for c in ev.contacts if c.role == "guardian"],
        )
    )


async def convene_meeting(cmd: ConveneMeeting, uow: MeetingsUnitOfWork) -> Reply:
    participants = [p.model_dump(mode="json") for p in cmd.participants]
    convening = await uow.meetings.convening(cmd.case_id)
    resources = [f"room:{cmd.room}"] + [f"person:{p['participant_id']}" for p in participants if p["kind"] == "professional"]
    busy = await uow.meetings.busy_resources(resources, cmd.starts_at, cmd.ends_at)
    meeting = domain.convene(
        convening,
        now=uow.now(),
        starts_at=cmd.starts_at,
        ends_at=cmd.ends_at,
        room=cmd.room,
        participants=participants,
        convened_by=cmd.convened_by,
        busy=busy,
    )
    await uow.meetings.add_meeting(meeting)
    uow.emit(
        MeetingConvened(
            producer=SERVICE,
            case_id=meeting.case_id,
            causation_id=cmd.command_id,
            occurred_at=uow.now(),
            meeting_id=meeting.meeting_id,
            starts_at=meeting.starts_at,
            ends_at=meeting.ends_at,
            room=meeting.room,
            language=meeting.language,  # type: ignore[arg-type]
            interpreter_needed=meeting.interpreter_needed,
            participants=[Participant.model_validate(p) for p in meeting.participants],
        )
    )
    reply = Reply(ok=True, id=str(meeting.meeting_id))
    await uow.remember_reply(str(cmd.command_id), "cmd.meetings.convene.v1", reply.model_dump(mode="json"))
    await uow.commit()
    return reply


async def record_held(cmd: RecordMeetingHeld, uow: MeetingsUnitOfWork) -> Reply:
    meeting = domain.record_held(
        await uow.meetings.meeting(cmd.meeting_id),
        now=uow.now(),
        attendance=[a.model_dump() for a in cmd.attendance],
        child_heard=cmd.child_heard,
        responsible_worker_ids=list(cmd.responsible_worker_ids),
    )
    await uow.meetings.save_meeting(meeting)
    assert meeting.held_at is not None
    uow.emit(
        MeetingHeld(
            producer=SERVICE,
            case_id=meeting.case_id,
            causation_id=cmd.command_id,
            occurred_at=meeting.held_at,
            meeting_id=meeting.meeting_id,
            held_at=meeting.held_at,
            family_present=meeting.family_present,
            child_heard=cmd.child_heard,
            attendance=list(cmd.attendance),
            responsible_worker_ids=meeting.responsible_worker_ids,
        )
    )
    reply = Reply(ok=True, id=str(meeting.meeting_id))
    await uow.remember_reply(str(cmd.command_id), "cmd.meetings.record_held.v1", reply.model_dump(mode="json"))
    await uow.commit()
    return reply


async def case_meetings(q: MeetingCaseQuery, uow: MeetingsUnitOfWork) -> Reply:
    convening = await uow.meetings.convening(q.case_id)
    if convening is None:
        raise NotFound("case_id")
    found = await uow.meetings.meetings_of_case(q.case_id)
    return Reply(
        ok=True,
        id=str(q.case_id),
        data={
            "convening": {"status": convening.status, "consent_to_convene": convening.consent_to_convene, "statutory": convening.statutory},
            "meetings": [
                {
                    "meeting_id": str(m.meeting_id),
                    "starts_at": m.starts_at.isoformat(),
                    "ends_at": m.ends_at.isoformat(),
                    "room": m.room,
                    "status": m.status,
                    "participants": [{k: p[k] for k in ("participant_id", "kind", "role")} for p in m.participants],
                }
                for m in found
            ],
        },
    )
