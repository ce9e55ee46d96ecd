"""Build the notifications service at start-up (not at import)."""

from __future__ import annotations

from typing import Any

from shared.clock import Clock
from shared.service import Service
from shared.settings import Settings

from . import entrypoints
from .adapters import NotificationsUnitOfWork, metadata


def bootstrap(settings: Settings | None = None, clock: Clock | None = None, **overrides: Any) -> Service:
    """The one bootstrap signature of every service. ``overrides`` (tests, tools): ``verifier``
    (the token verifier; default from settings), ``config`` (NotificationsConfig), ``channels`` (name -> Channel)."""
    svc = Service(
        "notifications", settings or Settings(), metadata, NotificationsUnitOfWork, clock, verifier=overrides.get("verifier")
    )
    svc.delivery = entrypoints.register(svc, overrides.get("config"), overrides.get("channels"))  # type: ignore[attr-defined]
    _register_metrics(svc)
    return svc


def _register_metrics(svc: Service) -> None:
    """``koolle_notifications{channel, status}``: notifications by channel and state, counted at scrape."""
    from sqlalchemy import func, select

    from .adapters import notifications

    gauge = svc.metrics.gauge("koolle_notifications", "Notifications by channel and state", ["channel", "status"])

    @svc.metrics.on_scrape
    async def count_notifications() -> None:
        async with svc.db.read_sessionmaker() as session:
            rows = (
                await session.execute(
                    select(notifications.c.channel, notifications.c.status, func.count()).group_by(
                        notifications.c.channel, notifications.c.status
                    )
                )
            ).all()
        gauge.clear()
        for channel, status, n in rows:
            gauge.labels(channel or "none", status).set(n)
