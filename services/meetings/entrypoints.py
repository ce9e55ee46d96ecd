"""Thin entrypoints of the meetings service: subjects to use cases."""

from __future__ import annotations

from shared.contracts import ConveneMeeting, MeetingCaseQuery, RecordMeetingHeld
from shared.contracts.meetings import (
    AcceptProposal,
    CancelMeeting,
    MeetingsAccessLogQuery,
    MeetingStatisticsQuery,
    ProposeMeeting,
    RescheduleMeeting,
    RespondToInvitation,
    RosterQuery,
    UpsertProfessional,
    UpsertRoom,
)
from shared.contracts.plans import FollowupMeetingRequested
from shared.contracts.referral import (
    AssessmentStarted,
    ConsentGiven,
    ConsentWithdrawn,
    ReferralLinked,
    ReferralReceived,
    ReferralUnlinked,
)
from shared.service import Service

from . import handlers


def register(svc: Service) -> None:
    svc.on_event(ReferralReceived)(handlers.open_convening)
    svc.on_event(ConsentGiven)(handlers.on_consent_given)
    svc.on_event(ConsentWithdrawn)(handlers.on_consent_withdrawn)
    svc.on_event(ReferralLinked)(handlers.on_referral_linked)
    svc.on_event(ReferralUnlinked)(handlers.on_referral_unlinked)
    svc.on_event(AssessmentStarted)(handlers.on_assessment_started)
    svc.on_event(FollowupMeetingRequested)(handlers.on_followup_meeting_requested)
    svc.request("cmd.meetings.upsert_professional.v1", UpsertProfessional)(handlers.upsert_professional)
    svc.request("cmd.meetings.upsert_room.v1", UpsertRoom)(handlers.upsert_room)
    svc.request("query.meetings.roster.v1", RosterQuery)(handlers.roster_query)
    svc.request("cmd.meetings.propose.v1", ProposeMeeting)(handlers.propose)
    svc.request("cmd.meetings.accept_proposal.v1", AcceptProposal)(handlers.accept_proposal)
    svc.request("cmd.meetings.convene.v1", ConveneMeeting)(handlers.convene_meeting)
    svc.request("cmd.meetings.respond.v1", RespondToInvitation)(handlers.respond)
    svc.request("cmd.meetings.reschedule.v1", RescheduleMeeting)(handlers.reschedule)
    svc.request("cmd.meetings.cancel.v1", CancelMeeting)(handlers.cancel)
    svc.request("cmd.meetings.record_held.v1", RecordMeetingHeld)(handlers.record_held)
    svc.request("query.meetings.case.v1", MeetingCaseQuery)(handlers.case_meetings)
    svc.request("query.meetings.access_log.v1", MeetingsAccessLogQuery)(handlers.access_log)
    svc.request("query.meetings.statistics.v1", MeetingStatisticsQuery)(handlers.statistics)
