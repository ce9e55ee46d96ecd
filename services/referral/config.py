"""Referral service configuration (environment variables with prefix ``KOOLLE_REFERRAL_``)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .domain import Router

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
    routing_file: Path = Field(default=DEFAULT_ROUTING, description="Routing rules (JSON): municipality and concern -> team.")

    def router(self) -> Router:
        return Router.from_data(json.loads(self.routing_file.read_text(encoding="utf-8")))
