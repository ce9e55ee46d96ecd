"""Build the referral service at start-up (not at import)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from shared.clock import Clock
from shared.service import Service
from shared.settings import Settings

from . import entrypoints
from .adapters import ReferralUnitOfWork, metadata
from .config import ReferralConfig


def uow_factory(config: ReferralConfig) -> Callable[..., ReferralUnitOfWork]:
    """The service's units of work, ``factory(db, clock=None)``: the configuration and its router
    read once, here (a broken routing file stops the start, not a worker), not by each transaction."""
    return partial(ReferralUnitOfWork, config=config, router=config.router())


def bootstrap(settings: Settings | None = None, clock: Clock | None = None, **overrides: Any) -> Service:
    """The one bootstrap signature of every service. ``overrides`` (tests, tools): ``verifier``
    (the token verifier; default from settings), ``config`` (ReferralConfig)."""
    config: ReferralConfig = overrides.get("config") or ReferralConfig()
    svc = Service("referral", settings or Settings(), metadata, uow_factory(config), clock, verifier=overrides.get("verifier"))  # type: ignore[arg-type]
    # This service opens the cases: it keeps case ids whose keys are made ahead (shared/key_reserve.py).
    svc.case_key_reserve = 32
    entrypoints.register(svc)
    return svc
