"""OpenAI wire models (Chat Completions, Completions), decoded and validated by msgspec.

Unknown fields are accepted and ignored, as OpenAI's own API does for forward compatibility;
known fields are type- and range-checked, and errors name the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "ChatCompletionRequest",
    "EmbeddingsRequest",
    "CompletionRequest",
    "ContentPart",
    "ImageURL",
    "ImageURLPart",
    "JSONSchemaFormat",
    "ResponseFormat",
    "StreamOptions",
    "TextContentPart",
    "Tool",
    "ToolChoiceFunction",
    "WireMessage",
]

Temperature = Annotated[float, Meta(ge=0.0, le=2.0, description="Sampling temperature, 0 to 2; 0 is greedy.")]
TopP = Annotated[float, Meta(gt=0.0, le=1.0, description="Nucleus sampling mass, in (0, 1].")]
Penalty = Annotated[float, Meta(ge=-2.0, le=2.0)]
PositiveInt = Annotated[int, Meta(ge=1)]


class _Wire(msgspec.Struct, omit_defaults=True):
    pass


class TextContentPart(_Wire, tag="text", tag_field="type"):
    text: str


class ImageURL(_Wire):
    url: str
    detail: str | None = None


class ImageURLPart(_Wire, tag="image_url", tag_field="type"):
    image_url: ImageURL


ContentPart = TextContentPart | ImageURLPart


class FunctionCall(_Wire):
    name: str
    arguments: str = ""


class WireToolCall(_Wire):
    id: str
    function: FunctionCall
    type: Literal["function"] = "function"


class WireMessage(_Wire):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[WireToolCall] | None = None
    tool_call_id: str | None = None


class JSONSchemaFormat(_Wire):
    name: str = "response"
    schema: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


class ResponseFormat(_Wire):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchemaFormat | None = None


class StreamOptions(_Wire):
    include_usage: bool = False


class FunctionSpec(_Wire):
    name: str
    description: str = ""
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    strict: bool | None = None


class Tool(_Wire):
    function: FunctionSpec
    type: Literal["function"] = "function"


class ToolChoiceName(_Wire):
    name: str


class ToolChoiceFunction(_Wire):
    function: ToolChoiceName
    type: Literal["function"] = "function"


class ChatCompletionRequest(_Wire):
    messages: Annotated[list[WireMessage], Meta(min_length=1, description="The conversation so far.")]
    model: str | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: Annotated[int, Meta(ge=0)] | None = None
    max_tokens: PositiveInt | None = None
    max_completion_tokens: PositiveInt | None = None
    stop: str | Annotated[list[str], Meta(max_length=16)] | None = None
    seed: int | None = None
    n: PositiveInt | None = None
    response_format: ResponseFormat | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | ToolChoiceFunction | None = None
    parallel_tool_calls: bool | None = None
    logprobs: bool | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None


class CompletionRequest(_Wire):
    prompt: str | Annotated[list[str], Meta(min_length=1)]
    model: str | None = None
    suffix: str | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: Annotated[int, Meta(ge=0)] | None = None
    max_tokens: PositiveInt | None = 16
    stop: str | Annotated[list[str], Meta(max_length=16)] | None = None
    seed: int | None = None
    n: PositiveInt | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    frequency_penalty: Penalty | None = None
    presence_penalty: Penalty | None = None
    echo: bool | None = None
    logprobs: int | None = None
    user: str | None = None


class EmbeddingsRequest(_Wire, kw_only=True):
    """POST /v1/embeddings. Token-id inputs are refused: the embedder has its own tokenizer."""

    input: str | list[str | int | list[int]]
    """A string or a list of strings (token-id lists decode too, to be refused by name)."""
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: PositiveInt | None = None
    user: str | None = None
