"""Thin entrypoints of the meetings service: subjects to use cases."""

from __future__ import annotations

import asyncio
import logging

from shared.contracts import ConveneMeeting, MeetingCaseQuery, RecordMeetingHeld
from shared.contracts.meetings import (
    AcceptProposal,
    AcceptProposalV2,
    AdoptionStageRecorded,
    CancelMeeting,
    CancelMeetingV2,
    ConveneMeetingV2,
    FeedbackRecorded,
    JointWorkStatisticsQuery,
    MeetingCancelled,
    MeetingCaseQueryV2,
    MeetingConvened,
    MeetingHeld,
    MeetingRescheduled,
    MeetingsAccessLogQuery,
    MeetingsAccessLogQueryV2,
    MeetingStatisticsQuery,
    MeetingStatisticsQueryV2,
    ProposeMeeting,
    ProposeMeetingV2,
    RecordAdoptionStage,
    RecordFeedback,
    RecordMeetingHeldV2,
    RescheduleMeeting,
    RescheduleMeetingV2,
    RespondToInvitation,
    RespondToInvitationV2,
    RosterProfessionalChanged,
    RosterQuery,
    RosterQueryV2,
    UpsertProfessional,
    UpsertProfessionalV2,
    UpsertRoom,
    UpsertRoomV2,
)
from shared.contracts.notifications import InvitationAnswered
from shared.contracts.plans import (
    FollowupMeetingRequested,
    FollowupOverdue,
    FollowupRecorded,
    ServiceStartOverdue,
    ServiceStatusRecorded,
)
from shared.contracts.referral import (
    AssessmentStarted,
    CaseTransferred,
    ConsentGiven,
    ConsentWithdrawn,
    ReferralLinked,
    ReferralReceived,
    ReferralUnlinked,
)
from shared.service import Service

from . import handlers

log = logging.getLogger("koolle.meetings")
INDEX_INTERVAL_SECONDS = 3600


def register(svc: Service) -> None:
    svc.on_event(ReferralReceived)(handlers.open_convening)
    svc.on_event(ConsentGiven)(handlers.on_consent_given)
    svc.on_event(ConsentWithdrawn)(handlers.on_consent_withdrawn)
    svc.on_event(ReferralLinked)(handlers.on_referral_linked)
    svc.on_event(ReferralUnlinked)(handlers.on_referral_unlinked)
    svc.on_event(AssessmentStarted)(handlers.on_assessment_started)
    svc.on_event(FollowupMeetingRequested)(handlers.on_followup_meeting_requested)
    svc.on_event(InvitationAnswered)(handlers.on_invitation_answered)
    svc.request("cmd.meetings.upsert_professional.v2", UpsertProfessionalV2)(handlers.upsert_professional)
    svc.retired("cmd.meetings.upsert_professional.v1", UpsertProfessional)
    svc.request("cmd.meetings.upsert_room.v2", UpsertRoomV2)(handlers.upsert_room)
    svc.retired("cmd.meetings.upsert_room.v1", UpsertRoom)
    svc.request("query.meetings.roster.v2", RosterQueryV2)(handlers.roster_query)
    svc.retired("query.meetings.roster.v1", RosterQuery)
    svc.request("cmd.meetings.propose.v2", ProposeMeetingV2)(handlers.propose)
    svc.retired("cmd.meetings.propose.v1", ProposeMeeting)
    svc.request("cmd.meetings.accept_proposal.v2", AcceptProposalV2)(handlers.accept_proposal)
    svc.retired("cmd.meetings.accept_proposal.v1", AcceptProposal)
    svc.request("cmd.meetings.convene.v2", ConveneMeetingV2)(handlers.convene_meeting)
    svc.retired("cmd.meetings.convene.v1", ConveneMeeting)
    svc.request("cmd.meetings.respond.v2", RespondToInvitationV2)(handlers.respond)
    svc.retired("cmd.meetings.respond.v1", RespondToInvitation)
    svc.request("cmd.meetings.reschedule.v2", RescheduleMeetingV2)(handlers.reschedule)
    svc.retired("cmd.meetings.reschedule.v1", RescheduleMeeting)
    svc.request("cmd.meetings.cancel.v2", CancelMeetingV2)(handlers.cancel)
    svc.retired("cmd.meetings.cancel.v1", CancelMeeting)
    svc.request("cmd.meetings.record_held.v2", RecordMeetingHeldV2)(handlers.record_held)
    svc.retired("cmd.meetings.record_held.v1", RecordMeetingHeld)
    svc.request("query.meetings.case.v2", MeetingCaseQueryV2)(handlers.case_meetings)
    svc.retired("query.meetings.case.v1", MeetingCaseQuery)
    svc.request("query.meetings.access_log.v2", MeetingsAccessLogQueryV2)(handlers.access_log)
    svc.retired("query.meetings.access_log.v1", MeetingsAccessLogQuery)
    svc.request("query.meetings.statistics.v2", MeetingStatisticsQueryV2)(handlers.statistics)
    svc.retired("query.meetings.statistics.v1", MeetingStatisticsQuery)
    svc.request("cmd.meetings.record_feedback.v1", RecordFeedback)(handlers.record_feedback)
    svc.request("cmd.meetings.record_adoption_stage.v1", RecordAdoptionStage)(handlers.record_adoption_stage)
    svc.request("query.meetings.joint_work_statistics.v1", JointWorkStatisticsQuery)(handlers.joint_work_statistics)
    # The joint-work statistics read model, kept from the events it reads (rebuilt: infra.ops). Last,
    # so that it chains after the use cases already consuming an event.
    for model in (
        ReferralReceived,
        CaseTransferred,
        MeetingConvened,
        MeetingRescheduled,
        MeetingHeld,
        FeedbackRecorded,
        AdoptionStageRecorded,
        FollowupRecorded,
        FollowupOverdue,
        ServiceStatusRecorded,
        ServiceStartOverdue,
    ):
        svc.project(model)(handlers.on_joint_statistics_event)
    for stats_model in (
        ReferralReceived,
        AssessmentStarted,
        MeetingConvened,
        MeetingRescheduled,
        MeetingCancelled,
        MeetingHeld,
        RosterProfessionalChanged,
    ):
        svc.project(stats_model)(handlers.on_meeting_statistics_event)

    @svc.background
    async def index_statistics() -> None:
        """After an upgrade, the statistics facts written before their index columns get them, a
        page at a time (so a start does not wait for a whole history); then, hourly, any a replica
        of the previous version wrote meanwhile."""
        while True:
            try:
                indexed, done = 0, 1
                while done:
                    async with svc.uow() as uow:
                        done = await handlers.index_statistics_facts(uow)  # type: ignore[arg-type]
                    indexed += done
                if indexed:
                    log.info("statistics facts indexed (%d records)", indexed)
            except Exception as exc:  # noqa: BLE001 - the next round goes on from where this one stopped
                log.warning("statistics facts indexing failed (%s)", type(exc).__name__)
            await asyncio.sleep(INDEX_INTERVAL_SECONDS)
