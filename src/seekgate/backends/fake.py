"""A deterministic backend for tests and benchmarks; its behaviour comes from the model name.

    echo          answers with the last user message (or the completion prompt)
    fixed         answers "Hello from the fake backend."
    tokens-N      answers N chunks "t0 t1 ..." (default 16)
    slow-MS       like echo, waiting MS milliseconds (default 100) before every chunk
    flaky         fails every other request with 503 upstream_unavailable, starting with the first
    down-N        fails its first N requests with 503 upstream_unavailable, then answers like echo
    error-STATUS  always fails: 502 (default), 503 or 504
    broken        streams two chunks, then fails mid-stream
    cut-N         like echo, streamed as two chunks split at character N (stream splits in tests)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from seekgate import errors
from seekgate.backends.base import Capabilities, Health
from seekgate.core.types import ChatRequest, ChatResponse, Chunk, FinishReason, Request, Usage

__all__ = ["FakeBackend"]

_ERRORS: dict[int, type[errors.UpstreamError]] = {
    502: errors.UpstreamError,
    503: errors.UpstreamUnavailable,
    504: errors.UpstreamTimeout,
}


class FakeBackend:
    def __init__(self, name: str, behaviour: str) -> None:
        self.name = name
        kind, _, arg = behaviour.partition("-")
        if kind not in {"echo", "fixed", "tokens", "slow", "flaky", "down", "error", "broken", "cut"}:
            raise ValueError(f"unknown fake behaviour {behaviour!r}")
        self._kind = kind
        self._arg = int(arg) if arg.isdigit() else None
        self._calls = 0

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(fim=True, context_tokens=1_000_000)

    async def start(self) -> None:
        return None

    async def health(self) -> Health:
        return Health(ready=True)

    async def aclose(self) -> None:
        return None

    def _pieces(self, request: Request) -> list[str]:
        self._calls += 1
        if self._kind == "error":
            status = self._arg or 502
            raise _ERRORS.get(status, errors.UpstreamError)(f"fake backend {self.name}: scripted error {status}")
        if self._kind == "flaky" and self._calls % 2 == 1:
            raise errors.UpstreamUnavailable(f"fake backend {self.name}: scripted flaky failure")
        if self._kind == "down" and self._calls <= (self._arg or 1):
            raise errors.UpstreamUnavailable(f"fake backend {self.name}: scripted outage, call {self._calls}")
        if self._kind == "fixed":
            return ["Hello", " from", " the", " fake", " backend."]
        if self._kind == "tokens":
            return [f"t{i} " for i in range(self._arg or 16)]
        text = _prompt_text(request)
        if self._kind == "cut":
            at = self._arg or 0
            return [text[:at], text[at:]]
        words = text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)] if text else [""]

    async def chat(self, request: Request) -> ChatResponse:
        pieces, finish = _apply_limits(self._pieces(request), request)
        if self._kind == "slow":
            await asyncio.sleep((self._arg or 100) / 1000 * len(pieces))
        text = "".join(pieces)
        return ChatResponse(
            model=request.model,
            text=text,
            finish_reason=finish,
            usage=Usage(input_tokens=_count(_prompt_text(request)), output_tokens=len(pieces)),
        )

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        pieces, finish = _apply_limits(self._pieces(request), request)
        delay = (self._arg or 100) / 1000 if self._kind == "slow" else 0.0
        for i, piece in enumerate(pieces):
            if delay:
                await asyncio.sleep(delay)
            if self._kind == "broken" and i == 2:
                raise errors.UpstreamError(f"fake backend {self.name}: scripted failure mid-stream")
            yield Chunk(text=piece)
        yield Chunk(
            finish_reason=finish,
            usage=Usage(input_tokens=_count(_prompt_text(request)), output_tokens=len(pieces)),
        )


def _prompt_text(request: Request) -> str:
    if isinstance(request, ChatRequest):
        for message in reversed(request.messages):
            if message.role == "user":
                return message.text
        return ""
    return request.prompt


def _count(text: str) -> int:
    return len(text.split())


def _apply_limits(pieces: list[str], request: Request) -> tuple[list[str], FinishReason]:
    limit = request.sampling.max_tokens
    if limit is not None and len(pieces) > limit:
        return pieces[:limit], FinishReason.LENGTH
    return pieces, FinishReason.STOP
