"""A commit hands its outbox rows straight to this process's relay: no read of the table on the hot path.

While a transaction commits, the seqs of the rows it inserted are ``Database.inflight``; once
committed, the rows are in ``Database.handoff``. The relay's scan (shared/messaging/relay.py), the
safety net, leaves both to the hand-off, or a row could go out twice.

On PostgreSQL a transaction that is one statement commits when that statement ends
(fastpath/routing.py), before its seqs are known here; a scan that reads its rows in that moment
publishes them, and the hand-off then skips them as published (the relay's ``_published``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.faults import crash_point

if TYPE_CHECKING:
    from shared.storage.database import Database

HANDOFF_MAX = 10_000


def hand_off(db: Database, messages: list[dict[str, Any]]) -> None:
    """Give committed rows to the relay and wake it. Called with no await since the commit: the
    relay sees these rows either as in flight or as handed off, never as unclaimed rows of its scan."""
    db.handoff.extend(messages)
    if len(db.handoff) > HANDOFF_MAX:  # no relay draining it (a tool): the scan covers these
        del db.handoff[: len(db.handoff) - HANDOFF_MAX]
    crash_point("uow.after_commit_before_publish")
    if db.on_commit is not None:
        db.on_commit(messages)
    db.outbox_written.set()
