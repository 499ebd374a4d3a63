"""Property: for random tool schemas, every emulated tool call validates against its schema."""

import json
import threading
import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seekgate.backends.llamacpp.engine import GenerationParams
from seekgate.core.types import ChatRequest, Message, Role, TextPart, ToolChoice, ToolSpec
from seekgate.tools.emulate import grammar, parse_calls, tool_prompt
from seekgate.tools.stream import ToolCallStream


names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
leaf = st.one_of(
    st.just({"type": "string", "maxLength": 12}),
    st.builds(lambda lo, span: {"type": "integer", "minimum": lo, "maximum": lo + span}, st.integers(-50, 50), st.integers(0, 100)),
    st.just({"type": "boolean"}),
    st.lists(st.from_regex(r"[a-z]{1,6}", fullmatch=True), min_size=1, max_size=4, unique=True).map(lambda v: {"enum": v}),
)
schemas = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.dictionaries(names, inner, min_size=1, max_size=3).map(lambda p: {"type": "object", "properties": p, "required": sorted(p)}),
        inner.map(lambda i: {"type": "array", "items": i, "maxItems": 3}),
    ),
    max_leaves=5,
).map(lambda s: s if s.get("type") == "object" else {"type": "object", "properties": {"value": s}, "required": ["value"]})


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schema=schemas, seed=st.integers(0, 2**16))
def test_every_emulated_call_validates_against_its_schema(smol, schema, seed):
    engine = smol
    request = ChatRequest(
        model="m",
        messages=(Message(role=Role.USER, content=(TextPart("Call the tool."),)),),
        tools=(ToolSpec("do_it", "Do the thing", schema),),
        tool_choice=ToolChoice(mode="required"),
        parallel_tool_calls=False,
    )
    prompt = engine.chat_prompt([{"role": "system", "content": tool_prompt(request)}, {"role": "user", "content": "Call the tool."}])
    out: list[str] = []
    result = engine.generate(0, prompt, GenerationParams(max_tokens=200, temperature=1.0, seed=seed, grammar=grammar(request)), out.append, threading.Event())
    text = "".join(out)
    if result.finish_reason.value == "length":
        return  # cut by max_tokens: a prefix, not a call (the grammar still held every token)
    calls = parse_calls(text)
    assert calls is not None and len(calls) == 1 and calls[0].name == "do_it"
    jsonschema.validate(json.loads(calls[0].arguments), schema)
    # and the streaming extractor yields the same arguments from the same text, piece by piece
    stream = ToolCallStream()
    deltas = [d for piece in out for d in stream.feed(piece)[1]]
    assert deltas[0].name == "do_it"
    assert json.loads("".join(d.arguments for d in deltas)) == json.loads(calls[0].arguments)


def test_prose_is_passed_through_unchanged():
    stream = ToolCallStream()
    assert stream.feed("  Hello") == ("  Hello", []) and stream.mode == "prose"
    assert stream.feed(" {not a call}") == (" {not a call}", [])


def test_parallel_calls_stream_with_their_own_indexes():
    stream = ToolCallStream()
    text = '[{"name": "a", "arguments": {"x": [1, {"y": "}"}]}}, {"name": "b", "arguments": {}}]'
    deltas = [d for ch in text for d in stream.feed(ch)[1]]
    by_index: dict[int, str] = {}
    for d in deltas:
        by_index[d.index] = by_index.get(d.index, "") + d.arguments
    assert [d.name for d in deltas if d.name] == ["a", "b"]
    assert json.loads(by_index[0]) == {"x": [1, {"y": "}"}]} and json.loads(by_index[1]) == {}


def _request(schema: dict, *, max_tokens: int | None = None) -> ChatRequest:
    return ChatRequest(
        model="m", messages=(Message(role=Role.USER, content=(TextPart("Write a long essay into the note."),)),),
        tools=(ToolSpec("save_note", "Save a note", schema),), tool_choice=ToolChoice(mode="required"), parallel_tool_calls=False,
    )  # fmt: skip


NOTE = {"type": "object", "properties": {"title": {"type": "string"}, "body": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
        "kind": {"type": "string", "enum": ["a", "b"]}, "code": {"type": "string", "maxLength": 5}}, "required": ["title", "body"]}  # fmt: skip


def test_a_small_budget_bounds_free_strings_and_arrays_only():
    from seekgate.tools.emulate import call_schema

    bounded = call_schema(_request(NOTE), budget=100)["properties"]["arguments"]["properties"]
    share = (100 - 24) * 2 // 4  # three free strings (title, body, a tag) and the rest of the call
    assert bounded["title"]["maxLength"] == bounded["body"]["maxLength"] == bounded["tags"]["items"]["maxLength"] == share
    assert bounded["tags"]["maxItems"] == 2
    assert bounded["kind"] == {"type": "string", "enum": ["a", "b"]} and bounded["code"]["maxLength"] == 5
    assert call_schema(_request(NOTE), budget=4096)["properties"]["arguments"] == NOTE  # a large budget leaves it as it is


def test_a_forced_call_finishes_as_valid_json_within_a_small_budget(smol):
    request = _request(NOTE)
    prompt = smol.chat_prompt([{"role": "system", "content": tool_prompt(request)}, {"role": "user", "content": "Write a long essay into the note."}])
    for seed in (1, 2, 3):
        out: list[str] = []
        params = GenerationParams(max_tokens=100, temperature=1.0, seed=seed, grammar=grammar(request, budget=100))
        smol.generate(0, prompt, params, out.append, threading.Event())
        calls = parse_calls("".join(out))
        assert calls, "".join(out)  # complete JSON, not cut by the budget
        jsonschema.validate(json.loads(calls[0].arguments), NOTE)


def test_a_forced_named_tool_is_called_once_even_when_parallel_calls_are_allowed():
    from seekgate.tools.emulate import call_schema

    forced = ChatRequest(
        model="m", messages=(Message(role=Role.USER, content=(TextPart("Save it."),)),),
        tools=(ToolSpec("save_note", "Save a note", NOTE),), tool_choice=ToolChoice(mode="tool", name="save_note"), parallel_tool_calls=True,
    )  # fmt: skip
    one = {"name": "save_note", "arguments": {"title": "t", "body": "b"}}
    jsonschema.validate(one, call_schema(forced))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([one, one], call_schema(forced))
    required = ChatRequest(
        model="m", messages=forced.messages, tools=forced.tools, tool_choice=ToolChoice(mode="required"), parallel_tool_calls=True,
    )  # fmt: skip
    jsonschema.validate([one, one], call_schema(required))  # any tool, parallel allowed: several calls stay valid
