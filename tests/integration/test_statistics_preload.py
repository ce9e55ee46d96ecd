"""A consumed batch reads the statistics facts of all its events in one statement (Subscription.preload)
and folds each event into what the events before it in the batch left, on both databases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.meetings.adapters import MeetingsUnitOfWork, metadata
from tests.support.databases import KINDS, fresh_database

pytestmark = pytest.mark.integration


@pytest.fixture(params=KINDS)
async def db(request: pytest.FixtureRequest, tmp_path: Path):
    async with fresh_database(request.param, metadata, tmp_path, "preload") as d:
        yield d


async def test_preloaded_facts_are_read_once_and_follow_the_batchs_own_writes(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    async with MeetingsUnitOfWork(db) as uow:
        await uow.meetings.save_statistics_facts("case:old", {"n": 1}, new=True)
        await uow.commit()
    async with MeetingsUnitOfWork(db) as uow:
        await uow.meetings.preload_statistics_facts({"case:old", "case:new"})
        reads: list[Any] = []
        original = uow.row
        monkeypatch.setattr(uow, "row", lambda *a, **kw: reads.append(a) or original(*a, **kw))
        assert await uow.meetings.statistics_facts("case:old") == {"n": 1}
        assert await uow.meetings.statistics_facts("case:new") is None
        await uow.meetings.save_statistics_facts("case:new", {"n": 1}, new=True)
        assert await uow.meetings.statistics_facts("case:new") == {"n": 1}  # the batch's own write
        await uow.meetings.save_statistics_facts("case:old", {"n": 2}, new=False)
        assert reads == []  # nothing read one by one
        assert await uow.meetings.statistics_facts("case:other") is None  # not preloaded: read
        assert len(reads) == 1
        await uow.commit()
    async with MeetingsUnitOfWork(db) as uow:
        assert await uow.meetings.statistics_facts("case:old") == {"n": 2}
        assert await uow.meetings.statistics_facts("case:new") == {"n": 1}


async def test_a_batch_opens_the_convenings_of_new_cases_once_and_knows_the_existing_ones(db: Any) -> None:
    from datetime import UTC, datetime
    from uuid import uuid4

    from services.meetings.domain import Convening

    old, new = uuid4(), uuid4()

    def convening(case: Any) -> Convening:
        return Convening(
            case_id=case,
            municipality="Testilä",
            language="fi",
            interpreter_needed=False,
            consent_to_convene=True,
            statutory=False,
            opened_at=datetime.now(UTC),
        )

    async with MeetingsUnitOfWork(db) as uow:
        assert await uow.meetings.add_convening(convening(old))  # not preloaded: inserted at once
        await uow.commit()
    async with MeetingsUnitOfWork(db) as uow:
        await uow.meetings.preload_convenings({str(old), str(new)})
        assert not await uow.meetings.add_convening(convening(old))
        assert await uow.meetings.add_convening(convening(new))  # held
        assert not await uow.meetings.add_convening(convening(new))  # the batch's own: known now
        assert (await uow.meetings.convening(new)) is not None  # read back before commit
        await uow.commit()
    async with MeetingsUnitOfWork(db) as uow:
        assert (await uow.meetings.convening(new)).case_id == new
