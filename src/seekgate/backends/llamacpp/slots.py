"""The engine's contexts as a pool: free ones, running ones, and a bounded line of waiters.

A request that finds several contexts free takes the one whose cached tokens share the longest
prefix with its prompt: it pays for less prefill, and a repeated request lands on the context
that computed it before, so greedy answers repeat exactly (llama.cpp's kernels round
differently for different batch shapes, so a prefix computed elsewhere can tip a near tie).
Between equal prefixes, the context its session used last wins.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence

from seekgate import errors
from seekgate.backends.llamacpp.engine import common_prefix

__all__ = ["SlotPool"]


class SlotPool:
    def __init__(self, size: int, queue_limit: int, cached: Callable[[int], Sequence[int]], alias: str) -> None:
        self._size = size
        self._free = list(range(size))
        self._waiters: deque[asyncio.Future[int]] = deque()
        self._limit = queue_limit
        self._cached = cached
        self._alias = alias
        self._sessions: list[str | None] = [None] * size

    @property
    def running(self) -> int:
        return self._size - len(self._free)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self, prompt: Sequence[int], session: str | None = None) -> int:
        if self._free:
            best = max(self._free, key=lambda slot: (common_prefix(self._cached(slot), prompt), session is not None and self._sessions[slot] == session))
            self._free.remove(best)
            self._sessions[best] = session
            return best
        if len(self._waiters) >= self._limit:
            raise errors.Overloaded(
                f"model {self._alias!r} is busy: {self._size} requests running and {len(self._waiters)} waiting; retry shortly",
                headers={"Retry-After": "1"},
            )
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            slot = await waiter
            self._sessions[slot] = session
            return slot
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release(waiter.result())  # handed a context just as the caller left
            else:
                self._waiters.remove(waiter)
            raise

    def release(self, slot: int) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(slot)
                return
        self._free.append(slot)

