"""Thin entrypoints: NATS subjects in, commands to the handlers out."""

from __future__ import annotations

import asyncio
import logging

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

log = logging.getLogger("koolle.referral")

RETENTION_INTERVAL_SECONDS = 3600.0


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
            parse=lambda m: handlers.ReceiveSubmission(
                data=m.data, stream_seq=m.metadata.sequence.stream, msg_id=(m.headers or {}).get("Nats-Msg-Id")
            ),
            key=lambda cmd, m: cmd.inbox_key,  # the submission itself, not its place in the stream
            linger=0.0,  # the front door's latency: handled as soon as it arrives
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
