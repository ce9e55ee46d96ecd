"""Referral service configuration (environment variables with prefix ``KOOLLE_REFERRAL_``)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .routing import Router
from .screening import SubmittedAtLimits

DEFAULT_ROUTING = Path(__file__).with_name("routing.json")


class ReferralConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KOOLLE_REFERRAL_", extra="ignore")

    deadline_lead_working_days: int = Field(
        default=2, ge=0, le=20, description="Working days before a statutory deadline that referral.deadline_approaching fires."
    )
    urgency_assessment_minutes: int = Field(
        default=120,
        ge=1,
        le=7 * 24 * 60,
        description="Minutes from receipt within which a child-protection notification or an urgent referral is assessed "
        "for urgency (any hour of the week); past it referral.urgency_assessment_overdue pages the on-duty social worker.",
    )
    urgency_escalation_minutes: int = Field(
        default=30,
        ge=1,
        le=7 * 24 * 60,
        description="Minutes after the urgency assessment fell due before the team lead is paged too.",
    )
    submitted_at_max_ahead_seconds: int = Field(
        default=300, ge=0, le=3600, description="How far a submission's submitted_at may be ahead of this service's clock."
    )
    submitted_at_max_age_days: int = Field(
        default=30, ge=1, le=366, description="How old a submission's submitted_at may be (a front door offline that long)."
    )
    rejection_retention_days: float = Field(
        default=90,
        gt=0,
        description="How long a rejected submission's raw bytes and reasons are kept (the front door was told at once).",
    )
    routing_file: Path = Field(default=DEFAULT_ROUTING, description="Routing rules (JSON): municipality and concern -> team.")

    def submitted_at_limits(self) -> SubmittedAtLimits:
        return SubmittedAtLimits(
            max_ahead=timedelta(seconds=self.submitted_at_max_ahead_seconds),
            max_age=timedelta(days=self.submitted_at_max_age_days),
        )

    def router(self) -> Router:
        return Router.from_data(json.loads(self.routing_file.read_text(encoding="utf-8")))
