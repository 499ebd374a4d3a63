"""Dialect-neutral request and response types.

Every dialect (OpenAI, Anthropic, MCP) translates its wire JSON into these, and every backend
speaks only these. They are msgspec structs: cheap to build on the hot path, typed, and never
wire JSON themselves.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

import msgspec

__all__ = [
    "ChatRequest",
    "ChatResponse",
    "Chunk",
    "CompletionRequest",
    "FinishReason",
    "ImagePart",
    "Message",
    "Part",
    "Request",
    "ResponseFormat",
    "Role",
    "Sampling",
    "TextPart",
    "ToolCall",
    "ToolCallDelta",
    "ToolChoice",
    "ToolSpec",
    "Usage",
]


class Role(enum.StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


class FinishReason(enum.StrEnum):
    STOP = "stop"
    LENGTH = "length"
    TOOL_CALLS = "tool_calls"
    CONTENT_FILTER = "content_filter"
    CANCELLED = "cancelled"


class TextPart(msgspec.Struct, frozen=True, tag="text"):
    text: str


class ImagePart(msgspec.Struct, frozen=True, tag="image"):
    """An image, by URL (which may be a data: URL)."""

    url: str


Part = TextPart | ImagePart


class ToolCall(msgspec.Struct, frozen=True):
    id: str
    name: str
    arguments: str
    """The arguments as a JSON text, exactly as generated."""


class Message(msgspec.Struct, frozen=True):
    role: Role
    content: tuple[Part, ...] = ()
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None

    @property
    def text(self) -> str:
        """The concatenated text parts; images are left out."""
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


class ResponseFormat(msgspec.Struct, frozen=True):
    type: Literal["text", "json_object", "json_schema"] = "text"
    schema: dict[str, Any] | None = None
    name: str | None = None


class ToolSpec(msgspec.Struct, frozen=True):
    name: str
    description: str = ""
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)


class ToolChoice(msgspec.Struct, frozen=True):
    mode: Literal["auto", "none", "required", "tool"] = "auto"
    name: str | None = None


class Sampling(msgspec.Struct, frozen=True):
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None


class ChatRequest(msgspec.Struct, frozen=True):
    model: str
    messages: tuple[Message, ...]
    sampling: Sampling = Sampling()
    response_format: ResponseFormat | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = ToolChoice()
    parallel_tool_calls: bool = True
    metadata: dict[str, str] = msgspec.field(default_factory=dict)
    session: str | None = None
    """Which conversation this turn belongs to (see routing/sessions.py); set by the gateway."""


class CompletionRequest(msgspec.Struct, frozen=True):
    """Raw text completion; with `suffix`, fill-in-the-middle between prompt and suffix."""

    model: str
    prompt: str
    suffix: str | None = None
    sampling: Sampling = Sampling()


Request = ChatRequest | CompletionRequest


class Usage(msgspec.Struct):
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class ChatResponse(msgspec.Struct):
    model: str
    text: str
    finish_reason: FinishReason
    usage: Usage
    tool_calls: tuple[ToolCall, ...] = ()
    backend: str | None = None
    """Which configured backend answered, when a model has several (replicas)."""
    stop_sequence: str | None = None
    """The stop string that ended the answer, when the backend knows it."""
    context: dict[str, Any] | None = None
    """The retrieved context and its citations' check, when the request had context."""


class ToolCallDelta(msgspec.Struct, frozen=True):
    """A piece of a streamed tool call: the first delta of a call carries id and name."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class Chunk(msgspec.Struct):
    """One piece of a streamed answer. The last chunk carries finish_reason and usage."""

    text: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    backend: str | None = None
    """On a stream's first chunk: which configured backend answered, when a model has several."""
    stop_sequence: str | None = None
    """On the last chunk: the stop string that ended the answer, when the backend knows it."""
    context: dict[str, Any] | None = None
    """On the last chunk: the retrieved context and its citations' check, when there was context."""
