"""Build the meetings service at start-up (not at import)."""

from __future__ import annotations

from shared.clock import Clock
from shared.service import Service
from shared.settings import Settings

from . import entrypoints
from .adapters import MeetingsUnitOfWork, metadata


def bootstrap(settings: Settings | None = None, clock: Clock | None = None) -> Service:
    svc = Service("meetings", settings or Settings(), metadata, MeetingsUnitOfWork, clock)
    entrypoints.register(svc)
    return svc
