"""The order in which one process's consumers handle their batches."""

from __future__ import annotations

import asyncio


class BatchOrder:
    """The consumers of one process handle their batches in the order the batches' first events
    were stored, as they did when every event was pushed at once: a lingering consumer asks for the
    rest of its batch with a round trip, and replies to two consumers can come back in either
    order. (An event handled before an earlier one of another stream can find, e.g., a contact
    not yet in the directory.)"""

    def __init__(self) -> None:
        self._first: dict[int, float] = {}
        self._changed = asyncio.Condition()

    def enter(self, who: object, stored_at: float) -> None:
        self._first[id(who)] = stored_at

    async def turn(self, who: object) -> None:
        mine = self._first[id(who)]
        async with self._changed:
            await self._changed.wait_for(lambda: all(t >= mine for t in self._first.values()))

    async def leave(self, who: object) -> None:
        if self._first.pop(id(who), None) is not None:
            async with self._changed:
                self._changed.notify_all()
