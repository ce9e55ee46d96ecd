"""Dead letters: a message a consumer gives up on goes to ``deadletter.<service>.<durable>`` with its
reason (codes, no personal data); an operator's replay reads its original back (redelivery.py)."""

from __future__ import annotations

from nats.aio.msg import Msg
from nats.js import JetStreamContext


class DeadLetters:
    """Publishes a failed message to ``deadletter.<service>.<durable>`` with its reason."""

    def __init__(self, js: JetStreamContext, service: str) -> None:
        self.js = js
        self.service = service
        self.count = 0

    async def send(self, msg: Msg, durable: str, reason: str, detail: str = "") -> bool:
        """True when stored; False when this delivery of the message was dead-lettered already. Two
        deliveries of one message can both give up on it (a handler blocked past the ack wait, then
        redelivered): the message id makes JetStream keep the first, and only that one is counted."""
        md = msg.metadata
        headers = {
            "Nats-Msg-Id": f"dl:{md.stream}:{md.sequence.stream}:{durable}",
            "Koolle-Dlq-Reason": reason,
            "Koolle-Dlq-Detail": detail[:500],
            "Koolle-Dlq-Subject": msg.subject,
            "Koolle-Dlq-Stream": md.stream,
            "Koolle-Dlq-Stream-Seq": str(md.sequence.stream),
            "Koolle-Dlq-Deliveries": str(md.num_delivered),
            "Koolle-Dlq-Consumer": durable,
        }
        for k, v in (msg.headers or {}).items():
            if k.lower() == "traceparent" or k.startswith("Koolle-Event") or k == "Koolle-Case-Id":
                headers[k] = v
        ack = await self.js.publish(f"deadletter.{self.service}.{durable}", msg.data, headers=headers, timeout=10)
        if ack.duplicate:
            return False
        self.count += 1
        return True


class _Sequence:
    def __init__(self, stream: int) -> None:
        self.stream = stream
        self.consumer = 0


class _Metadata:
    def __init__(self, stream: str, seq: int) -> None:
        self.stream = stream
        self.sequence = _Sequence(seq)
        self.num_delivered = 0  # not a delivery: an operator's replay
        self.num_pending = 0
        self.timestamp = None


class StoredMessage:
    """A message read back from its stream by sequence (a dead letter's original), shaped like a
    delivery so that it goes through the consumer's normal path. Acks are no-ops: nothing to ack."""

    def __init__(self, stream: str, seq: int, subject: str, data: bytes, headers: dict[str, str] | None) -> None:
        self.subject = subject
        self.data = data
        self.headers = headers
        self.reply = ""
        self.metadata = _Metadata(stream, seq)

    async def ack(self) -> None:
        return None

    async def nak(self, delay: float | None = None) -> None:
        return None
