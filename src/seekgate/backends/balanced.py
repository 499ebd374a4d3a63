"""One model on several endpoints (replicas of a vLLM or Ollama server, say): each request goes
to the replica with the fewest requests in flight, except that a session's turns stay on the
replica that served it (its prefix is cached there) until that one is busier than the least
busy by more than `SPILL` requests. A policy that wraps backends, not a backend kind of its own;
the router's fallback and breaker work above it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

from seekgate.backends.base import Backend, Capabilities, Health
from seekgate.core.types import ChatRequest, ChatResponse, Chunk, Request
from seekgate.routing.sessions import Affinity

__all__ = ["SPILL", "Balanced"]

SPILL = 4


class Balanced:
    def __init__(self, replicas: Sequence[Backend]) -> None:
        self._replicas = list(replicas)
        self._in_flight = [0] * len(replicas)
        self._sessions = Affinity()
        self.name = ",".join(r.name for r in replicas)

    @property
    def capabilities(self) -> Capabilities:
        return self._replicas[0].capabilities

    def _pick(self, request: Request) -> int:
        # Fewest in flight; ties go to the earliest listed, so a quiet deployment is predictable.
        least = min(range(len(self._replicas)), key=lambda i: self._in_flight[i])
        session = request.session if isinstance(request, ChatRequest) else None
        if session is None:
            return least
        kept = self._sessions.get(session)
        if kept is not None and self._in_flight[kept] <= self._in_flight[least] + SPILL:
            return kept
        self._sessions.set(session, least)
        return least

    async def start(self) -> None:
        await asyncio.gather(*(r.start() for r in self._replicas))

    async def health(self) -> Health:
        results = await asyncio.gather(*(r.health() for r in self._replicas))
        ready = [r for r in results if r.ready]
        detail = "; ".join(f"{rep.name}: {h.detail or 'ready'}" for rep, h in zip(self._replicas, results))
        return Health(ready=bool(ready), detail=f"{len(ready)}/{len(results)} replicas ready ({detail})")

    async def chat(self, request: Request) -> ChatResponse:
        i = self._pick(request)
        self._in_flight[i] += 1
        try:
            answer = await self._replicas[i].chat(request)
            answer.backend = self._replicas[i].name
            return answer
        finally:
            self._in_flight[i] -= 1

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        i = self._pick(request)
        self._in_flight[i] += 1
        first = True
        try:
            async for chunk in self._replicas[i].stream(request):
                if first:
                    chunk.backend, first = self._replicas[i].name, False
                yield chunk
        finally:
            self._in_flight[i] -= 1

    async def aclose(self) -> None:
        await asyncio.gather(*(r.aclose() for r in self._replicas))
