"""The narrow backend protocol: every engine and server speaks only the neutral core types."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

import msgspec

from seekgate.core.types import ChatResponse, Chunk, Request

__all__ = ["Backend", "Capabilities", "Health"]


class Capabilities(msgspec.Struct, frozen=True):
    """What a model on a backend can do; the gateway refuses what it cannot, before calling it."""

    chat: bool = True
    completions: bool = True
    fim: bool = False
    json_schema: bool = False
    """Constrained decoding of a JSON schema (response_format json_schema / json_object)."""
    tools: bool = False
    """Native tool calling."""
    vision: bool = False
    context_tokens: int | None = None


class Health(msgspec.Struct, frozen=True):
    ready: bool
    detail: str = ""
    load: dict[str, int] = msgspec.field(default_factory=dict)
    """Counters for in-process engines: running, waiting, finished, cancelled."""


@runtime_checkable
class Backend(Protocol):
    """One model served by one engine or server.

    `chat` returns a whole answer; `stream` yields chunks as they are generated, the last one
    carrying finish_reason and usage. Cancelling the awaiting task stops generation upstream.
    Both raise only `seekgate.errors` exceptions.
    """

    name: str
    """The backend's configured name, for logs, headers and metrics."""

    @property
    def capabilities(self) -> Capabilities: ...

    async def start(self) -> None:
        """Load weights or open connections. Called once; may be slow."""

    async def health(self) -> Health: ...

    async def chat(self, request: Request) -> ChatResponse: ...

    def stream(self, request: Request) -> AsyncIterator[Chunk]: ...

    async def aclose(self) -> None: ...
