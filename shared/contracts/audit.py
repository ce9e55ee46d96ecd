"""The access-log contract every service answers ("who has seen my data", Client Data Act 703/2023
s. 11). Referral finds a person's cases from the henkilötunnus (``query.referral.access_log.v1``);
meetings, plans and notifications know cases only, so they answer for case ids. Each reply's
``data`` is an :class:`AccessLogAnswer`."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from .base import Contract
from .common import Id, ShortText


class CaseAccessLogQuery(Contract):
    """Who has read or been given the data of these cases, when, what and why. This read is audited too."""

    case_ids: list[UUID] = Field(
        min_length=1, max_length=50, description="The person's cases (from query.referral.access_log.v1)."
    )
    requested_by: Id = Field(description="Staff id of the reader (written to the audit log).")
    purpose: ShortText = Field(default="access log request", description="Why the log is read (e.g. the person's own request).")


class AccessLogEntry(Contract):
    """One audit record. No personal data: ids and codes only."""

    at: datetime = Field(description="When (UTC).")
    service: str = Field(description="The service that holds the record: referral, meetings, plans or notifications.")
    actor: str = Field(description="Who: the staff id of the reader, or the recipient id of a disclosure.")
    case_id: UUID | None = Field(description="Whose data: the family's case (empty when nothing was found).")
    action: str = Field(description="What, e.g. read_case, read_plan, print_plan, share_plan, send_notification.")
    purpose: str = Field(description="Why (the reader's stated purpose, or the basis of a disclosure).")
    result: str = Field(description="found, empty, not_found, refused, disclosed or withheld.")
    granted: bool = Field(description="Access was granted (found, empty, disclosed); otherwise refused.")
    scope: str | None = Field(default=None, description="What was asked for, in ids (case:<id>, plan:<id>:v<n>, team:<id>).")


class AccessLogAnswer(Contract):
    """``data`` of an access-log reply."""

    cases: list[UUID] = Field(description="The cases the answer covers.")
    entries: list[AccessLogEntry] = Field(description="Oldest first.")


CaseAccessLogQuery.reply_data = AccessLogAnswer
