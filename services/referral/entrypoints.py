"""Thin entrypoints: NATS subjects in, commands to the handlers out."""

from __future__ import annotations

from shared.contracts.ops import REJECTED_SUBJECT, RejectedSubmissionsQuery
from shared.contracts.referral import (
    INTAKE_SUBJECT,
    AccessLogQuery,
    CaseQuery,
    CompleteAssessment,
    DeadlinesDueQuery,
    RecordConsent,
    StartAssessment,
    TeamCasesQuery,
    UnlinkReferral,
    WithdrawConsent,
)
from shared.messaging.consumer import Subscription
from shared.service import Service

from . import handlers


def register(svc: Service) -> None:
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
            parse=lambda m: handlers.ReceiveSubmission(data=m.data, stream_seq=m.metadata.sequence.stream),
            key=lambda cmd, m: f"intake:{m.metadata.sequence.stream}",
            linger=0.0,  # the front door's latency: handled as soon as it arrives
        )
    )

    svc.request("query.referral.case.v1", CaseQuery)(handlers.get_case)
    svc.request("query.referral.team_cases.v1", TeamCasesQuery)(handlers.team_cases)
    svc.request("query.referral.deadlines_due.v1", DeadlinesDueQuery)(handlers.deadlines_due)
    svc.request("query.referral.access_log.v1", AccessLogQuery)(handlers.access_log)
    # Operators only (the ops identity; infra/auth.py lets no client identity publish ops.>).
    svc.request(REJECTED_SUBJECT, RejectedSubmissionsQuery)(handlers.rejected_submissions)
    svc.request("cmd.referral.unlink.v1", UnlinkReferral)(handlers.unlink_referral)
    svc.request("cmd.referral.record_consent.v1", RecordConsent)(handlers.record_consent)
    svc.request("cmd.referral.withdraw_consent.v1", WithdrawConsent)(handlers.withdraw_consent)
    svc.request("cmd.referral.start_assessment.v1", StartAssessment)(handlers.start_assessment)
    svc.request("cmd.referral.complete_assessment.v1", CompleteAssessment)(handlers.complete_assessment)
