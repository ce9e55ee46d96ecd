"""Read models of the meetings service rebuilt from the event streams.

``JointWorkRebuild``: the joint-work statistics (services/meetings/joint_statistics.py), folded from
the REFERRAL, MEETINGS and PLANS streams; ``MeetingStatisticsRebuild``: the joint-meeting statistics
(services/meetings/meeting_statistics.py), from the REFERRAL and MEETINGS streams. Each folds with
the same ``apply`` as its live read model, so the two match exactly; ``store`` puts the result in
place of the live rows, in one transaction of the meetings database, where the model's query
(``query.meetings.joint_work_statistics.v1``, ``query.meetings.statistics.v2``) serves it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from nats.js import JetStreamContext

from shared.contracts import published_subject
from shared.messaging.replay import ModelFold, replay

from . import joint_statistics, meeting_statistics


class FactsRebuild(ModelFold):
    table: ClassVar[str]  # adapters.FACT_TABLES
    event_types: ClassVar[tuple[str, ...]]
    stream_of: ClassVar[dict[str, str]]

    def __init__(self) -> None:
        super().__init__(self.new_model())

    def new_model(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    @classmethod
    async def rebuild(cls, js: JetStreamContext, progress: Any = None, keys: JetStreamContext | None = None) -> Any:
        """Each subject in turn: the facts do not depend on the order (each event sets its own fields;
        a replacing one wins by its sequence or time)."""
        built = cls()
        for event_type in cls.event_types:
            stream = cls.stream_of[event_type.split(".", 1)[0]]
            await replay(js, stream, published_subject(event_type), built.apply_batch, progress=progress, keys=keys)
        return built

    async def store(self, svc: Any) -> int:
        """Replace the live rows with the rebuilt ones (one transaction); returns how many rows."""
        async with svc.uow() as uow:
            await uow.meetings.replace_statistics_facts(self.model.facts, self.table)
            await uow.commit()
        return len(self.model.facts)


class JointWorkRebuild(FactsRebuild):
    table = "joint"
    event_types = joint_statistics.EVENT_TYPES
    stream_of = joint_statistics.STREAM_OF

    def new_model(self) -> joint_statistics.JointWorkStatistics:
        return joint_statistics.JointWorkStatistics()


class MeetingStatisticsRebuild(FactsRebuild):
    table = "meetings"
    event_types = meeting_statistics.EVENT_TYPES
    stream_of = meeting_statistics.STREAM_OF

    def new_model(self) -> meeting_statistics.MeetingStatisticsModel:
        return meeting_statistics.MeetingStatisticsModel()
