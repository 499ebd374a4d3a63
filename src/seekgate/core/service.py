"""The shared inference path every dialect calls: resolve the model, call its backend.

Later stages (task profiles, guards, context, cache, routing) plug in here, between the
dialects and the backends, so that every dialect gets them at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from seekgate.backends.registry import ModelEntry, Registry
from seekgate.core.types import ChatResponse, Chunk, Request

__all__ = ["Gateway", "OpenStream"]


class OpenStream:
    """A stream whose first chunk has already arrived, so failures before any output surface
    as ordinary errors (a proper HTTP status) instead of an error event inside a 200 stream."""

    def __init__(self, entry: ModelEntry, first: Chunk, rest: AsyncIterator[Chunk]) -> None:
        self.entry = entry
        self._first: Chunk | None = first
        self._rest = rest

    def __aiter__(self) -> OpenStream:
        return self

    async def __anext__(self) -> Chunk:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return await anext(self._rest)

    async def aclose(self) -> None:
        aclose = getattr(self._rest, "aclose", None)
        if aclose is not None:
            await aclose()


class Gateway:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def resolve(self, request: Request) -> ModelEntry:
        return self.registry.get(request.model or None)

    async def chat(self, request: Request) -> tuple[ModelEntry, ChatResponse]:
        entry = self.resolve(request)
        return entry, await entry.backend.chat(request)

    async def stream(self, request: Request) -> OpenStream:
        entry = self.resolve(request)
        chunks = entry.backend.stream(request)
        try:
            first = await anext(chunks)
        except BaseException:
            await chunks.aclose()  # type: ignore[attr-defined]
            raise
        return OpenStream(entry, first, chunks)
