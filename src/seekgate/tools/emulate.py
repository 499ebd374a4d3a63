"""Tool calling for models that have none (DeepSeek-Coder, SmolLM2): the tools are described in
the prompt, and the output is constrained by a grammar built from their schemas, so that a call
is always valid JSON that matches its tool's input schema.

A call is `{"name": "<tool>", "arguments": {...}}`; several (parallel) calls are a JSON array of
them. With tool_choice auto the grammar also allows prose, which must not start with `{` or `[`.

Servers that take a JSON schema rather than a grammar (vLLM, Ollama, mistralrs: `response_format`
json_schema) cannot say "a call or free prose"; for tool_choice auto they get a schema whose other
branch is an envelope, `{"content": "<prose>"}`, which `ToolCallStream` unwraps as it streams.

`prompt_messages` gives the template-ready turns both kinds of backend send: the tools described
in a system message, tool results as user turns and earlier calls as JSON text (the chat templates
of models without tool use have no tool role and no slot for calls).
"""

from __future__ import annotations

import json
import os
from typing import Any

import msgspec

from seekgate import errors
from seekgate.core.types import ChatRequest, ImagePart, Message, Request, Role, ToolCall, ToolSpec
from seekgate.tools.grammar import schema_to_gbnf, tighten

__all__ = ["ENVELOPE", "call_schema", "grammar", "new_call_id", "parse_answer", "parse_calls", "prompt_messages", "tool_prompt", "uses_tools"]

ENVELOPE: dict[str, Any] = {
    "type": "object",
    "properties": {"content": {"type": "string"}},
    "required": ["content"],
    "additionalProperties": False,
}
"""Prose, for servers constrained by a JSON schema when tool_choice is auto."""


def uses_tools(request: Request) -> bool:
    return isinstance(request, ChatRequest) and bool(request.tools) and request.tool_choice.mode != "none"


def _selected(request: ChatRequest) -> tuple[ToolSpec, ...]:
    choice = request.tool_choice
    if choice.mode == "tool":
        chosen = tuple(t for t in request.tools if t.name == choice.name)
        if not chosen:
            raise errors.InvalidRequest(
                f"tool_choice names {choice.name!r}, which is not among the tools: {', '.join(t.name for t in request.tools)}",
                param="tool_choice",
            )
        return chosen
    return request.tools


def tool_prompt(request: ChatRequest) -> str:
    """The system-prompt section that tells the model its tools and the call format."""
    lines = ["You can call tools. The tools:"]
    for tool in _selected(request):
        lines.append(f"- {tool.name}: {tool.description or '(no description)'}")
        lines.append(f"  arguments (JSON schema): {json.dumps(tool.parameters or {'type': 'object'})}")
    many = " To call several tools at once, answer with a JSON array of such objects." if request.parallel_tool_calls else ""
    if request.tool_choice.mode in ("required", "tool"):
        lines.append('Answer with a tool call only: a JSON object {"name": TOOL, "arguments": {...}}.' + many)
    else:
        lines.append(
            'To call a tool, answer with only a JSON object {"name": TOOL, "arguments": {...}}, nothing else.'
            + many
            + " If no tool is needed, answer in plain text."
        )
    return "\n".join(lines)


SMALL_BUDGET = 512
"""Below this many tokens for the answer, strings and arrays without bounds get bounds that let
a call finish within the budget: a small model can loop inside a string until the budget ends
and leave a call that is not valid JSON. Larger budgets leave schemas as they are."""


