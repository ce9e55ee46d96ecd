"""Build the notifications service at start-up (not at import)."""

from __future__ import annotations

from shared.clock import Clock
from shared.service import Service
from shared.settings import Settings

from . import entrypoints
from .adapters import NotificationsUnitOfWork, metadata
from .channels import Channel
from .config import NotificationsConfig


def bootstrap(
    settings: Settings | None = None,
    clock: Clock | None = None,
    config: NotificationsConfig | None = None,
    channels: dict[str, Channel] | None = None,
) -> Service:
    svc = Service("notifications", settings or Settings(), metadata, NotificationsUnitOfWork, clock)
    svc.delivery = entrypoints.register(svc, config, channels)  # type: ignore[attr-defined]
    return svc
