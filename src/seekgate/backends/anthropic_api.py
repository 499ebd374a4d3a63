"""The Anthropic Messages API (Claude) as a backend, over one pooled aiohttp session per
configured backend.

Neutral messages become Anthropic's turns: system messages move to `system`, tool calls become
`tool_use` blocks and tool results `tool_result` blocks in a user turn, and consecutive turns of
one role merge, because Anthropic wants user and assistant to alternate. Streams are translated
event by event, so text and a tool call's argument pieces go on as they arrive.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec

from seekgate import errors
from seekgate.backends.base import Capabilities, Health
from seekgate.backends.upstream import error_message, pooled_session, probe, sse_data, transport_error, upstream_error
from seekgate.core.types import (
    ChatRequest,
    ChatResponse,
    Chunk,
    CompletionRequest,
    FinishReason,
    ImagePart,
    Message,
    Part,
    Request,
    Role,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)
from seekgate.settings import AnthropicBackendSpec, resolve_secret

__all__ = ["AnthropicBackend", "StreamTranslator", "chat_response", "open_session", "request_body", "status_error"]

_MESSAGES = "v1/messages"
# Anthropic wants the user to speak first; a conversation that opens with an assistant turn (a
# greeting, say) gets this minimal user turn ahead of it.
_OPENING = "."


def open_session(spec: AnthropicBackendSpec) -> aiohttp.ClientSession:
    """The pooled keep-alive session for one configured Anthropic API; call inside the event loop."""
    headers = {"Content-Type": "application/json", "anthropic-version": spec.anthropic_version}
    key = resolve_secret(spec.api_key)
    if key:
        headers["x-api-key"] = key
    return pooled_session(
        spec.base_url, headers, max_connections=spec.max_connections, connect_timeout=spec.connect_timeout, read_timeout=spec.read_timeout
    )


# Anthropic's wire shapes, decoded leniently: fields and block types added later are ignored.
class _Block(msgspec.Struct):
    type: str
    text: str | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None


class _Delta(msgspec.Struct):
    type: str = ""
    text: str | None = None
    partial_json: str | None = None
    stop_reason: str | None = None
    stop_sequence: str | None = None


class _Usage(msgspec.Struct):
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_input_tokens: int | None = None
    cache_creation_input_tokens: int | None = None


class _Message(msgspec.Struct):
    content: list[_Block] = msgspec.field(default_factory=list)
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: _Usage = msgspec.field(default_factory=_Usage)


class _ErrorDetail(msgspec.Struct):
    type: str = "api_error"
    message: str = ""


class _Event(msgspec.Struct):
    type: str
    index: int = 0
    message: _Message | None = None
    content_block: _Block | None = None
    delta: _Delta | None = None
    usage: _Usage | None = None
    error: _ErrorDetail | None = None


_decode_message = msgspec.json.Decoder(_Message).decode
_decode_event = msgspec.json.Decoder(_Event).decode
_encode = msgspec.json.encode
_FINISH = {
    "end_turn": FinishReason.STOP,
    "stop_sequence": FinishReason.STOP,
    "pause_turn": FinishReason.STOP,
    "max_tokens": FinishReason.LENGTH,
    "model_context_window_exceeded": FinishReason.LENGTH,
    "tool_use": FinishReason.TOOL_CALLS,
    "refusal": FinishReason.CONTENT_FILTER,
}
_TOOL_CHOICE = {"auto": "auto", "required": "any", "tool": "tool", "none": "none"}


class AnthropicBackend:
    def __init__(self, name: str, spec: AnthropicBackendSpec, upstream_model: str, session: aiohttp.ClientSession) -> None:
        self.name = name
        self._spec = spec
        self._model = upstream_model
        self._session = session

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(completions=False, fim=False, json_schema=False, tools=True, vision=True)

    async def start(self) -> None:
        return None

    async def health(self) -> Health:
        return await probe(self._session, "v1/models", self._spec.base_url.rstrip("/"))

    async def aclose(self) -> None:
        # The session is shared by every model on this backend; the registry closes it.
        return None

    def _body(self, request: Request, stream: bool) -> bytes:
        if isinstance(request, CompletionRequest):
            raise errors.Unsupported(
                f"backend {self.name} (the Anthropic Messages API) has no text completions; use chat completions", param="prompt"
            )
        return _encode(request_body(request, self._model, self._spec.default_max_tokens, stream=stream))

    async def chat(self, request: Request) -> ChatResponse:
        body = self._body(request, stream=False)
        try:
            async with self._session.post(_MESSAGES, data=body) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise status_error(self.name, resp.status, raw, resp.headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise transport_error(self.name, self._spec.base_url, exc) from None
        return chat_response(self.name, raw, request.model)

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        body = self._body(request, stream=True)
        translator = StreamTranslator(self.name)
        try:
            async with self._session.post(_MESSAGES, data=body) as resp:
                if resp.status >= 400:
                    raise status_error(self.name, resp.status, await resp.read(), resp.headers)
                async for data in sse_data(resp.content):
                    chunk = translator.feed(data)
                    if chunk is not None:
                        yield chunk
                    if translator.done:
                        return
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise transport_error(self.name, self._spec.base_url, exc) from None
        raise errors.UpstreamError(f"backend {self.name} ended the stream before the answer finished")


def status_error(name: str, status: int, raw: bytes, headers: Any) -> errors.SeekgateError:
    """An Anthropic error answer as a gateway error: as for every server, and a refused key."""
    if status in (401, 403):
        # The gateway's own key was refused, not the caller's: a 401 would send the caller
        # looking at the wrong key, so this is an upstream failure (and the route may fall back).
        return errors.UpstreamError(
            f"backend {name} was refused by the Anthropic API ({status}): {error_message(raw)}; "
            "check the key in the environment variable its api_key names",
            code="upstream_authentication_failed",
        )
    return upstream_error(name, status, raw, headers)


# Neutral request -> Anthropic request.


def request_body(request: ChatRequest, model: str, default_max_tokens: int, *, stream: bool) -> dict[str, Any]:
    """The Messages API body for a neutral chat request."""
    if request.response_format is not None and request.response_format.type != "text":
        raise errors.Unsupported(
            "Anthropic models do not constrain answers to a JSON schema; route response_format requests to a model that does",
            param="response_format",
        )
    s = request.sampling
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": s.max_tokens if s.max_tokens is not None else default_max_tokens,
        "messages": _turns(request.messages),
        "stream": stream,
    }
    system = [{"type": "text", "text": m.text} for m in request.messages if m.role is Role.SYSTEM and m.text]
    if system:
        body["system"] = system
    for key in ("temperature", "top_p", "top_k"):
        value = getattr(s, key)
        if value is not None:
            body[key] = value
    if s.stop:
        body["stop_sequences"] = list(s.stop)
    if request.tools:
        body["tools"] = [_tool(t) for t in request.tools]
        choice: dict[str, Any] = {"type": _TOOL_CHOICE[request.tool_choice.mode]}
        if request.tool_choice.mode == "tool":
            choice["name"] = request.tool_choice.name
        if not request.parallel_tool_calls and request.tool_choice.mode != "none":
            choice["disable_parallel_tool_use"] = True
        body["tool_choice"] = choice
    if request.metadata.get("user_id"):
        body["metadata"] = {"user_id": request.metadata["user_id"]}
    return body


def _turns(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role is Role.SYSTEM:
            continue
        if m.role is Role.TOOL:
            role, blocks = "user", [_tool_result(m)]
        elif m.role is Role.USER:
            role, blocks = "user", _blocks(m.content)
        else:
            role, blocks = "assistant", [*_blocks(m.content), *(_tool_use(c) for c in m.tool_calls)]
        if not blocks:
            continue  # Anthropic refuses empty turns and empty text blocks
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    if not turns:
        raise errors.InvalidRequest("no user or assistant message has any content", param="messages")
    for turn in turns:
        if turn["role"] == "user":
            # Anthropic wants a user turn's tool results ahead of anything else in it.
            turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    if turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": _OPENING}]})
    return turns


def _blocks(parts: tuple[Part, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, ImagePart):
            out.append(_image(part.url))
        elif part.text:
            out.append({"type": "text", "text": part.text})
    return out


def _image(url: str) -> dict[str, Any]:
    if not url.startswith("data:"):
        return {"type": "image", "source": {"type": "url", "url": url}}
    header, comma, data = url.removeprefix("data:").partition(",")
    media_type, *params = header.split(";")
    if not comma or "base64" not in params:
        raise errors.InvalidRequest("an image data: URL must be base64: data:image/png;base64,...", param="messages")
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _tool_use(call: ToolCall) -> dict[str, Any]:
    try:
        arguments = msgspec.json.decode(call.arguments) if call.arguments.strip() else {}
    except msgspec.DecodeError:
        arguments = None
    if not isinstance(arguments, dict):
        raise errors.InvalidRequest(
            f"the arguments of tool call {call.id!r} are not a JSON object, which Anthropic needs as the call's input", param="messages"
        )
    return {"type": "tool_use", "id": call.id, "name": call.name, "input": arguments}


def _tool_result(message: Message) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id or ""}
    if any(isinstance(p, ImagePart) for p in message.content):
        block["content"] = _blocks(message.content)
    elif message.text:
        block["content"] = message.text
    return block


def _tool(tool: ToolSpec) -> dict[str, Any]:
    schema = tool.parameters or {"type": "object", "properties": {}}
    out: dict[str, Any] = {"name": tool.name, "input_schema": schema if "type" in schema else {"type": "object", **schema}}
    if tool.description:
        out["description"] = tool.description
    return out


# Anthropic response -> neutral response.


def _usage(u: _Usage) -> Usage:
    # Anthropic counts cache reads and writes apart from input_tokens; the neutral count is all
    # of the prompt, with the part read from the cache noted.
    read, written = u.cache_read_input_tokens or 0, u.cache_creation_input_tokens or 0
    return Usage(input_tokens=(u.input_tokens or 0) + read + written, output_tokens=u.output_tokens or 0, cached_input_tokens=read)


def chat_response(name: str, raw: bytes, alias: str) -> ChatResponse:
    """A Messages API response body as the neutral answer of backend `name` for model `alias`."""
    try:
        message = _decode_message(raw)
    except msgspec.DecodeError:
        raise errors.UpstreamError(f"backend {name} sent a body that is not an Anthropic message") from None
    calls = [b for b in message.content if b.type == "tool_use"]
    return ChatResponse(
        model=alias,
        text="".join(b.text or "" for b in message.content if b.type == "text"),
        finish_reason=_FINISH.get(message.stop_reason or "end_turn", FinishReason.STOP),
        usage=_usage(message.usage),
        tool_calls=tuple(
            ToolCall(id=b.id or f"toolu_{i}", name=b.name or "", arguments=_encode(b.input if b.input is not None else {}).decode())
            for i, b in enumerate(calls)
        ),
        stop_sequence=message.stop_sequence,
    )


class StreamTranslator:
    """Anthropic stream events in, neutral chunks out, one event at a time: nothing is held back
    but the finish reason and usage, which the last chunk carries."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._calls: dict[int, int] = {}
        """Content block index -> tool call index (text blocks do not count)."""
        self._with_arguments: set[int] = set()
        self._usage = _Usage()
        self._finish = FinishReason.STOP
        self._stop_sequence: str | None = None
        self.done = False

    def feed(self, data: bytes) -> Chunk | None:
        """One event's `data:` payload; the chunk it makes, if any. The last is for message_stop."""
        try:
            event = _decode_event(data)
        except msgspec.DecodeError:
            raise errors.UpstreamError(f"backend {self._name} sent a stream event that is not Anthropic JSON") from None
        if event.type == "content_block_delta" and event.delta is not None:
            delta = event.delta
            if delta.type == "text_delta" and delta.text:
                return Chunk(text=delta.text)
            call = self._calls.get(event.index)
            if delta.type == "input_json_delta" and delta.partial_json and call is not None:
                self._with_arguments.add(call)
                return Chunk(tool_calls=(ToolCallDelta(index=call, arguments=delta.partial_json),))
        elif event.type == "content_block_start" and event.content_block is not None:
            block = event.content_block
            if block.type == "tool_use":
                call = self._calls[event.index] = len(self._calls)
                return Chunk(tool_calls=(ToolCallDelta(index=call, id=block.id or f"toolu_{call}", name=block.name or ""),))
            if block.type == "text" and block.text:
                return Chunk(text=block.text)
        elif event.type == "content_block_stop":
            call = self._calls.get(event.index)
            if call is not None and call not in self._with_arguments:
                # A call without arguments streams no pieces; clients expect a JSON object.
                self._with_arguments.add(call)
                return Chunk(tool_calls=(ToolCallDelta(index=call, arguments="{}"),))
        elif event.type == "message_start" and event.message is not None:
            self._merge_usage(event.message.usage)
        elif event.type == "message_delta":
            if event.delta is not None and event.delta.stop_reason:
                self._finish = _FINISH.get(event.delta.stop_reason, FinishReason.STOP)
                self._stop_sequence = event.delta.stop_sequence
            if event.usage is not None:
                self._merge_usage(event.usage)
        elif event.type == "message_stop":
            self.done = True
            return Chunk(finish_reason=self._finish, usage=_usage(self._usage), stop_sequence=self._stop_sequence)
        elif event.type == "error":
            err = event.error or _ErrorDetail()
            raise errors.UpstreamError(f"backend {self._name} failed during the answer: {err.type}: {err.message}", code=err.type)
        # ping, thinking blocks and event types added later carry nothing a neutral answer holds
        return None

    def _merge_usage(self, usage: _Usage) -> None:
        # message_delta repeats only the counts that changed (output_tokens is cumulative).
        for field in _Usage.__struct_fields__:
            value = getattr(usage, field)
            if value is not None:
                setattr(self._usage, field, value)
