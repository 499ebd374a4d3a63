"""Any OpenAI-compatible server: vLLM, Ollama's /v1, mistralrs-server, llama.cpp's server,
mlx_lm.server, LM Studio, or a cloud API.

One pooled aiohttp session per configured backend is injected, shared by every model on it.
Streams are passed through chunk by chunk as they arrive; upstream failures become the
gateway's own errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec

from seekgate import errors
from seekgate.backends.base import Capabilities, Health
from seekgate.backends.upstream import pooled_session, probe, sse_data, transport_error, upstream_error
from seekgate.core.types import (
    ChatRequest,
    ChatResponse,
    Chunk,
    FinishReason,
    ImagePart,
    Message,
    Request,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from seekgate.settings import OpenAIBackendSpec, resolve_secret
from seekgate.tools.emulate import call_schema, parse_answer, prompt_messages, uses_tools
from seekgate.tools.emulate import grammar as tool_grammar
from seekgate.tools.stream import ToolCallStream

__all__ = ["OpenAICompatBackend", "open_session"]


def open_session(spec: OpenAIBackendSpec) -> aiohttp.ClientSession:
    """The pooled keep-alive session for one configured server; call inside the event loop."""
    headers = {"Content-Type": "application/json"}
    key = resolve_secret(spec.api_key)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return pooled_session(
        spec.base_url, headers, max_connections=spec.max_connections, connect_timeout=spec.connect_timeout, read_timeout=spec.read_timeout
    )


# Upstream wire shapes, decoded leniently: servers differ, and unknown fields are ignored.
class _Function(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class _ToolCall(msgspec.Struct):
    index: int = 0
    id: str | None = None
    function: _Function = msgspec.field(default_factory=_Function)


class _Delta(msgspec.Struct):
    content: str | None = None
    tool_calls: list[_ToolCall] | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None
    message: _Delta | None = None
    text: str | None = None
    finish_reason: str | None = None


class _Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_tokens_details: dict[str, Any] | None = None


class _Body(msgspec.Struct):
    choices: list[_Choice] = msgspec.field(default_factory=list)
    usage: _Usage | None = None
    model: str | None = None


_decode_body = msgspec.json.Decoder(_Body).decode
_encode = msgspec.json.encode
_FINISH = {r.value: r for r in FinishReason} | {"eos": FinishReason.STOP, "function_call": FinishReason.TOOL_CALLS}


class OpenAICompatBackend:
    def __init__(self, name: str, spec: OpenAIBackendSpec, upstream_model: str, session: aiohttp.ClientSession) -> None:
        self.name = name
        self._spec = spec
        self._model = upstream_model
        self._session = session

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(fim=True, json_schema=True, tools=True, vision=True)

    async def start(self) -> None:
        return None

    async def health(self) -> Health:
        return await probe(self._session, "models", self._spec.base_url.rstrip("/"))

    async def aclose(self) -> None:
        # The session is shared by every model on this backend; the registry closes it.
        return None

    def _payload(self, request: Request, stream: bool) -> tuple[str, dict[str, Any]]:
        s = request.sampling
        body: dict[str, Any] = {"model": self._model, "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        for key in ("temperature", "top_p", "seed", "frequency_penalty", "presence_penalty"):
            value = getattr(s, key)
            if value is not None:
                body[key] = value
        if s.max_tokens is not None:
            body["max_tokens"] = s.max_tokens
        if s.stop:
            body["stop"] = list(s.stop)
        if isinstance(request, ChatRequest):
            if self._emulates(request):
                # The server's model has no tool use: describe the tools and constrain the answer.
                body["messages"] = prompt_messages(request)
                if self._spec.tool_mode == "grammar":
                    body["grammar"] = tool_grammar(request, s.max_tokens)
                else:
                    schema = call_schema(request, envelope=True, budget=s.max_tokens)
                    body["response_format"] = {"type": "json_schema", "json_schema": {"name": "tool_call", "schema": schema, "strict": True}}
                return "chat/completions", body
            body["messages"] = [_message(m) for m in request.messages]
            if request.response_format is not None and request.response_format.type != "text":
                body["response_format"] = _response_format(request)
            if request.tools:
                body["tools"] = [
                    {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
                    for t in request.tools
                ]
                choice = request.tool_choice
                body["tool_choice"] = (
                    {"type": "function", "function": {"name": choice.name}} if choice.mode == "tool" else choice.mode
                )
                body["parallel_tool_calls"] = request.parallel_tool_calls
            return "chat/completions", body
        body["prompt"] = request.prompt
        if request.suffix is not None:
            body["suffix"] = request.suffix
        return "completions", body

    def _emulates(self, request: Request) -> bool:
        return self._spec.tool_mode != "native" and uses_tools(request)

    async def chat(self, request: Request) -> ChatResponse:
        path, body = self._payload(request, stream=False)
        try:
            async with self._session.post(path, data=_encode(body)) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise upstream_error(self.name, resp.status, raw, resp.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise transport_error(self.name, self._spec.base_url, exc) from None
        try:
            parsed = _decode_body(raw)
        except msgspec.DecodeError:
            raise errors.UpstreamError(f"backend {self.name} sent a body that is not an OpenAI response") from None
        if not parsed.choices:
            raise errors.UpstreamError(f"backend {self.name} sent a response with no choices")
        choice = parsed.choices[0]
        message = choice.message or _Delta()
        calls = tuple(
            ToolCall(id=c.id or f"call_{i}", name=c.function.name or "", arguments=c.function.arguments or "")
            for i, c in enumerate(message.tool_calls or ())
        )
        text = message.content if message.content is not None else (choice.text or "")
        finish = _FINISH.get(choice.finish_reason or "stop", FinishReason.STOP)
        if self._emulates(request):
            text, emulated = parse_answer(text)
            if emulated:
                calls, finish = emulated, FinishReason.TOOL_CALLS
        return ChatResponse(model=request.model, text=text, finish_reason=finish, usage=_usage(parsed.usage), tool_calls=calls)

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        path, body = self._payload(request, stream=True)
        finish: FinishReason | None = None
        usage: Usage | None = None
        pieces = 0
        emulated = ToolCallStream() if self._emulates(request) else None
        try:
            async with self._session.post(path, data=_encode(body)) as resp:
                if resp.status >= 400:
                    raise upstream_error(self.name, resp.status, await resp.read(), resp.headers)
                async for data in sse_data(resp.content):
                    if data == b"[DONE]":
                        break
                    try:
                        parsed = _decode_body(data)
                    except msgspec.DecodeError:
                        raise errors.UpstreamError(f"backend {self.name} sent a stream event that is not JSON") from None
                    if parsed.usage is not None:
                        usage = _usage(parsed.usage)
                    if not parsed.choices:
                        continue
                    choice = parsed.choices[0]
                    delta = choice.delta or _Delta()
                    text = delta.content if delta.content is not None else (choice.text or "")
                    calls = tuple(
                        ToolCallDelta(index=c.index, id=c.id, name=c.function.name, arguments=c.function.arguments or "")
                        for c in delta.tool_calls or ()
                    )
                    if choice.finish_reason:
                        finish = _FINISH.get(choice.finish_reason, FinishReason.STOP)
                    if emulated is not None and text:
                        text, deltas = emulated.feed(text)
                        calls = tuple(deltas)
                    if text or calls:
                        pieces += 1
                        yield Chunk(text=text, tool_calls=calls)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise transport_error(self.name, self._spec.base_url, exc) from None
        if finish is None:
            raise errors.UpstreamError(f"backend {self.name} ended the stream before the answer finished")
        if emulated is not None and emulated.mode == "calls" and finish is FinishReason.STOP:
            finish = FinishReason.TOOL_CALLS
        # Servers that ignore stream_options send no usage; they stream one token per chunk
        # (llama.cpp, vLLM, Ollama), so the chunk count is the completion token count.
        yield Chunk(finish_reason=finish, usage=usage or Usage(output_tokens=pieces))


def _message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role.value}
    if any(isinstance(p, ImagePart) for p in message.content):
        out["content"] = [
            {"type": "image_url", "image_url": {"url": p.url}} if isinstance(p, ImagePart) else {"type": "text", "text": p.text}
            for p in message.content
        ]
    else:
        out["content"] = message.text
    if message.name:
        out["name"] = message.name
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in message.tool_calls
        ]
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    return out


def _response_format(request: ChatRequest) -> dict[str, Any]:
    fmt = request.response_format
    assert fmt is not None
    if fmt.type == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": fmt.name or "response", "schema": fmt.schema or {}, "strict": True}}
    return {"type": "json_object"}


def _usage(usage: _Usage | None) -> Usage:
    if usage is None:
        return Usage()
    cached = (usage.prompt_tokens_details or {}).get("cached_tokens") or 0
    return Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens, cached_input_tokens=cached)
