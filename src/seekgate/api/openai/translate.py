"""OpenAI wire <-> neutral core types. The only place that knows both shapes."""

from __future__ import annotations

import time
from typing import Any

import msgspec

from seekgate import errors
from seekgate.api.openai import wire
from seekgate.core import types as core

__all__ = [
    "chat_chunk",
    "chat_request",
    "chat_response",
    "completion_chunk",
    "completion_request",
    "completion_response",
    "error_body",
    "usage",
]

_ROLES = {
    "system": core.Role.SYSTEM,
    "developer": core.Role.SYSTEM,
    "user": core.Role.USER,
    "assistant": core.Role.ASSISTANT,
    "tool": core.Role.TOOL,
}


def _stop(stop: str | list[str] | None) -> tuple[str, ...]:
    if stop is None:
        return ()
    return (stop,) if isinstance(stop, str) else tuple(stop)


def _sampling(body: wire.ChatCompletionRequest | wire.CompletionRequest, max_tokens: int | None) -> core.Sampling:
    return core.Sampling(
        max_tokens=max_tokens,
        temperature=body.temperature,
        top_p=body.top_p,
        top_k=body.top_k,
        stop=_stop(body.stop),
        seed=body.seed,
        frequency_penalty=body.frequency_penalty,
        presence_penalty=body.presence_penalty,
    )


def _check_common(n: int | None, logprobs: object) -> None:
    if n not in (None, 1):
        raise errors.Unsupported("n must be 1: seekgate returns one choice per request; send several requests instead", param="n")
    if logprobs:
        raise errors.Unsupported("logprobs are not supported", param="logprobs")


def _content(message: wire.WireMessage, index: int) -> tuple[core.Part, ...]:
    content = message.content
    if content is None:
        return ()
    if isinstance(content, str):
        return (core.TextPart(content),)
    parts: list[core.Part] = []
    for part in content:
        if isinstance(part, wire.TextContentPart):
            parts.append(core.TextPart(part.text))
        else:
            parts.append(core.ImagePart(part.image_url.url))
    return tuple(parts)


def chat_request(body: wire.ChatCompletionRequest) -> core.ChatRequest:
    _check_common(body.n, body.logprobs)
    messages: list[core.Message] = []
    for i, m in enumerate(body.messages):
        if m.role == "tool" and not m.tool_call_id:
            raise errors.InvalidRequest(f"messages[{i}].tool_call_id: a tool message needs one", param=f"messages[{i}].tool_call_id")
        if m.content is None and not (m.role == "assistant" and m.tool_calls):
            raise errors.InvalidRequest(f"messages[{i}].content: a {m.role} message needs content", param=f"messages[{i}].content")
        messages.append(
            core.Message(
                role=_ROLES[m.role],
                content=_content(m, i),
                name=m.name,
                tool_calls=tuple(core.ToolCall(c.id, c.function.name, c.function.arguments) for c in m.tool_calls or ()),
                tool_call_id=m.tool_call_id,
            )
        )
    fmt = None
    if body.response_format is not None and body.response_format.type != "text":
        rf = body.response_format
        if rf.type == "json_schema":
            if rf.json_schema is None or rf.json_schema.schema is None:
                raise errors.InvalidRequest("response_format.json_schema: needs a schema", param="response_format.json_schema")
            fmt = core.ResponseFormat(type="json_schema", schema=rf.json_schema.schema, name=rf.json_schema.name)
        else:
            fmt = core.ResponseFormat(type="json_object")
    tools = tuple(core.ToolSpec(t.function.name, t.function.description, t.function.parameters) for t in body.tools or ())
    choice = core.ToolChoice()
    if isinstance(body.tool_choice, wire.ToolChoiceFunction):
        choice = core.ToolChoice(mode="tool", name=body.tool_choice.function.name)
    elif body.tool_choice is not None:
        choice = core.ToolChoice(mode=body.tool_choice)
    return core.ChatRequest(
        model=body.model or "",
        messages=tuple(messages),
        sampling=_sampling(body, body.max_completion_tokens or body.max_tokens),
        response_format=fmt,
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=body.parallel_tool_calls is not False,
        metadata=(body.metadata or {}) | ({"user": body.user} if body.user else {}),
    )


