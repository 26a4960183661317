"""The engine's slots: at most N pieces synthesized at once, first pieces first.

A drop-in for the `asyncio.Semaphore` a transport holds around each synthesis: `acquire(first=...)`
and `release()`. A piece whose listener has heard nothing yet (`Synthesize.first`) goes before
the pieces of contexts already speaking, whose listeners have audio to play meanwhile; within
each kind, first come, first served.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class Slots:
    def __init__(self, count: int) -> None:
        self._free = max(1, count)
        self._first: deque[asyncio.Future[None]] = deque()
        self._later: deque[asyncio.Future[None]] = deque()

    async def acquire(self, *, first: bool = False) -> bool:
        if self._free > 0 and not self._first and not self._later:
            self._free -= 1
            return True
        queue = self._first if first else self._later
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted just as it was cancelled: pass the slot on
            else:
                with contextlib.suppress(ValueError):
                    queue.remove(waiter)
            raise
        return True

    def release(self) -> None:
        for queue in (self._first, self._later):
            while queue:
                waiter = queue.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the slot passes straight to it
                    return
        self._free += 1

    @property
    def waiting(self) -> int:
        return sum(not w.done() for w in self._first) + sum(not w.done() for w in self._later)
