"""A pulled JetStream message as the consumer reads it, for tests of the consumer's processing
(acks, redelivery and the broker itself are tested on a real nats-server elsewhere)."""

from __future__ import annotations

from types import SimpleNamespace


class Delivered:
    def __init__(self, key: str, seq: int, delivered: int = 1, subject: str = "test.subject") -> None:
        self.data = key.encode()
        self.headers: dict[str, str] = {}
        self.subject = subject
        self.metadata = SimpleNamespace(
            sequence=SimpleNamespace(stream=seq), num_delivered=delivered, stream="TEST", num_pending=0
        )
        self.acked = False

    async def ack(self) -> None:
        self.acked = True
