"""cache_key: every part that changes an answer changes the key; nothing else does."""

from collections.abc import Callable

import msgspec
import pytest

from seekgate.cache import SCHEMA_VERSION, cache_key, deterministic
from seekgate.core.types import (
    ChatRequest,
    CompletionRequest,
    ImagePart,
    Message,
    Request,
    ResponseFormat,
    Role,
    Sampling,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolSpec,
)

SAMPLING = Sampling(
    max_tokens=256,
    temperature=0.0,
    top_p=0.9,
    top_k=40,
    stop=("\n\n",),
    seed=7,
    frequency_penalty=0.1,
    presence_penalty=0.2,
)
TOOL = ToolSpec(
    name="read_file",
    description="Read a file of the repository.",
    parameters={"type": "object", "properties": {"path": {"type": "string"}, "lines": {"type": "string"}}, "required": ["path"]},
)
MESSAGES = (
    Message(role=Role.SYSTEM, content=(TextPart("You review Python code."),)),
    Message(role=Role.USER, content=(TextPart("What does this do?"), ImagePart("https://example.test/diagram.png")), name="ana"),
    Message(role=Role.ASSISTANT, tool_calls=(ToolCall(id="call_1", name="read_file", arguments='{"path": "app.py"}'),)),
    Message(role=Role.TOOL, content=(TextPart("def main(): ..."),), tool_call_id="call_1"),
)
CHAT = ChatRequest(
    model="auto",
    messages=MESSAGES,
    sampling=SAMPLING,
    response_format=ResponseFormat(type="json_schema", schema={"type": "object"}, name="verdict"),
    tools=(TOOL, ToolSpec(name="grep")),
    tool_choice=ToolChoice(mode="tool", name="read_file"),
    parallel_tool_calls=True,
    metadata={"user": "ana"},
    session="s-1",
)
PARTS = {
    "task": "review",
    "pack": "review@v3",
    "model": "deepseek-coder-v2-lite@2024-06-17#q4_k_m",
    "context": "repo@abc123:c1,c7",
}


def key(request: Request, **parts: str | None) -> str:
    return cache_key(request, **{**PARTS, **parts})  # type: ignore[arg-type]


def chat(**changes: object) -> ChatRequest:
    return msgspec.structs.replace(CHAT, **changes)


def tools(first: ToolSpec) -> tuple[ToolSpec, ...]:
    return (first, ToolSpec(name="grep"))


def sampled(**changes: object) -> Sampling:
    return msgspec.structs.replace(SAMPLING, **changes)


def call(id: str = "call_1", name: str = "read_file", arguments: str = '{"path": "app.py"}') -> tuple[ToolCall, ...]:
    return (ToolCall(id=id, name=name, arguments=arguments),)


def message(index: int, **changes: object) -> ChatRequest:
    messages = list(MESSAGES)
    messages[index] = msgspec.structs.replace(messages[index], **changes)
    return chat(messages=tuple(messages))


def other(value: object) -> object:
    """A different value of the same type."""
    if isinstance(value, tuple):
        return (*value, "END")
    if isinstance(value, float):
        return value + 0.5
    if isinstance(value, int):
        return value + 1
    raise AssertionError(f"no other value for {value!r}")


