"""Read models of the meetings service rebuilt from the event streams.

``JointWorkRebuild``: the joint-work statistics (services/meetings/joint_statistics.py) folded from
the REFERRAL, MEETINGS and PLANS streams with the same ``apply`` as the live read model, so the two
match exactly; :meth:`JointWorkRebuild.store` puts the result in place of the live rows, in one
transaction of the meetings database, where ``query.meetings.joint_work_statistics.v1`` serves it.
"""

from __future__ import annotations

from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic_core import from_json

from shared.messaging.replay import replay

from .joint_statistics import EVENT_TYPES, STREAM_OF, JointWorkStatistics


class JointWorkRebuild:
    def __init__(self) -> None:
        self.model = JointWorkStatistics()
        self.events = 0
        self.unreadable = 0

    def apply_batch(self, msgs: list[Msg]) -> None:
        for m in msgs:
            event_type = m.subject.rsplit(".v", 1)[0]
            try:
                if self.model.apply(event_type, from_json(m.data)) is not None:
                    self.events += 1
            except (ValueError, KeyError, TypeError):  # a payload that breaks the contract: counted, not fatal
                self.unreadable += 1

    @classmethod
    async def rebuild(cls, js: JetStreamContext, progress: Any = None) -> JointWorkRebuild:
        """Each subject in turn: the facts do not depend on the order (each event sets its own fields;
        a reschedule wins over the convening by its sequence)."""
        built = cls()
        for event_type in EVENT_TYPES:
            stream = STREAM_OF[event_type.split(".", 1)[0]]
            await replay(js, stream, f"{event_type}.v1", built.apply_batch, progress=progress)
        return built

    async def store(self, svc: Any) -> int:
        """Replace the live rows with the rebuilt ones (one transaction); returns how many rows."""
        async with svc.uow() as uow:
            await uow.meetings.replace_statistics_facts(self.model.facts)
            await uow.commit()
        return len(self.model.facts)