def completion_request(body: wire.CompletionRequest) -> core.CompletionRequest:
    _check_common(body.n, body.logprobs)
    if body.echo:
        raise errors.Unsupported("echo is not supported", param="echo")
    prompt = body.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise errors.Unsupported("send one prompt per request (a list of several prompts is not supported)", param="prompt")
        prompt = prompt[0]
    return core.CompletionRequest(
        model=body.model or "",
        prompt=prompt,
        suffix=body.suffix,
        sampling=_sampling(body, body.max_tokens),
    )


def usage(u: core.Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total_tokens,
    }
    if u.cached_input_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": u.cached_input_tokens}
    return out


def _finish(reason: core.FinishReason | None) -> str | None:
    if reason is None:
        return None
    return "stop" if reason is core.FinishReason.CANCELLED else reason.value


def _tool_calls(calls: tuple[core.ToolCall, ...]) -> list[dict[str, Any]]:
    return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}} for c in calls]


def chat_response(rid: str, alias: str, resp: core.ChatResponse) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": resp.text if resp.text or not resp.tool_calls else None}
    if resp.tool_calls:
        message["tool_calls"] = _tool_calls(resp.tool_calls)
    return msgspec.json.encode(
        {
            "id": rid,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": alias,
            "choices": [{"index": 0, "message": message, "finish_reason": _finish(resp.finish_reason), "logprobs": None}],
            "usage": usage(resp.usage),
            **({"seekgate": {"context": resp.context}} if resp.context is not None else {}),
        }
    )


def chat_chunk(rid: str, created: int, alias: str, chunk: core.Chunk | None, *, first: bool = False) -> bytes:
    """One SSE event. `chunk=None` with `first` sends the opening role delta."""
    delta: dict[str, Any] = {}
    if first:
        delta = {"role": "assistant", "content": ""}
    elif chunk is not None:
        if chunk.text:
            delta["content"] = chunk.text
        if chunk.tool_calls:
            delta["tool_calls"] = [
                {"index": d.index, **({"id": d.id, "type": "function"} if d.id else {}),
                 "function": {k: v for k, v in (("name", d.name), ("arguments", d.arguments)) if v is not None}}
                for d in chunk.tool_calls
            ]
    finish = _finish(chunk.finish_reason) if chunk is not None else None
    return _event(
        {
            "id": rid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": alias,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            **({"seekgate": {"context": chunk.context}} if chunk is not None and chunk.context is not None else {}),
        }
    )


def usage_chunk(rid: str, created: int, alias: str, u: core.Usage, obj: str) -> bytes:
    return _event({"id": rid, "object": obj, "created": created, "model": alias, "choices": [], "usage": usage(u)})


def completion_response(rid: str, alias: str, resp: core.ChatResponse) -> bytes:
    return msgspec.json.encode(
        {
            "id": rid,
            "object": "text_completion",
            "created": int(time.time()),
            "model": alias,
            "choices": [{"index": 0, "text": resp.text, "finish_reason": _finish(resp.finish_reason), "logprobs": None}],
            "usage": usage(resp.usage),
        }
    )


def completion_chunk(rid: str, created: int, alias: str, chunk: core.Chunk) -> bytes:
    return _event(
        {
            "id": rid,
            "object": "text_completion",
            "created": created,
            "model": alias,
            "choices": [{"index": 0, "text": chunk.text, "finish_reason": _finish(chunk.finish_reason), "logprobs": None}],
        }
    )


def error_body(exc: errors.SeekgateError) -> dict[str, Any]:
    return {"error": {"message": exc.message, "type": exc.kind, "param": exc.param, "code": exc.code}}


def error_event(exc: errors.SeekgateError) -> bytes:
    return _event(error_body(exc))


def _event(obj: Any) -> bytes:
    return b"data: " + msgspec.json.encode(obj) + b"\n\n"


DONE = b"data: [DONE]\n\n"
