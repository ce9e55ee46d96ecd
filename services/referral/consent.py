"""The consent ledger (suostumukset): what the family agreed to, for which purpose, and its withdrawal.

Plain Python: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from shared.calendar import helsinki_date
from shared.contracts.base import time_ordered_id
from shared.errors import DomainError

RECIPIENT_REQUIRED = {"share_plan"}


@dataclass
class Consent:
    consent_id: UUID
    case_id: UUID
    purpose: str
    recipient: str | None
    given_by: str
    recorded_by: str
    given_at: datetime
    valid_until: date | None = None
    withdrawn_at: datetime | None = None
    withdrawn_by: str | None = None

    def active(self, today: date) -> bool:
        return self.withdrawn_at is None and (self.valid_until is None or today <= self.valid_until)


def give_consent(
    case_id: UUID,
    purpose: str,
    recipient: str | None,
    given_by: str,
    recorded_by: str,
    now: datetime,
    valid_until: date | None = None,
) -> Consent:
    if purpose in RECIPIENT_REQUIRED and not recipient:
        raise DomainError("recipient_required", "recipient")
    if valid_until is not None and valid_until < helsinki_date(now):
        raise DomainError("valid_until_in_past", "valid_until")
    return Consent(time_ordered_id(), case_id, purpose, recipient, given_by, recorded_by, now, valid_until)


def withdraw(consent: Consent, by: str, now: datetime) -> None:
    if consent.withdrawn_at is not None:
        raise DomainError("already_withdrawn", "consent_id")
    consent.withdrawn_at = now
    consent.withdrawn_by = by
