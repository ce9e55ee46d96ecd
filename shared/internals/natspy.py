"""nats-py internals (tested with nats-py 2.16).

Why: the consumers' pull mechanics (shared/messaging/pull.py) keep pull requests standing and take
delivered messages from the pull subscription's queue without waiting, as the newer JetStream
clients' ``consume()`` does. nats-py has no public API for that: ``fetch()`` sends a request per
call, and ``Subscription.next_msg()`` starts a task and a timer per message even when one is
already waiting (bench/README.md: "Private attributes" gives the micro-benchmark). So the
consumer reads, through :class:`PullInbox` only:

- ``PullSubscription._sub`` (the subscription on the deliver inbox), ``._nc``, ``._nms`` (the
  ``CONSUMER.MSG.NEXT`` subject) and ``._deliver`` (the inbox);
- ``Subscription._pending_queue`` (the delivered messages) and ``._pending_size`` (its byte
  count, kept right as ``next_msg()`` keeps it).

Also ``JetStreamContext._nc`` (the relay's atomic batch publish needs the core client) and
``Client._transport._io_writer`` (whether the socket is TLS, shared/client.py).
"""

from __future__ import annotations

import asyncio
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.aio.transport import TcpTransport
from nats.js import JetStreamContext

from shared.internals import InternalsChanged, require_names

LIBRARY = "nats-py"


def check() -> None:
    """Raise :class:`InternalsChanged` unless nats-py still has what this module reads."""
    require_names(LIBRARY, JetStreamContext.PullSubscription.__init__, ("_sub", "_nc", "_nms", "_deliver"), "PullSubscription")
    require_names(LIBRARY, Subscription.__init__, ("_pending_queue", "_pending_size"), "Subscription")
    # next_msg() is the public way to take a message: it must still keep the byte count we keep.
    require_names(LIBRARY, Subscription.next_msg, ("_pending_queue", "_pending_size"), "Subscription.next_msg")
    require_names(LIBRARY, JetStreamContext.__init__, ("_nc",), "JetStreamContext")
    require_names(LIBRARY, Client.__init__, ("_transport",), "Client")
    require_names(LIBRARY, TcpTransport.__init__, ("_io_writer",), "TcpTransport")


check()


class PullInbox:
    """A pull subscription's delivered messages, taken without a task or timer per message."""

    __slots__ = ("nc", "next_subject", "deliver", "_sub", "_queue")

    def __init__(self, psub: JetStreamContext.PullSubscription) -> None:
        sub = psub._sub
        self.nc: Client = psub._nc
        self.next_subject: str = psub._nms  # $JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>
        self.deliver: str = psub._deliver  # the inbox the server delivers to
        self._sub = sub
        queue = sub._pending_queue
        if not isinstance(queue, asyncio.Queue) or not isinstance(sub._pending_size, int):
            raise InternalsChanged(LIBRARY, "Subscription._pending_queue is no asyncio.Queue, or _pending_size no int")
        self._queue: asyncio.Queue[Msg] = queue

    def get_nowait(self) -> Msg:
        """The next delivered message; ``asyncio.QueueEmpty`` when none is waiting."""
        msg = self._queue.get_nowait()
        self._sub._pending_size -= len(msg.data)
        return msg

    async def get(self) -> Msg:
        """The next delivered message, waiting for it (wrap in a timeout)."""
        msg = await self._queue.get()
        self._sub._pending_size -= len(msg.data)
        return msg

    def waiting(self) -> int:
        """Deliveries in this process not yet taken (statuses included)."""
        return self._queue.qsize()


def core_client(js: JetStreamContext) -> Client:
    """The core NATS client of a JetStream context."""
    nc = js._nc
    if not isinstance(nc, Client):
        raise InternalsChanged(LIBRARY, "JetStreamContext._nc is no nats.aio.client.Client")
    return nc


def socket_is_tls(nc: Client) -> bool:
    """Whether the client's connection runs over TLS now (False when it is not connected)."""
    transport: Any = nc._transport
    if transport is None:
        return False
    if not isinstance(transport, TcpTransport):
        raise InternalsChanged(LIBRARY, f"TLS check written for TcpTransport, got {type(transport).__name__}")
    writer = transport._io_writer
    return writer is not None and writer.get_extra_info("ssl_object") is not None