def call_schema(request: ChatRequest, *, envelope: bool = False, budget: int | None = None) -> dict[str, Any]:
    """The JSON schema of a valid answer: a call (or, when parallel calls are allowed, one call
    or an array of them); with `envelope`, for tool_choice auto, also `{"content": prose}`;
    with a small `budget` (tokens), strings and arrays bounded so a call can finish in it.

    A named tool that the caller forces is called exactly once, as OpenAI and Anthropic clients
    expect of a forced call (a small model otherwise repeats it)."""
    calls = [
        {
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": _bounded(t.parameters or {"type": "object"}, budget)},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for t in _selected(request)
    ]
    one: dict[str, Any] = calls[0] if len(calls) == 1 else {"anyOf": calls}
    several = request.parallel_tool_calls and request.tool_choice.mode != "tool"
    schema = {"anyOf": [one, {"type": "array", "items": one, "minItems": 1}]} if several else one
    if envelope and request.tool_choice.mode not in ("required", "tool"):
        schema = {"anyOf": [schema, ENVELOPE]}
    return tighten(schema)


def _bounded(schema: dict[str, Any], budget: int | None) -> dict[str, Any]:
    if budget is None or budget >= SMALL_BUDGET:
        return schema
    strings = max(1, _count_strings(schema))
    chars = max(16, min(400, (budget - 24) * 2 // (strings + 1)))  # about two characters a token
    return _bound(schema, chars, max(1, budget // 40))


def _count_strings(node: Any) -> int:
    """How many strings without bounds of their own the schema has (they share the budget)."""
    if isinstance(node, dict):
        own = 1 if node.get("type") == "string" and not any(k in node for k in ("enum", "const", "pattern", "format", "maxLength")) else 0
        return own + sum(_count_strings(v) for k, v in node.items() if k not in ("enum", "const", "default", "examples"))
    if isinstance(node, list):
        return sum(_count_strings(v) for v in node)
    return 0


def _bound(node: Any, chars: int, items: int) -> Any:
    if isinstance(node, list):
        return [_bound(n, chars, items) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: (v if k in ("enum", "const", "default", "examples") else _bound(v, chars, items)) for k, v in node.items()}
    free = not any(k in out for k in ("enum", "const", "pattern", "format"))
    if out.get("type") == "string" and free and "maxLength" not in out and out.get("minLength", 0) <= chars:
        out["maxLength"] = chars
    if out.get("type") == "array" and "maxItems" not in out:
        out["maxItems"] = max(items, out.get("minItems", 0))
    return out


def grammar(request: ChatRequest, budget: int | None = None) -> str:
    """GBNF that admits exactly the valid calls (and prose, when tool_choice is auto)."""
    rules = schema_to_gbnf(call_schema(request, budget=budget), param="tools").replace("root ::=", "call ::=", 1)
    if request.tool_choice.mode in ("required", "tool"):
        return rules + "\nroot ::= call\n"
    return rules + "\nroot ::= call | prose\nprose ::= [^{\\[ \\t\\n] [^\\x00]*\n"


def prompt_messages(request: ChatRequest) -> list[dict[str, str]]:
    """Role/content turns for a model without tool use: one system message first (the tools
    described in it, when the request uses them), tool results as user turns, calls as JSON."""
    messages = [_plain_turn(m) for m in request.messages]
    if uses_tools(request):
        at = next((i for i, m in enumerate(messages) if m["role"] != "system"), len(messages))
        messages.insert(at, {"role": "system", "content": tool_prompt(request)})
    # Many chat templates take one system message at most: join the leading ones.
    lead = next((i for i, m in enumerate(messages) if m["role"] != "system"), len(messages))
    if lead > 1:
        messages = [{"role": "system", "content": "\n\n".join(m["content"] for m in messages[:lead])}, *messages[lead:]]
    return messages


def _plain_turn(message: Message) -> dict[str, str]:
    if any(isinstance(p, ImagePart) for p in message.content):
        raise errors.Unsupported("this model cannot see images; send text only or route to a vision model", param="messages")
    content = message.text
    if message.role is Role.TOOL:
        return {"role": "user", "content": f"Result of tool call {message.tool_call_id}:\n{content}"}
    if message.tool_calls:
        calls = [{"name": c.name, "arguments": _arguments(c.arguments)} for c in message.tool_calls]
        content = (content + "\n" if content else "") + msgspec.json.encode(calls).decode()
    return {"role": message.role.value, "content": content}


def _arguments(text: str) -> Any:
    try:
        return json.loads(text or "{}")
    except ValueError:
        return text


def new_call_id() -> str:
    return "call_" + os.urandom(12).hex()


def parse_answer(text: str) -> tuple[str, tuple[ToolCall, ...] | None]:
    """A constrained answer as (prose, calls): the calls when it is calls, the prose (unwrapped
    from its envelope, if any) when it is not."""
    calls = parse_calls(text)
    if calls:
        return "", calls
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            return text, None
        if isinstance(data, dict) and set(data) == {"content"} and isinstance(data["content"], str):
            return data["content"], None
    return text, None


def parse_calls(text: str) -> tuple[ToolCall, ...] | None:
    """The tool calls in a constrained answer, or None when the answer is prose."""
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        data = json.loads(stripped)
    except ValueError:
        return None  # cut by max_tokens before the call was complete
    items = data if isinstance(data, list) else [data]
    return tuple(
        ToolCall(new_call_id(), item["name"], json.dumps(item["arguments"], ensure_ascii=False))
        for item in items
        if isinstance(item, dict) and "name" in item and "arguments" in item
    ) or None
