"""A process's consumers take turns in the order their batches' first events were stored."""

from __future__ import annotations

import asyncio

from shared.messaging.batches import BatchOrder


async def test_batches_are_handled_in_the_order_their_first_events_were_stored() -> None:
    order = BatchOrder()
    done: list[str] = []
    a, b, c = object(), object(), object()
    order.enter(b, 2.0)
    order.enter(c, 3.0)

    async def handle(who: object, name: str) -> None:
        await order.turn(who)
        done.append(name)
        await asyncio.sleep(0)
        await order.leave(who)

    later = [asyncio.create_task(handle(c, "c")), asyncio.create_task(handle(b, "b"))]
    await asyncio.sleep(0.01)
    assert done == ["b", "c"]  # b's first event was stored before c's
    order.enter(a, 1.0)  # a batch that started earlier still in its gathering: later ones wait for it
    order.enter(b, 2.5)
    waiting = asyncio.create_task(handle(b, "b2"))
    await asyncio.sleep(0.01)
    assert done == ["b", "c"]
    await handle(a, "a")
    await waiting
    assert done == ["b", "c", "a", "b2"]
    await asyncio.gather(*later)


async def test_leaving_without_a_turn_releases_the_others() -> None:
    order = BatchOrder()
    first, second = object(), object()
    order.enter(first, 1.0)
    order.enter(second, 2.0)
    turn = asyncio.create_task(order.turn(second))
    await asyncio.sleep(0.01)
    assert not turn.done()
    await order.leave(first)  # e.g. its fetch failed
    await asyncio.wait_for(turn, 1.0)
