"""Case ids whose keys are made ahead: a new case's first event is sealed without a key-bucket write.

Every new case needs its data key (shared/sealing.py) before its first event can be written to the
outbox, and making one is a JetStream write (an fsync with ``sync_interval: always``). Made at the
commit, that write was on every intake's path: on PostgreSQL 0.75 ms at the median and 3.5 ms at
the 99th percentile of a referral's 4.5 and 12 ms transaction (bench/README.md). The service that
opens cases (referral) therefore keeps a few case ids whose keys it has already made, and a new
case takes one of them; the reserve is topped up in the background.

- An id taken is a fresh time-ordered id like any other, only minted a little earlier.
- With the reserve empty (a burst, the bucket not answering), a new case gets a fresh id and its
  key is made at the commit, as before: nothing waits for the reserve.
- An id given back (its case was not opened after all: a submission id used again) serves the next case.
  An id is given back only when nothing was stored under it.
- A clean stop deletes the keys no case took; after a crash they stay in the bucket, unused (each a
  few dozen bytes; no data was ever sealed with them).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from uuid import UUID

from shared.contracts.base import time_ordered_id
from shared.sealing import KEYS_STREAM, CaseKeys

log = logging.getLogger("koolle.sealing")

TAKEN_KEPT = 1024  # an id is given back in the handler that took it, long before 1,024 more are taken


class KeyReserve:
    def __init__(self, keys: CaseKeys, size: int) -> None:
        self.keys = keys
        self.size = size
        self._ready: deque[tuple[str, int, bytes]] = deque()  # case id, its key's message, the key
        self._taken: OrderedDict[str, tuple[int, bytes]] = OrderedDict()  # the last ids taken, for give_back
        self._topping: asyncio.Task[None] | None = None
        self.taken = 0  # new cases given a reserved id
        self.fresh = 0  # new cases given a fresh id (reserve empty): their keys made at the commit

    def ready(self) -> int:
        return len(self._ready)

    def new_case_id(self) -> UUID:
        """An id for a case about to be opened: a reserved one (its key made and cached), or a fresh
        one when none is ready."""
        if self._ready:
            case_id, revision, key = self._ready.popleft()
            self.keys.remember(case_id, key)  # cached for the commit, so the event is sealed at emit
            self._taken[case_id] = (revision, key)
            if len(self._taken) > TAKEN_KEPT:
                self._taken.popitem(last=False)
            self.taken += 1
            found = UUID(case_id)
        else:
            self.fresh += 1
            found = time_ordered_id()
        if len(self._ready) <= self.size // 2:
            self.top_up()
        return found

    def give_back(self, case_id: UUID) -> None:
        """``case_id`` was taken but nothing was stored under it: its key serves the next case."""
        made = self._taken.pop(str(case_id), None)
        if made is not None:  # (a fresh id has no key yet: nothing to give back)
            self._ready.appendleft((str(case_id), *made))

    def top_up(self) -> None:
        """Make keys in the background until the reserve is full (one round at a time)."""
        if self._topping is None or self._topping.done():
            self._topping = asyncio.get_running_loop().create_task(self._make(), name="case-key-reserve")

    async def _make(self) -> None:
        want = self.size - len(self._ready)
        ids = [str(time_ordered_id()) for _ in range(want)]
        if self.keys.batched(want):
            try:
                made = await self.keys.make_many(ids)  # one write for all (shared/sealing.py)
            except Exception as exc:  # noqa: BLE001 - made one by one below instead
                log.info("case key reserve: a batch of %d keys not made (%s); one by one", want, type(exc).__name__)
            else:
                self._ready.extend((case_id, revision, key) for case_id, (revision, key) in zip(ids, made, strict=True))
                return

        async def one(case_id: str) -> tuple[str, int, bytes]:
            revision, key = await self.keys.make(case_id)
            return case_id, revision, key

        made_one = await asyncio.gather(*(one(case_id) for case_id in ids), return_exceptions=True)
        failed = [m for m in made_one if isinstance(m, BaseException)]
        self._ready.extend(m for m in made_one if not isinstance(m, BaseException))
        if failed:
            log.info("case key reserve: %d of %d keys not made (%s)", len(failed), want, type(failed[0]).__name__)

    async def close(self) -> None:
        """Stop topping up and delete the keys no case took (no data was sealed with them)."""
        if self._topping is not None:
            self._topping.cancel()
            await asyncio.gather(self._topping, return_exceptions=True)
        unused, self._ready = list(self._ready), deque()
        left: list[BaseException] = []
        for case_id, revision, key in unused:
            self.keys.forget(case_id)
            try:
                # A revision is deleted only while it holds the key made for this id: a deletion
                # cannot be undone, so a miscounted revision must never reach another case's key.
                entry = await self.keys.entry(case_id)
                if entry is not None and entry.revision == revision and entry.value == key:
                    await self.keys.js.delete_msg(KEYS_STREAM, revision)
                else:
                    log.error("case key reserve: revision %d does not hold the key made for its case; kept", revision)
            except Exception as exc:  # noqa: BLE001 - connection gone: the key stays, unused and harmless
                left.append(exc)
        if left:
            log.warning("%d unused case key(s) made ahead left in the bucket (%s)", len(left), type(left[0]).__name__)
