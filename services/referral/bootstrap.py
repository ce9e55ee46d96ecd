"""Build the referral service at start-up (not at import)."""

from __future__ import annotations

from functools import partial

from shared.clock import Clock
from shared.service import Service
from shared.settings import Settings

from . import entrypoints
from .adapters import ReferralUnitOfWork, metadata
from .config import ReferralConfig


def bootstrap(settings: Settings | None = None, clock: Clock | None = None, config: ReferralConfig | None = None) -> Service:
    config = config or ReferralConfig()
    router = config.router()  # read once at start-up; a broken routing file stops the start, not a worker
    uow_factory = partial(ReferralUnitOfWork, config=config, router=router)
    svc = Service("referral", settings or Settings(), metadata, uow_factory, clock)  # type: ignore[arg-type]
    entrypoints.register(svc)
    return svc
