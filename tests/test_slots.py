"""The engine's slots: first pieces go before later ones; a cancelled wait never keeps a slot."""

from __future__ import annotations

import asyncio

from elevtts.server.slots import Slots


async def _order(slots: Slots, requests: list[tuple[str, bool]]) -> list[str]:
    granted: list[str] = []

    async def piece(name: str, first: bool) -> None:
        await slots.acquire(first=first)
        granted.append(name)
        await asyncio.sleep(0)
        slots.release()

    await slots.acquire()  # the engine is busy while the requests queue up
    tasks = []
    for name, first in requests:
        tasks.append(asyncio.ensure_future(piece(name, first)))
        await asyncio.sleep(0)
    slots.release()
    await asyncio.gather(*tasks)
    return granted


def test_first_pieces_go_before_later_ones_in_arrival_order() -> None:
    requests = [("a2", False), ("b1", True), ("a3", False), ("c1", True)]
    assert asyncio.run(_order(Slots(1), requests)) == ["b1", "c1", "a2", "a3"]


def test_two_slots_run_two_pieces_at_once() -> None:
    async def run() -> tuple[bool, int]:
        slots = Slots(2)
        await slots.acquire()
        await slots.acquire()
        third = asyncio.ensure_future(slots.acquire(first=True))
        await asyncio.sleep(0)
        blocked = not third.done()
        slots.release()
        await third
        return blocked, slots.waiting

    assert asyncio.run(run()) == (True, 0)


def test_a_cancelled_wait_gives_its_turn_to_the_next() -> None:
    async def run() -> list[str]:
        slots = Slots(1)
        await slots.acquire()
        granted: list[str] = []

        async def piece(name: str) -> None:
            await slots.acquire(first=True)
            granted.append(name)

        gone = asyncio.ensure_future(piece("gone"))
        kept = asyncio.ensure_future(piece("kept"))
        await asyncio.sleep(0)
        gone.cancel()
        slots.release()
        await kept
        await asyncio.gather(gone, return_exceptions=True)
        slots.release()
        await slots.acquire()  # the slot came back: nothing was lost
        return granted

    assert asyncio.run(run()) == ["kept"]


def test_a_wait_cancelled_after_its_grant_passes_the_slot_on() -> None:
    async def run() -> list[str]:
        slots = Slots(1)
        await slots.acquire()
        granted: list[str] = []

        async def piece(name: str) -> None:
            await slots.acquire()
            granted.append(name)

        late = asyncio.ensure_future(piece("late"))
        nxt = asyncio.ensure_future(piece("next"))
        await asyncio.sleep(0)
        slots.release()  # granted to "late"...
        late.cancel()  # ...which is cancelled before it runs
        await asyncio.gather(late, return_exceptions=True)
        await nxt
        return granted

    assert asyncio.run(run()) == ["next"]
