"""Anthropic Messages wire <-> neutral core types, and the Messages API's event stream."""

from __future__ import annotations

import fnmatch
from typing import Any

import msgspec

from seekgate import errors
from seekgate.api.anthropic import wire
from seekgate.core import types as core

__all__ = ["StreamWriter", "chat_request", "error_body", "map_model", "message_response", "stop_reason"]

# Anthropic's error types by HTTP status.
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
                413: "request_too_large", 429: "rate_limit_error", 503: "overloaded_error"}  # fmt: skip


def map_model(name: str, rules: tuple[tuple[str, str], ...]) -> str:
    """The alias for a model name Claude Code sends (claude-3-5-haiku-..., claude-sonnet-4-...)."""
    for pattern, alias in rules:
        if fnmatch.fnmatchcase(name, pattern):
            return alias
    return name


def _system(system: str | list[wire.TextBlock] | None) -> tuple[core.Message, ...]:
    if system is None:
        return ()
    text = system if isinstance(system, str) else "\n\n".join(b.text for b in system)
    return (core.Message(role=core.Role.SYSTEM, content=(core.TextPart(text),)),) if text else ()


def _image(block: wire.ImageBlock) -> core.ImagePart:
    src = block.source
    return core.ImagePart(src.url if isinstance(src, wire.URLSource) else f"data:{src.media_type};base64,{src.data}")


def _messages(body: wire.MessagesRequest | wire.CountTokensRequest) -> tuple[core.Message, ...]:
    out: list[core.Message] = list(_system(body.system))
    for m in body.messages:
        blocks = [wire.TextBlock(m.content)] if isinstance(m.content, str) else m.content
        parts: list[core.Part] = []
        calls: list[core.ToolCall] = []
        for block in blocks:
            if isinstance(block, wire.TextBlock):
                parts.append(core.TextPart(block.text))
            elif isinstance(block, wire.ImageBlock):
                parts.append(_image(block))
            elif isinstance(block, wire.ToolUseBlock):
                calls.append(core.ToolCall(block.id, block.name, msgspec.json.encode(block.input).decode()))
            elif isinstance(block, wire.ToolResultBlock):
                # A tool result is its own neutral message, in order, as OpenAI has them.
                if parts:
                    out.append(core.Message(role=core.Role.USER, content=tuple(parts)))
                    parts = []
                content = block.content if isinstance(block.content, str) else "".join(
                    b.text for b in block.content if isinstance(b, wire.TextBlock)
                )
                out.append(core.Message(role=core.Role.TOOL, content=(core.TextPart(content),), tool_call_id=block.tool_use_id))
            # thinking blocks from earlier turns carry nothing a local model can use
        role = core.Role.USER if m.role == "user" else core.Role.ASSISTANT
        if parts or calls:
            out.append(core.Message(role=role, content=tuple(parts), tool_calls=tuple(calls)))
    return tuple(out)


def chat_request(body: wire.MessagesRequest, model: str) -> core.ChatRequest:
    tools = tuple(core.ToolSpec(t.name, t.description, t.input_schema) for t in body.tools or ())
    choice = core.ToolChoice()
    if body.tool_choice is not None:
        tc = body.tool_choice
        if tc.type == "tool" and not tc.name:
            raise errors.InvalidRequest("tool_choice.name: a tool choice of type tool names the tool", param="tool_choice.name")
        choice = core.ToolChoice(mode={"auto": "auto", "any": "required", "tool": "tool", "none": "none"}[tc.type], name=tc.name)
    metadata = {"user_id": body.metadata.user_id} if body.metadata and body.metadata.user_id else {}
    return core.ChatRequest(
        model=model,
        messages=_messages(body),
        sampling=core.Sampling(
            max_tokens=body.max_tokens,
            temperature=body.temperature,
            top_p=body.top_p,
            top_k=body.top_k,
            stop=tuple(body.stop_sequences or ()),
        ),
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=not (body.tool_choice and body.tool_choice.disable_parallel_tool_use),
        metadata=metadata,
    )


def count_request(body: wire.CountTokensRequest, model: str) -> core.ChatRequest:
    tools = tuple(core.ToolSpec(t.name, t.description, t.input_schema) for t in body.tools or ())
    return core.ChatRequest(model=model, messages=_messages(body), tools=tools)


def stop_reason(reason: core.FinishReason | None, stop_sequence: str | None) -> str:
    if reason is core.FinishReason.LENGTH:
        return "max_tokens"
    if reason is core.FinishReason.TOOL_CALLS:
        return "tool_use"
    if reason is core.FinishReason.CONTENT_FILTER:
        return "refusal"  # a guard stopped the answer (Anthropic's own name for a refused turn)
    if stop_sequence:
        return "stop_sequence"
    return "end_turn"


