"""Read models of the plans service rebuilt from the event streams.

``WellbeingRebuild``: the wellbeing star measurements behind ``query.plans.effectiveness.v2`` and
the wellbeing chart (``query.plans.effectiveness_chart.v2``): one per joint meeting held with scores
(``meeting.held``, MEETINGS) and one per follow-up recorded with scores (``followup.recorded``,
PLANS), keyed, timed and scored exactly as the live handlers store them. ``store`` puts the result
in place of the live rows, in one transaction of the plans database, where the queries serve it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic_core import from_json

from shared.contracts import published_subject
from shared.messaging.replay import replay

SOURCES = (("MEETINGS", "meeting.held"), ("PLANS", "followup.recorded"))


def _utc(value: str) -> str:
    d = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (d if d.tzinfo else d.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


class WellbeingRebuild:
    def __init__(self) -> None:
        self.facts: dict[str, dict[str, Any]] = {}
        self.events = 0
        self.unreadable = 0

    def apply(self, subject: str, ev: dict[str, Any]) -> None:
        scores = {str(k): int(v) for k, v in (ev.get("wellbeing_scores") or {}).items()}
        if not scores:
            return
        if subject.startswith("meeting.held."):
            key, source, at = f"meeting:{ev['meeting_id']}", "meeting", ev["held_at"]
        else:
            key, source, at = f"followup:{ev['event_id']}", "followup", ev["occurred_at"]
        self.facts.setdefault(key, {"case_id": str(ev["case_id"]), "source": source, "measured_at": _utc(at), "scores": scores})
        self.events += 1

    def apply_batch(self, msgs: list[Msg]) -> None:
        for m in msgs:
            try:
                self.apply(m.subject, from_json(m.data))
            except (ValueError, KeyError, TypeError):  # a payload that breaks the contract: counted, not fatal
                self.unreadable += 1

    @classmethod
    async def rebuild(cls, js: JetStreamContext, progress: Any = None, keys: JetStreamContext | None = None) -> WellbeingRebuild:
        built = cls()
        for stream, subject in SOURCES:
            await replay(js, stream, published_subject(subject), built.apply_batch, progress=progress, keys=keys)
        return built

    async def store(self, svc: Any) -> int:
        """Replace the live rows with the rebuilt ones (one transaction); returns how many rows."""
        async with svc.uow() as uow:
            await uow.plans.replace_measurements(self.facts)
            await uow.commit()
        return len(self.facts)
