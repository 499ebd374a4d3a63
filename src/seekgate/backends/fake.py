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

Tool-calling scripts, for the scalpel loop (each turn is picked by how many assistant turns the
conversation already has, so a chore replays the same way every time):

    toolmess      turn 1: a call wrapped in prose (text, no tool call); turn 2: `read_file` with
                  an argument it does not have; then `finish` with an answer: a model that
                  recovers from malformed calls
    toolbad       every turn a call wrapped in prose, never a valid call
    script        replays the lines of the first user message holding `@call NAME {JSON
                  arguments}` (a tool call) or `@say TEXT` (prose, no call), one a turn; past the
                  last, calls `finish` with the answer "script ended". `@wait MS` lines delay
                  the turn of the line after them by MS milliseconds (so a test can cancel mid-chore)
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from seekgate import errors
from seekgate.backends.base import Capabilities, Health
from seekgate.core.types import ChatRequest, ChatResponse, Chunk, FinishReason, Request, Role, ToolCall, ToolCallDelta, Usage

__all__ = ["FakeBackend"]

_ERRORS: dict[int, type[errors.UpstreamError]] = {
    502: errors.UpstreamError,
    503: errors.UpstreamUnavailable,
    504: errors.UpstreamTimeout,
}

_KINDS = frozenset(
    {"echo", "fixed", "tokens", "slow", "flaky", "down", "error", "broken", "cut", "toolmess", "toolbad", "script"}
)
_SCRIPTED = frozenset({"toolmess", "toolbad", "script"})
_SCRIPT_LINE = re.compile(r"^(?:[^\n]*?[ \t])??@(call|say|wait) ([^\n]*)$", re.MULTILINE)
"""A script line: its marker may follow other text on the line (`Task: @call ...`)."""
_PROSE_CALL = 'I will look at the project first. {"name": "list_files", "arguments": {}}'


class FakeBackend:
    def __init__(self, name: str, behaviour: str) -> None:
        self.name = name
        kind, _, arg = behaviour.partition("-")
        if kind not in _KINDS:
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

    async def _scripted(self, request: Request) -> tuple[str, tuple[ToolCall, ...]]:
        """This turn's answer of a tool-calling script: prose, or one tool call."""
        self._calls += 1
        messages = request.messages if isinstance(request, ChatRequest) else ()
        turn = sum(1 for m in messages if m.role == Role.ASSISTANT)
        call_id = f"call_fake_{turn}"
        if self._kind == "toolbad" or (self._kind == "toolmess" and turn == 0):
            return _PROSE_CALL, ()
        if self._kind == "toolmess":
            if turn == 1:
                return "", (ToolCall(call_id, "read_file", '{"file": "README.md"}'),)
            return "", (ToolCall(call_id, "finish", '{"answer": "recovered after 2 invalid calls"}'),)
        first = next((m.text for m in messages if m.role == Role.USER), "")
        lines: list[tuple[float, str, str]] = []  # (seconds to wait, verb, rest of the line)
        wait = 0.0
        for verb, rest in _SCRIPT_LINE.findall(first):
            if verb == "wait" and rest.strip().isdigit():
                wait += int(rest) / 1000
            elif verb in ("call", "say"):
                lines.append((wait, verb, rest.strip()))
                wait = 0.0
        if turn >= len(lines):
            return "", (ToolCall(call_id, "finish", '{"answer": "script ended"}'),)
        wait, verb, rest = lines[turn]
        if wait:
            await asyncio.sleep(wait)
        if verb == "say":
            return rest, ()
        name, _, arguments = rest.strip().partition(" ")
        return "", (ToolCall(call_id, name, arguments.strip() or "{}"),)

    async def _scripted_response(self, request: Request) -> ChatResponse:
        text, calls = await self._scripted(request)
        output = _count(text) + sum(_count(c.arguments) for c in calls)
        usage = Usage(input_tokens=_count(_prompt_text(request)), output_tokens=output)
        finish = FinishReason.TOOL_CALLS if calls else FinishReason.STOP
        return ChatResponse(model=request.model, text=text, finish_reason=finish, usage=usage, tool_calls=calls)

    async def chat(self, request: Request) -> ChatResponse:
        if self._kind in _SCRIPTED:
            return await self._scripted_response(request)
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
        if self._kind in _SCRIPTED:
            answer = await self._scripted_response(request)
            deltas = tuple(ToolCallDelta(i, c.id, c.name, c.arguments) for i, c in enumerate(answer.tool_calls))
            yield Chunk(text=answer.text, tool_calls=deltas)
            yield Chunk(finish_reason=answer.finish_reason, usage=answer.usage)
            return
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
