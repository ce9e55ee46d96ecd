"""Pull mechanics: how a consumer keeps JetStream pull requests standing and takes what arrives.

nats-py's pull subscription internals are read in shared/internals/natspy.py only.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError

from shared.internals.natspy import PullInbox


class StandingPull:
    """A standing pull request on a durable consumer, like the newer JetStream clients' consume().

    nats-py's ``fetch()`` sends a request per call, and at a trickle (one event at a time) a
    request, a "no messages" answer and a short expiring request per event cost more server and
    client CPU than the event itself (bench/). Here requests for ``batch`` messages are kept
    outstanding (the next batch is asked for as soon as one is taken, and again when requests
    expire), and messages are taken from the subscription's queue as the server delivers them.
    Acks, redelivery and the durable consumer are exactly as with ``fetch()``.
    """

    def __init__(self, psub: Any, batch: int, expires: float = 2.0) -> None:
        self.inbox = PullInbox(psub)  # nats-py's internals, in shared/internals/natspy.py
        self.nc = self.inbox.nc
        self.nms = self.inbox.next_subject  # $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>
        self.deliver = self.inbox.deliver
        self.batch = batch
        self.expires = expires
        self.credit = 0  # messages requested and not yet delivered (nor expired)
        self.requested_at = 0.0

    async def _request(self) -> None:
        body = json.dumps({"batch": self.batch, "expires": int(self.expires * 1e9)}).encode()
        await self.nc.publish(self.nms, body, reply=self.deliver)
        self.credit += self.batch
        self.requested_at = time.monotonic()

    def _status(self, msg: Msg) -> str | None:
        """A delivery's status code, None for a message."""
        return msg.headers.get("Status") if msg.headers else None

    def _take(self, msg: Msg) -> bool:
        """Account for one delivery; True for a message to handle, False for a status."""
        status = self._status(msg)
        if not status:
            self.credit = max(0, self.credit - 1)  # (a late answer to a no_wait request is not credited)
            return True
        if status in ("408", "409"):  # a request expired or ended: its remainder is no longer owed
            left = msg.headers.get("Nats-Pending-Messages") if msg.headers else None
            self.credit = max(0, self.credit - int(left)) if left and left.isdigit() else 0
        return False

    async def first(self, timeout: float) -> Msg:
        """The next message, waiting up to ``timeout``; keeps requests outstanding."""
        q = self.inbox
        deadline = time.monotonic() + timeout
        while True:
            if self.credit <= self.batch // 2 or time.monotonic() - self.requested_at > self.expires:
                await self._request()
            try:
                msg = q.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise NatsTimeoutError from None
                try:
                    msg = await asyncio.wait_for(q.get(), min(left, self.expires + 1.0))
                except TimeoutError:
                    # Nothing at all for a whole expiry (e.g. after a reconnect): ask afresh.
                    self.credit = 0
                    continue
            if self._take(msg):
                return msg

    def waiting(self) -> int:
        """Deliveries already in this process, not yet taken (statuses included)."""
        return self.inbox.waiting()

    async def more(self, limit: int) -> list[Msg]:
        """Messages already delivered and waiting, without waiting for more. The next batch is
        asked for now, so that the server delivers it while this one is handled (up to two
        batches requested ahead; ``max_ack_pending`` allows four)."""
        out = self.buffered(limit)
        while self.credit <= self.batch:
            await self._request()
        return out

    def buffered(self, limit: int) -> list[Msg]:
        """Messages already delivered to this process and not yet taken."""
        q = self.inbox
        out: list[Msg] = []
        while len(out) < limit:
            try:
                msg = q.get_nowait()
            except asyncio.QueueEmpty:
                break
            if self._take(msg):
                out.append(msg)
        return out


class LingeringPull(StandingPull):
    """For a consumer that gathers a trickle (``linger``): one message is requested to wait on, and
    the rest are asked for once the linger is over, in one ``no_wait`` request.

    With requests standing, the server pushed every event the moment it was stored, and the
    process woke up for each one (at 100 referrals/s, ≈ 0.3 ms of CPU per event in each downstream
    service, most of it on cold caches). Here the events of a linger wait in the stream and arrive
    together. Acks, redelivery and the durable consumer are as before.
    """

    def __init__(self, psub: Any, expires: float = 2.0) -> None:
        super().__init__(psub, 1, expires)  # one message requested at a time: the one to wait on

    async def more(self, limit: int) -> list[Msg]:
        out = self.buffered(limit)
        if len(out) >= limit:
            return out
        want = limit - len(out)
        body = json.dumps({"batch": want, "no_wait": True}).encode()
        await self.nc.publish(self.nms, body, reply=self.deliver)
        q = self.inbox
        deadline = time.monotonic() + self.expires
        while want > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                break  # no end of the answer in time (connection trouble): the rest comes next round
            try:
                msg = await asyncio.wait_for(q.get(), left)
            except TimeoutError:
                break
            status = self._status(msg)
            if status:
                if status in ("404", "408"):  # nothing more now: the answer is complete
                    break
                continue  # e.g. a late status of an earlier request
            out.append(msg)
            want -= 1
        return out
