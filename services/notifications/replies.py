"""Calendar replies: iMIP answers read from the organizer mailbox become the participant's answer
(``notification.invitation_answered``), once."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from shared.contracts.notifications import InvitationAnswered

from .adapters import NotificationsUnitOfWork
from .imip import CalendarReply, Unreadable, read_reply

log = logging.getLogger("koolle.notifications")


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
