"""Build the plans service at start-up (not at import)."""

from __future__ import annotations

from shared.clock import Clock
from shared.service import Service
from shared.settings import Settings

from . import entrypoints
from .adapters import PlansUnitOfWork, metadata


def bootstrap(settings: Settings | None = None, clock: Clock | None = None) -> Service:
    svc = Service("plans", settings or Settings(), metadata, PlansUnitOfWork, clock)
    entrypoints.register(svc)
    return svc
