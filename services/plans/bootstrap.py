"""Build the plans service at start-up (not at import)."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from shared.clock import Clock
from shared.service import Service
from shared.settings import Settings

from . import entrypoints
from .adapters import PlansUnitOfWork, metadata
from .domain import FollowupPolicy


def policy_from_env() -> FollowupPolicy:
    """``KOOLLE_PLANS_REMINDER_LEAD_SECONDS`` (default one day) and ``KOOLLE_PLANS_OVERDUE_GRACE_SECONDS``
    (default two days)."""
    default = FollowupPolicy()
    lead = os.environ.get("KOOLLE_PLANS_REMINDER_LEAD_SECONDS")
    grace = os.environ.get("KOOLLE_PLANS_OVERDUE_GRACE_SECONDS")
    return FollowupPolicy(
        reminder_lead=timedelta(seconds=float(lead)) if lead else default.reminder_lead,
        overdue_grace=timedelta(seconds=float(grace)) if grace else default.overdue_grace,
    )


def bootstrap(settings: Settings | None = None, clock: Clock | None = None, **overrides: Any) -> Service:
    """The one bootstrap signature of every service. ``overrides`` (tests, tools): ``verifier``
    (the token verifier; default from settings), ``policy`` (FollowupPolicy)."""
    uow_class = type("PlansUoW", (PlansUnitOfWork,), {"policy": overrides.get("policy") or policy_from_env()})
    svc = Service("plans", settings or Settings(), metadata, uow_class, clock, verifier=overrides.get("verifier"))
    entrypoints.register(svc)
    return svc
