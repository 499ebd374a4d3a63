"""Tool calling for models that have none (DeepSeek-Coder, SmolLM2): the tools are described in
the prompt, and the output is constrained by a grammar built from their schemas, so that a call
is always valid JSON that matches its tool's input schema.

A call is `{"name": "<tool>", "arguments": {...}}`; several (parallel) calls are a JSON array of
them. With tool_choice auto the grammar also allows prose, which must not start with `{` or `[`.
"""

from __future__ import annotations

import json
import os
from typing import Any


from seekgate import errors
from seekgate.core.types import ChatRequest, ToolCall, ToolSpec
from seekgate.tools.grammar import schema_to_gbnf

__all__ = ["grammar", "new_call_id", "parse_calls", "tool_prompt"]


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


def grammar(request: ChatRequest) -> str:
    """GBNF that admits exactly the valid calls (and prose, when tool_choice is auto)."""
    calls = [
        {
            "type": "object",
            "properties": {"name": {"const": t.name}, "arguments": t.parameters or {"type": "object"}},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for t in _selected(request)
    ]
    one: dict[str, Any] = calls[0] if len(calls) == 1 else {"anyOf": calls}
    schema = {"anyOf": [one, {"type": "array", "items": one, "minItems": 1}]} if request.parallel_tool_calls else one
    rules = schema_to_gbnf(schema, param="tools").replace("root ::=", "call ::=", 1)
    if request.tool_choice.mode in ("required", "tool"):
        return rules + "\nroot ::= call\n"
    return rules + "\nroot ::= call | prose\nprose ::= [^{\\[ \\t\\n] [^\\x00]*\n"


def new_call_id() -> str:
    return "call_" + os.urandom(12).hex()


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
