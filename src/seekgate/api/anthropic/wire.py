"""Anthropic Messages API wire models, decoded and validated by msgspec."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "Base64Source",
    "ContentBlock",
    "CountTokensRequest",
    "ImageBlock",
    "MessagesRequest",
    "TextBlock",
    "Tool",
    "ToolResultBlock",
    "ToolUseBlock",
    "URLSource",
    "WireMessage",
]


class _Wire(msgspec.Struct, omit_defaults=True):
    pass


class TextBlock(_Wire, tag="text", tag_field="type"):
    text: str
    cache_control: dict[str, Any] | None = None


class Base64Source(_Wire, tag="base64", tag_field="type"):
    media_type: str
    data: str


class URLSource(_Wire, tag="url", tag_field="type"):
    url: str


class ImageBlock(_Wire, tag="image", tag_field="type"):
    source: Base64Source | URLSource
    cache_control: dict[str, Any] | None = None


class ToolUseBlock(_Wire, tag="tool_use", tag_field="type"):
    id: str
    name: str
    input: dict[str, Any]
    cache_control: dict[str, Any] | None = None


class ToolResultBlock(_Wire, tag="tool_result", tag_field="type"):
    tool_use_id: str
    content: str | list[TextBlock | ImageBlock] = ""
    is_error: bool = False
    cache_control: dict[str, Any] | None = None


class ThinkingBlock(_Wire, tag="thinking", tag_field="type"):
    """Sent back by clients from earlier turns; local models neither make nor need them."""

    thinking: str = ""
    signature: str = ""


class RedactedThinkingBlock(_Wire, tag="redacted_thinking", tag_field="type"):
    data: str = ""


ContentBlock = TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | RedactedThinkingBlock


class WireMessage(_Wire):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]


class Tool(_Wire):
    name: str
    input_schema: dict[str, Any]
    description: str = ""
    cache_control: dict[str, Any] | None = None


class ToolChoice(_Wire):
    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Metadata(_Wire):
    user_id: str | None = None


class MessagesRequest(_Wire):
    model: str
    max_tokens: Annotated[int, Meta(ge=1)]
    messages: Annotated[list[WireMessage], Meta(min_length=1)]
    system: str | list[TextBlock] | None = None
    stop_sequences: Annotated[list[str], Meta(max_length=16)] | None = None
    temperature: Annotated[float, Meta(ge=0.0, le=1.0)] | None = None
    top_p: Annotated[float, Meta(gt=0.0, le=1.0)] | None = None
    top_k: Annotated[int, Meta(ge=0)] | None = None
    metadata: Metadata | None = None
    stream: bool = False
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None


class CountTokensRequest(_Wire):
    model: str
    messages: Annotated[list[WireMessage], Meta(min_length=1)]
    system: str | list[TextBlock] | None = None
    tools: list[Tool] | None = None