CHANGES: dict[str, Callable[[], str]] = {
    "task": lambda: key(CHAT, task="explain"),
    "pack": lambda: key(CHAT, pack="review@v4"),
    "no pack": lambda: key(CHAT, pack=None),
    "model": lambda: key(CHAT, model="deepseek-coder-v2-lite@2025-01-10#q4_k_m"),
    "context": lambda: key(CHAT, context="repo@abc124:c1,c7"),
    "no context": lambda: key(CHAT, context=None),
    "message role": lambda: key(message(0, role=Role.USER)),
    "message text": lambda: key(message(1, content=(TextPart("What does this do!"), MESSAGES[1].content[1]))),
    "message whitespace": lambda: key(message(1, content=(TextPart("What does this do? "), MESSAGES[1].content[1]))),
    "message image": lambda: key(message(1, content=(MESSAGES[1].content[0], ImagePart("https://example.test/other.png")))),
    "message part split": lambda: key(message(0, content=(TextPart("You review "), TextPart("Python code.")))),
    "message name": lambda: key(message(1, name="bo")),
    "message tool call id": lambda: key(message(2, tool_calls=call(id="call_2"))),
    "message tool call name": lambda: key(message(2, tool_calls=call(name="grep"))),
    "message tool call arguments": lambda: key(message(2, tool_calls=call(arguments='{"path":"app.py"}'))),
    "message tool_call_id": lambda: key(message(3, tool_call_id="call_9")),
    "a message fewer": lambda: key(chat(messages=MESSAGES[:-1])),
    "messages reordered": lambda: key(chat(messages=(MESSAGES[1], MESSAGES[0], *MESSAGES[2:]))),
    "tool name": lambda: key(chat(tools=tools(msgspec.structs.replace(TOOL, name="read")))),
    "tool description": lambda: key(chat(tools=tools(msgspec.structs.replace(TOOL, description="Read.")))),
    "tool parameters": lambda: key(chat(tools=tools(msgspec.structs.replace(TOOL, parameters={})))),
    # Key order reaches the prompt (the schema is rendered as written), so it is not normalised.
    "tool parameters' key order": lambda: key(
        chat(tools=tools(msgspec.structs.replace(TOOL, parameters=dict(reversed(TOOL.parameters.items())))))
    ),
    "tools reordered": lambda: key(chat(tools=(ToolSpec(name="grep"), TOOL))),
    "no tools": lambda: key(chat(tools=())),
    "tool_choice mode": lambda: key(chat(tool_choice=ToolChoice(mode="required"))),
    "tool_choice name": lambda: key(chat(tool_choice=ToolChoice(mode="tool", name="grep"))),
    "parallel_tool_calls": lambda: key(chat(parallel_tool_calls=False)),
    "response_format type": lambda: key(chat(response_format=ResponseFormat(type="json_object"))),
    "response_format schema": lambda: key(
        chat(response_format=ResponseFormat(type="json_schema", schema={"type": "array"}, name="verdict"))
    ),
    "response_format name": lambda: key(
        chat(response_format=ResponseFormat(type="json_schema", schema={"type": "object"}, name="v"))
    ),
    "no response_format": lambda: key(chat(response_format=None)),
    **{
        f"sampling {name}": (lambda name=name: key(chat(sampling=sampled(**{name: other(getattr(SAMPLING, name))}))))
        for name in (field.name for field in msgspec.structs.fields(Sampling))
    },
    "sampling unset": lambda: key(chat(sampling=Sampling(temperature=0.0))),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_change_to_any_part_changes_the_key(change: str):
    assert CHANGES[change]() != key(CHAT)


def test_every_change_gives_a_key_of_its_own():
    keys = [key(CHAT)] + [make() for make in CHANGES.values()]
    assert len(set(keys)) == len(keys)


def test_every_sampling_field_is_covered():
    assert {f"sampling {f.name}" for f in msgspec.structs.fields(Sampling)} <= set(CHANGES)


def test_equal_inputs_give_equal_keys():
    rebuilt = msgspec.json.decode(msgspec.json.encode(CHAT), type=ChatRequest)
    assert rebuilt is not CHAT
    assert key(rebuilt) == key(CHAT)


def test_the_requested_model_name_session_and_metadata_do_not_change_the_key():
    elsewhere = chat(model="deepseek-coder", session="s-2", metadata={"user": "bo", "trace": "x"})
    assert key(elsewhere) == key(CHAT)


def test_integer_and_float_sampling_numbers_are_one_key():
    as_ints = chat(sampling=sampled(temperature=0, frequency_penalty=0, presence_penalty=0))
    as_floats = chat(sampling=sampled(temperature=0.0, frequency_penalty=0.0, presence_penalty=0.0))
    assert key(as_ints) == key(as_floats)


def test_the_key_is_a_sha256_hex_digest_and_stable():
    k = key(CHAT)
    assert len(k) == 64 and int(k, 16) >= 0
    assert key(CHAT) == k
    assert SCHEMA_VERSION == 1  # bumping it must be deliberate: every stored entry becomes unreachable


COMPLETION = CompletionRequest(model="auto", prompt="def add(a, b):\n", suffix="\n\nprint(add(1, 2))\n", sampling=SAMPLING)


@pytest.mark.parametrize(
    "changed",
    [
        msgspec.structs.replace(COMPLETION, prompt="def add(a, b): \n"),
        msgspec.structs.replace(COMPLETION, suffix=None),
        msgspec.structs.replace(COMPLETION, suffix=""),
        msgspec.structs.replace(COMPLETION, sampling=sampled(max_tokens=16)),
    ],
    ids=["prompt", "no suffix", "empty suffix", "sampling"],
)
def test_a_completion_key_covers_prompt_suffix_and_sampling(changed: CompletionRequest):
    assert key(changed) != key(COMPLETION)
    assert key(msgspec.structs.replace(COMPLETION, model="other")) == key(COMPLETION)


def test_a_chat_and_a_completion_with_the_same_text_differ():
    chat = ChatRequest(model="auto", messages=(Message(role=Role.USER, content=(TextPart("hello"),)),))
    completion = CompletionRequest(model="auto", prompt="hello")
    assert key(chat) != key(completion)


@pytest.mark.parametrize(
    ("sampling", "expected"),
    [
        (Sampling(), False),
        (Sampling(temperature=0.0), True),
        (Sampling(temperature=0), True),
        (Sampling(temperature=0.7), False),
        (Sampling(temperature=0.7, seed=1), True),
        (Sampling(seed=0), True),
        (Sampling(top_k=1), False),
    ],
)
def test_deterministic_means_temperature_zero_asked_for_or_a_seed(sampling: Sampling, expected: bool):
    assert deterministic(chat(sampling=sampling)) is expected
    assert deterministic(msgspec.structs.replace(COMPLETION, sampling=sampling)) is expected
