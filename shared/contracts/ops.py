"""Operator queries: answered by a service for the ``ops`` NATS identity only (infra/auth.py), on
``ops.<service>.…`` subjects. Not part of the client catalogue: no front door or staff app may
send them (their identities cannot publish ``ops.>``). The caller is verified like every request:
an access token with the ``ops`` role (``Authorization: Bearer``)."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import Field

from shared.policy import Access

from .base import Contract
from .common import Id, ShortText

REJECTED_SUBJECT = "ops.referral.rejected.v1"
ERASE_SUBJECT = "ops.referral.erase_family.v1"


class RejectedSubmissionsQuery(Contract):
    """``ops.referral.rejected.v1``: intake submissions the referral service rejected (hylätyt
    ilmoitukset), newest first, with their reasons (field and code; no payload). With
    ``rejection_id``: that one rejection and its raw bytes as received, a read of possibly
    personal data that the referral service records in its access audit log first."""

    access: ClassVar[Access] = Access(action="operate", case=None)

    purpose: ShortText = Field(
        description="Why: operations_review, the only purpose the policy allows an operator (another documented one is refused forbidden); written to the audit log for a raw read."
    )
    limit: int = Field(default=50, ge=1, le=1000, description="At most this many rejections, newest first.")
    rejection_id: UUID | None = Field(default=None, description="One rejection, with its raw bytes (audited).")


class RejectionReason(Contract):
    field: str | None
    code: str | None


class RejectionSummary(Contract):
    rejection_id: UUID
    submission_id: str
    received_at: datetime
    stream_seq: int | None
    reasons: list[RejectionReason]
    raw_base64: str | None = Field(default=None, description="Only when one rejection was asked for: its raw bytes.")


class RejectedSubmissions(Contract):
    """``data`` of ``ops.referral.rejected.v1``: a list (``total``, ``rejections``), or one ``rejection``."""

    total: int | None = None
    rejections: list[RejectionSummary] | None = None
    rejection: RejectionSummary | None = None


RejectedSubmissionsQuery.reply_data = RejectedSubmissions


class EraseFamilyCommand(Contract):
    """``ops.referral.erase_family.v1``: erase one family's case at the end of its retention
    (docs/operations.md §11). The referral service records the order in its audit log (ids only),
    destroys the case's data key and emits ``referral.case_erased.v1``, on which every service erases
    the family's data in its own database. Idempotent per ``command_id``; erasing an erased case
    again is harmless."""

    # The ops role only; it reads no personal data (so no read purpose): its own purpose is fixed.
    access: ClassVar[Access] = Access(action="operate", case=None, personal=False)

    command_id: UUID = Field(description="Idempotency key chosen by the operator's tool.")
    case_id: UUID = Field(description="The case to erase.")
    ground: Literal["retention_ended"] = Field(
        description="Why: the end of the case's statutory retention (the only ground; the audit log's purpose)."
    )
    reference: Id | None = Field(default=None, description="The retention decision or ticket it is based on (an id, no names).")


class FamilyErased(Contract):
    """``data`` of ``ops.referral.erase_family.v1``."""

    case_id: UUID
    key_destroyed: bool = Field(description="A data key was destroyed now (false: it was already gone).")
    event_id: UUID = Field(description="Id of the referral.case_erased.v1 event that tells the services.")


EraseFamilyCommand.reply_data = FamilyErased
