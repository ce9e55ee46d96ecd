"""Read models rebuilt from the REFERRAL stream.

``ReferralStatistics``: referrals per municipality, month (Helsinki) and channel, and how many were
statutory or urgent. It reads only the fields it needs (consumers are tolerant), so a rebuild from
a long stream runs near the raw drain rate.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from shared.clock import local
from shared.contracts import ReferralReceived
from shared.messaging.replay import replay


class ReferralStatistics:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.statutory: Counter[tuple[str, str]] = Counter()
        self.urgent: Counter[tuple[str, str]] = Counter()
        self.events = 0

    def apply(self, ev: dict[str, Any]) -> None:
        from datetime import datetime

        month = local(datetime.fromisoformat(ev["received_at"])).strftime("%Y-%m")
        key = (ev["municipality"], month)
        self.counts[(*key, ev["channel"])] += 1
        if ev.get("statutory"):
            self.statutory[key] += 1
        if ev.get("urgent"):
            self.urgent[key] += 1
        self.events += 1

    def apply_batch(self, msgs: list[Msg]) -> None:
        for m in msgs:
            self.apply(json.loads(m.data))

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"municipality": m, "month": mo, "channel": ch, "referrals": n}
            for (m, mo, ch), n in sorted(self.counts.items())
        ]

    @classmethod
    async def rebuild(cls, js: JetStreamContext, progress: Any = None, subject: str | None = None, stream: str = "REFERRAL") -> ReferralStatistics:
        stats = cls()
        await replay(js, stream, subject or ReferralReceived.subject(), stats.apply_batch, progress=progress)
        return stats
