"""Run the four services in-process against a real nats-server (integration tests)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import nats
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nats.js.api import DeliverPolicy
from pydantic import TypeAdapter

from services.meetings.bootstrap import bootstrap as meetings
from services.notifications.bootstrap import bootstrap as notifications
from services.plans.bootstrap import bootstrap as plans
from services.referral.bootstrap import bootstrap as referral
from shared.clock import Clock
from shared.contracts import EVENTS
from shared.contracts.personal import SEALED_PREFIX
from shared.contracts.routes import without_route
from shared.sealing import ERASED, KEYS_BUCKET, TOMBSTONE, open_value
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


KEY_READ_PATIENCE = 30.0


class Fed:
    """One subscription of a running service and the durable consumer that feeds it, with its counts."""

    def __init__(self, consumer: Any, sub: Any) -> None:
        self.consumer, self.sub = consumer, sub

    @property
    def handled(self) -> int:
        return int(self.consumer.handled_by[self.sub.durable])

    @property
    def duplicates(self) -> int:
        return int(self.consumer.duplicates_by[self.sub.durable])

    def set_handler(self, handler: Any) -> None:
        """Swap the subscription's handler in place (a fault, then the fix deployed)."""
        object.__setattr__(self.sub, "handler", handler)


def fed(svc: Service, *, subject: str | None = None, named: str | None = None) -> Fed:
    """The subscription of ``svc`` on ``subject``, or whose name contains ``named``."""
    for c in svc.consumers:
        for s in c.subs:
            if s.subject == subject or (named is not None and named in s.durable):
                return Fed(c, s)
    raise LookupError(subject or named)


async def opened(js: Any, subject: str, body: dict[str, Any], readable: list[bool] | None = None) -> dict[str, Any]:
    """The event with its sealed personal fields opened with the case's key from the bucket (as a
    service's runtime opens them), so that tests read what the consumers read. ``readable``: whether
    the connection may read keys at all (probed once, :func:`keys_readable`): left sealed if not.
    Without ``readable`` (one event, no probe) a read that times out means no permission. With it,
    a read that fails while the server restarts or a cluster elects a leader is retried (fault
    tests), for up to ``KEY_READ_PATIENCE`` seconds."""
    sealed = [k for k, v in body.items() if isinstance(v, str) and v.startswith(SEALED_PREFIX)]
    model = next((e.model for e in EVENTS if e.subject == without_route(subject)), None)
    if not sealed or model is None or (readable and not readable[0]):
        return body
    deadline = asyncio.get_running_loop().time() + (KEY_READ_PATIENCE if readable else 0)
    while True:
        try:
            kv = await js.key_value(KEYS_BUCKET)
            value = (await asyncio.wait_for(kv.get(body["case_id"]), 1.0)).value
            break
        except Exception:  # noqa: BLE001 - no permission (no answer), or never there: left sealed
            if asyncio.get_running_loop().time() >= deadline:
                return body
            await asyncio.sleep(0.2)
    cipher = AESGCM(value) if value and value != TOMBSTONE else None
    for k in sealed:
        v = open_value(cipher, body["case_id"], model, k, body[k])
        if v is not ERASED:
            body[k] = TypeAdapter(Any).dump_python(v, mode="json")
    return body


async def keys_readable(js: Any) -> bool:
    """Whether this connection may read the case keys (a service's or the test's own; not ops)."""
    try:
        kv = await js.key_value(KEYS_BUCKET)
        await asyncio.wait_for(kv.get("probe"), 1.0)
    except TimeoutError:
        return False
    except Exception:  # noqa: BLE001 - no such key (readable), or no bucket yet (nothing sealed)
        return True
    return True


class EventLog:
    """Everything stored in the event streams, read with ordered JetStream consumers (this also
    sees events that JetStream itself produced, such as fired message schedules)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def attach(
        self,
        nc: nats.NATS,
        subjects: tuple[str, ...] = ("referral.>", "meeting.>", "plan.>", "followup.>", "notification.>", "deadletter.>"),
        keys: bool | None = None,
    ) -> EventLog:
        """``keys``: whether the connection may read the case keys, when the caller knows. Unknown
        (None), it is probed once; a probe can time out while a cluster elects the key bucket's
        leader after a node was killed, so readers attached then say ``keys=True``."""
        js = nc.jetstream()
        # Sealed fields are opened with the keys this connection may read, or those of the connection
        # the fixture attached as ``koolle_keys`` (an ops observer: ops may not read keys).
        kjs = getattr(nc, "koolle_keys", nc).jetstream()
        readable = [keys if keys is not None else await keys_readable(kjs)]

        async def cb(msg: Any) -> None:
            try:
                body = json.loads(msg.data)
            except ValueError:
                body = {"_raw": msg.data.decode("utf-8", "replace")}
            else:
                body = await opened(kjs, msg.subject, body, readable)
            body["_headers"] = dict(msg.headers or {})
            body["_data"] = msg.data.decode("utf-8", "replace")  # as stored: personal fields sealed
            self.events.append((msg.subject, body))

        for s in subjects:
            await js.subscribe(s, cb=cb, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
        return self

    def of(self, subject_prefix: str) -> list[dict[str, Any]]:
        return [e for s, e in self.events if s.startswith(subject_prefix)]
