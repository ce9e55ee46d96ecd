"""Build the meetings service at start-up (not at import).

Configuration (environment): ``KOOLLE_MEETINGS_ROSTER`` path of the roster file (default: roster.json
beside this module), ``KOOLLE_MEETINGS_REMINDER_LEAD_SECONDS`` how long before a meeting its reminder
fires (default 86400 = 24 h).
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from shared.clock import Clock
from shared.service import Service
from shared.settings import Settings

from . import entrypoints
from .adapters import MeetingsUnitOfWork, metadata
from .handlers import ROSTER_FILE, load_roster

log = logging.getLogger("koolle.meetings")


class MeetingsService(Service):
    roster_path: Path = ROSTER_FILE

    async def start(self) -> None:
        # The roster is in the database before the first request is answered.
        await self.db.create_all()
        async with self.uow() as uow:
            pros, rooms = await load_roster(uow, self.roster_path)  # type: ignore[arg-type]
        log.info("roster loaded (%d professionals, %d rooms changed)", pros, rooms)
        await super().start()


def bootstrap(settings: Settings | None = None, clock: Clock | None = None, **overrides: Any) -> Service:
    """The one bootstrap signature of every service. ``overrides`` (tests, tools): ``verifier``
    (the token verifier; default from settings)."""
    lead = timedelta(seconds=float(os.environ.get("KOOLLE_MEETINGS_REMINDER_LEAD_SECONDS", "86400")))
    uow_class = type("ConfiguredMeetingsUnitOfWork", (MeetingsUnitOfWork,), {"reminder_lead": lead})
    svc = MeetingsService("meetings", settings or Settings(), metadata, uow_class, clock, verifier=overrides.get("verifier"))
    svc.roster_path = Path(os.environ.get("KOOLLE_MEETINGS_ROSTER", str(ROSTER_FILE)))
    entrypoints.register(svc)
    return svc
