"""The inbox: the ids of the events a consumer has handled, recorded in the transaction of their effects.

A redelivered event finds its id there and has no second effect. Two ways to record them:

- ``claim_each``: first, in a statement of its own that says which ids are new (``ON CONFLICT DO
  NOTHING RETURNING``), before any handler runs: for a batch that may hold an event handled before
  (a redelivery, a dead letter replayed);
- ``claim_later``: with the transaction's other writes (on PostgreSQL in its last statement, with
  the outbox rows), for a batch of first deliveries. Those are new but for a rare re-publication
  (the same event stored twice after the dedup window); its row is already there, so the commit
  fails with an ``IntegrityError`` and nothing of the batch is kept. The consumer then claims the
  careful way. One round trip less per batch on PostgreSQL (bench/README.md).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Column, MetaData, String, Table

from shared.storage.columns import UTCDateTime
from shared.storage.engine import dialect_insert
from shared.storage.fastpath.declare import hot_once
from shared.storage.statements import TableStatements


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("consumer", String(128), primary_key=True),
        Column("event_id", String(64), primary_key=True),
        Column("processed_at", UTCDateTime, nullable=False),
    )


def claim_statement(inbox: Table, dialect: str) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING consumer, event_id``, built once per table and
    dialect: the claim runs for every consumed batch."""
    return hot_once(
        ("inbox claim", inbox, dialect),
        lambda: dialect_insert(dialect)(inbox).on_conflict_do_nothing().returning(inbox.c.consumer, inbox.c.event_id),
    )


class InboxClaims(TableStatements):
    """The unit of work's inbox side."""

    now: Callable[[], datetime]

    async def claim_many(self, consumer: str, event_ids: list[str]) -> set[str]:
        """Record that ``consumer`` handled these event ids, in one statement; returns the ids that
        were new (the rest are redeliveries). It commits or rolls back with the effects."""
        return {k for _, k in await self.claim_each([(consumer, k) for k in event_ids])}

    def claim_later(self, claims: list[tuple[str, str]]) -> None:
        """Record ``(consumer, event id)`` pairs with the transaction's other writes, as a plain
        insert: a pair already there fails the commit (``IntegrityError``), it is not skipped."""
        now = self.now()
        self.insert_later(self.db.inbox, [{"consumer": c, "event_id": k, "processed_at": now} for c, k in dict.fromkeys(claims)])

    async def claim_each(self, claims: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Record ``(consumer, event id)`` pairs, in one statement whatever the consumers (a batch of
        one durable consumer feeds several subscriptions); returns the pairs that were new."""
        if not claims:
            return set()
        now = self.now()
        rows = [{"consumer": c, "event_id": k, "processed_at": now} for c, k in dict.fromkeys(claims)]
        result = await self.execute(self.db.claim_statement, rows)
        return {(r.consumer, r.event_id) for r in result}
