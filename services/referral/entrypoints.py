"""Thin entrypoints: NATS subjects in, commands to the handlers out."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import IntegrityError

from shared.contracts.ops import ERASE_SUBJECT, REJECTED_SUBJECT, EraseFamilyCommand, RejectedSubmissionsQuery
from shared.contracts.referral import (
    INTAKE_SUBJECT,
    AccessLogQuery,
    AccessLogQueryV2,
    AssessmentCompleted,
    AssessmentStarted,
    AssessUrgency,
    CaseQuery,
    CaseQueryV2,
    CaseTransferred,
    CompleteAssessment,
    CompleteAssessmentV2,
    DeadlinesDueQuery,
    DeadlinesDueQueryV2,
    DecisionRecorded,
    RecordConsent,
    RecordConsentV2,
    RecordDecision,
    ReferralChannelStatisticsQuery,
    ReferralReceived,
    RestrictGuardianAccess,
    StartAssessment,
    StartAssessmentV2,
    StatutoryStatisticsQuery,
    TeamCasesQuery,
    TeamCasesQueryV2,
    TransferCase,
    UnlinkReferral,
    UnlinkReferralV2,
    WithdrawConsent,
    WithdrawConsentV2,
)
from shared.messaging.subscription import Subscription
from shared.service import Service

from . import handlers

log = logging.getLogger("koolle.referral")

RETENTION_INTERVAL_SECONDS = 3600.0


def register(svc: Service) -> None:
    async def recompute_open_cases() -> None:
        try:
            async with svc.uow() as uow:
                await handlers.recompute_open_cases(uow)  # type: ignore[arg-type]
                await uow.commit()
        except IntegrityError:  # another replica applied it at the same moment; its commit stands
            log.info("deadline migration applied by another replica")

    svc.migrations.append(recompute_open_cases)

    async def on_submission(cmd: handlers.ReceiveSubmission, uow: handlers.ReferralUnitOfWork) -> None:
        await handlers.receive_submission(cmd, uow)

    # Intake is not an event: the payload may be anything, so parsing never fails here; the handler
    # validates and turns a bad submission into a stored rejection plus referral.rejected.
    svc.subscriptions.append(
        Subscription(
            service=svc.name,
            subject=INTAKE_SUBJECT,
            stream="INTAKE",
            handler=on_submission,  # type: ignore[arg-type]
            parse=lambda m: handlers.ReceiveSubmission(
                data=m.data, stream_seq=m.metadata.sequence.stream, msg_id=(m.headers or {}).get("Nats-Msg-Id")
            ),
            key=lambda cmd, m: cmd.inbox_key,  # the submission itself, not its place in the stream
            linger=0.0,  # the front door's latency: handled as soon as it arrives
            takes_turns=False,
            preload=handlers.preload_submissions,  # type: ignore[arg-type]
        )
    )

    @svc.background
    async def retention() -> None:
        """Hourly: forget raw rejections at the end of their retention."""
        while True:
            try:
                async with svc.uow() as uow:
                    deleted = await handlers.forget_old_rejections(uow)  # type: ignore[arg-type]
                if deleted:
                    log.info("forgot %d rejected submissions past their retention", deleted)
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                log.warning("rejection retention failed (%s)", type(exc).__name__)
            await asyncio.sleep(RETENTION_INTERVAL_SECONDS)

    svc.request("query.referral.case.v2", CaseQueryV2)(handlers.get_case)
    svc.retired("query.referral.case.v1", CaseQuery)
    svc.request("query.referral.team_cases.v2", TeamCasesQueryV2)(handlers.team_cases)
    svc.retired("query.referral.team_cases.v1", TeamCasesQuery)
    svc.request("query.referral.deadlines_due.v2", DeadlinesDueQueryV2)(handlers.deadlines_due)
    svc.retired("query.referral.deadlines_due.v1", DeadlinesDueQuery)
    svc.request("query.referral.access_log.v2", AccessLogQueryV2)(handlers.access_log)
    svc.retired("query.referral.access_log.v1", AccessLogQuery)
    svc.request("cmd.referral.unlink.v2", UnlinkReferralV2)(handlers.unlink_referral)
    svc.retired("cmd.referral.unlink.v1", UnlinkReferral)
    svc.request("cmd.referral.record_consent.v2", RecordConsentV2)(handlers.record_consent)
    svc.retired("cmd.referral.record_consent.v1", RecordConsent)
    svc.request("cmd.referral.withdraw_consent.v2", WithdrawConsentV2)(handlers.withdraw_consent)
    svc.retired("cmd.referral.withdraw_consent.v1", WithdrawConsent)
    # New in v1 and carrying no self-naming field: the social worker is the verified caller.
    svc.request("cmd.referral.record_decision.v1", RecordDecision)(handlers.record_decision)
    svc.request("cmd.referral.assess_urgency.v1", AssessUrgency)(handlers.assess_urgency)
    # The statutory and channel statistics read models, kept from the service's own events (rebuilt: infra.ops).
    for model in (ReferralReceived, CaseTransferred, DecisionRecorded, AssessmentStarted, AssessmentCompleted):
        svc.project(model)(handlers.on_statistics_event)
    svc.request("query.referral.statistics.v1", StatutoryStatisticsQuery)(handlers.statutory_statistics)
    svc.request("query.referral.channel_statistics.v1", ReferralChannelStatisticsQuery)(handlers.channel_statistics_query)
    svc.request("cmd.referral.transfer_case.v1", TransferCase)(handlers.transfer_case)
    svc.retired("cmd.referral.start_assessment.v1", StartAssessment)
    svc.request("cmd.referral.start_assessment.v2", StartAssessmentV2)(handlers.start_assessment)
    svc.request("cmd.referral.restrict_guardian_access.v1", RestrictGuardianAccess)(handlers.restrict_guardian_access)
    svc.retired("cmd.referral.complete_assessment.v1", CompleteAssessment)
    svc.request("cmd.referral.complete_assessment.v2", CompleteAssessmentV2)(handlers.complete_assessment)
    # Operators only (the ops identity; infra/auth.py lets no client identity publish ops.>).
    svc.request(REJECTED_SUBJECT, RejectedSubmissionsQuery)(handlers.rejected_submissions)
    svc.request(ERASE_SUBJECT, EraseFamilyCommand)(handlers.erase_family)
