"""Run the four services in-process against a real nats-server (integration tests)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import nats
from nats.js.api import DeliverPolicy

from services.meetings.bootstrap import bootstrap as meetings
from services.notifications.bootstrap import bootstrap as notifications
from services.plans.bootstrap import bootstrap as plans
from services.referral.bootstrap import bootstrap as referral
from shared.clock import Clock
from shared.service import Service
from shared.settings import Settings

BUILDERS = {"referral": referral, "meetings": meetings, "plans": plans, "notifications": notifications}


@asynccontextmanager
async def running(settings: Settings, *names: str, clock: Clock | None = None) -> AsyncIterator[dict[str, Service]]:
    services = {n: BUILDERS[n](settings, clock) for n in (names or BUILDERS)}
    started = []
    try:
        for s in services.values():
            await s.start()
            started.append(s)
        yield services
    finally:
        for s in reversed(started):
            await s.stop()


class EventLog:
    """Everything stored in the event streams, read with ordered JetStream consumers (this also
    sees events that JetStream itself produced, such as fired message schedules)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def attach(
        self,
        nc: nats.NATS,
        subjects: tuple[str, ...] = ("referral.>", "meeting.>", "plan.>", "followup.>", "notification.>", "deadletter.>"),
    ) -> EventLog:
        js = nc.jetstream()

        async def cb(msg: Any) -> None:
            try:
                body = json.loads(msg.data)
            except ValueError:
                body = {"_raw": msg.data.decode("utf-8", "replace")}
            body["_headers"] = dict(msg.headers or {})
            self.events.append((msg.subject, body))

        for s in subjects:
            await js.subscribe(s, cb=cb, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
        return self

    def of(self, subject_prefix: str) -> list[dict[str, Any]]:
        return [e for s, e in self.events if s.startswith(subject_prefix)]