def _usage(u: core.Usage) -> dict[str, int]:
    return {"input_tokens": u.input_tokens - u.cached_input_tokens, "output_tokens": u.output_tokens,
            "cache_read_input_tokens": u.cached_input_tokens, "cache_creation_input_tokens": 0}  # fmt: skip


def message_response(mid: str, model: str, resp: core.ChatResponse) -> bytes:
    content: list[dict[str, Any]] = [{"type": "text", "text": resp.text}] if resp.text or not resp.tool_calls else []
    for call in resp.tool_calls:
        content.append({"type": "tool_use", "id": tool_use_id(call.id), "name": call.name, "input": _arguments(call.arguments)})
    return msgspec.json.encode(
        {
            "id": mid,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason(resp.finish_reason, resp.stop_sequence),
            "stop_sequence": resp.stop_sequence,
            "usage": _usage(resp.usage),
            **({"seekgate": {"context": resp.context}} if resp.context is not None else {}),
        }
    )


def error_body(exc: errors.SeekgateError) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(exc.status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": exc.message}}


def _event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + msgspec.json.encode(data) + b"\n\n"


class StreamWriter:
    """Anthropic's exact event sequence: message_start, then for each content block
    content_block_start / content_block_delta... / content_block_stop, a ping, then
    message_delta (stop_reason, usage) and message_stop; on failure, an error event."""

    def __init__(self, mid: str, model: str) -> None:
        self._mid = mid
        self._model = model
        self._open: int | None = None
        self._kind = ""
        self._next = 0

    def start(self) -> bytes:
        message = {"id": self._mid, "type": "message", "role": "assistant", "model": self._model, "content": [],
                   "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}  # fmt: skip
        return _event("message_start", {"type": "message_start", "message": message}) + _event("ping", {"type": "ping"})

    def _start(self, block: dict[str, Any]) -> bytes:
        out = self._stop()
        self._open, self._next = self._next, self._next + 1
        self._kind = block["type"]
        return out + _event("content_block_start", {"type": "content_block_start", "index": self._open, "content_block": block})

    def _stop(self) -> bytes:
        if self._open is None:
            return b""
        out = _event("content_block_stop", {"type": "content_block_stop", "index": self._open})
        self._open = None
        return out

    def text(self, text: str) -> bytes:
        out = b""
        if self._open is None or self._kind != "text":
            out += self._start({"type": "text", "text": ""})
        return out + _event(
            "content_block_delta", {"type": "content_block_delta", "index": self._open, "delta": {"type": "text_delta", "text": text}}
        )

    def tool(self, delta: core.ToolCallDelta) -> bytes:
        """A tool_use block; its input arrives as input_json_delta pieces as it is generated."""
        out = b""
        if delta.id is not None:
            out += self._start({"type": "tool_use", "id": tool_use_id(delta.id), "name": delta.name or "", "input": {}})
        if delta.arguments:
            body = {"type": "content_block_delta", "index": self._open, "delta": {"type": "input_json_delta", "partial_json": delta.arguments}}
            out += _event("content_block_delta", body)
        return out

    def finish(self, chunk: core.Chunk) -> bytes:
        out = b""
        if self._next == 0:  # an empty answer still has its (empty) text block
            out += self.text("")
        out += self._stop()
        usage = _usage(chunk.usage or core.Usage())
        delta = {"stop_reason": stop_reason(chunk.finish_reason, chunk.stop_sequence), "stop_sequence": chunk.stop_sequence}
        extra = {"seekgate": {"context": chunk.context}} if chunk.context is not None else {}
        out += _event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage, **extra})
        return out + _event("message_stop", {"type": "message_stop"})

    @staticmethod
    def error(exc: errors.SeekgateError) -> bytes:
        return _event("error", error_body(exc))


def tool_use_id(call_id: str) -> str:
    """Anthropic's form of a tool call id (`toolu_...`); the id comes back as tool_use_id and
    is passed on as it is, so calls and results still pair up on any backend."""
    return call_id if call_id.startswith("toolu_") else "toolu_" + call_id.removeprefix("call_")


def _arguments(arguments: str) -> Any:
    """A call's input object. A backend that sent arguments that are not a JSON object gets
    them wrapped, not a 500."""
    try:
        value = msgspec.json.decode(arguments or "{}")
    except msgspec.DecodeError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}
