"""Thin entrypoints of the meetings service: subjects to use cases."""

from __future__ import annotations

from shared.contracts import ConveneMeeting, MeetingCaseQuery, RecordMeetingHeld, ReferralReceived
from shared.service import Service

from . import handlers


def register(svc: Service) -> None:
    svc.on_event(ReferralReceived)(handlers.open_convening)
    svc.request("cmd.meetings.convene.v1", ConveneMeeting)(handlers.convene_meeting)
    svc.request("cmd.meetings.record_held.v1", RecordMeetingHeld)(handlers.record_held)
    svc.request("query.meetings.case.v1", MeetingCaseQuery)(handlers.case_meetings)
