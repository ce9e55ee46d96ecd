"""Operator queries: answered by a service for the ``ops`` NATS identity only (infra/auth.py), on
``ops.<service>.…`` subjects. Not part of the client catalogue: no front door or staff app may
send them (their identities cannot publish ``ops.>``)."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from .base import Contract
from .common import Id, ShortText

REJECTED_SUBJECT = "ops.referral.rejected.v1"


class RejectedSubmissionsQuery(Contract):
    """``ops.referral.rejected.v1``: intake submissions the referral service rejected (hylätyt
    ilmoitukset), newest first, with their reasons (field and code; no payload). With
    ``rejection_id``: that one rejection and its raw bytes as received, a read of possibly
    personal data that the referral service records in its access audit log first."""

    requested_by: Id = Field(description="Who reads (e.g. ops:<login>); written to the audit log for a raw read.")
    purpose: ShortText = Field(default="operations review", description="Why (written to the audit log for a raw read).")
    limit: int = Field(default=50, ge=1, le=1000, description="At most this many rejections, newest first.")
    rejection_id: UUID | None = Field(default=None, description="One rejection, with its raw bytes (audited).")
