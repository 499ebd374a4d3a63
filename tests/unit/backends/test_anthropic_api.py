"""The anthropic backend's translation: neutral requests to Messages API bodies, and Messages API
answers and stream events back to neutral responses and chunks."""

import json

import pytest

from seekgate import errors
from seekgate.backends.anthropic_api import StreamTranslator, chat_response, request_body, status_error
from seekgate.backends.upstream import upstream_error
from seekgate.core.types import (
    ChatRequest,
    FinishReason,
    ImagePart,
    Message,
    ResponseFormat,
    Role,
    Sampling,
    TextPart,
    ToolCall,
    ToolChoice,
    ToolSpec,
    Usage,
)


def _msg(role: Role, text: str = "", **kw) -> Message:
    return Message(role=role, content=(TextPart(text),) if text else (), **kw)


def _body(*messages: Message, **kw) -> dict:
    return request_body(ChatRequest(model="alias", messages=messages, **kw), "claude-x", 4096, stream=False)


WEATHER = ToolSpec("get_weather", "Weather for a city", {"type": "object", "properties": {"city": {"type": "string"}}})


def test_system_messages_move_to_system_and_sampling_maps():
    body = _body(
        _msg(Role.SYSTEM, "pack"), _msg(Role.SYSTEM, "client"), _msg(Role.USER, "hi"),
        sampling=Sampling(max_tokens=50, temperature=0.2, top_p=0.9, top_k=5, stop=("END",), seed=3, presence_penalty=1.0),
    )  # fmt: skip
    assert body == {
        "model": "claude-x", "max_tokens": 50, "stream": False, "temperature": 0.2, "top_p": 0.9, "top_k": 5, "stop_sequences": ["END"],
        "system": [{"type": "text", "text": "pack"}, {"type": "text", "text": "client"}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }  # fmt: skip


def test_max_tokens_defaults_to_the_backends_setting():
    assert _body(_msg(Role.USER, "hi"))["max_tokens"] == 4096


def test_tool_calls_and_results_become_tool_use_and_one_user_turn_of_results():
    calls = (ToolCall("call_1", "get_weather", '{"city": "Paris"}'), ToolCall("call_2", "get_time", ""))
    body = _body(
        _msg(Role.USER, "weather and time?"),
        _msg(Role.ASSISTANT, "Checking.", tool_calls=calls),
        _msg(Role.TOOL, "18C", tool_call_id="call_1"),
        _msg(Role.TOOL, "noon", tool_call_id="call_2"),
        _msg(Role.USER, "thanks"),
    )
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "weather and time?"}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "noon"},
            {"type": "text", "text": "thanks"},
        ]},
    ]  # fmt: skip


def test_tool_results_go_ahead_of_user_text_sent_before_them():
    body = _body(
        _msg(Role.USER, "go"),
        _msg(Role.ASSISTANT, tool_calls=(ToolCall("c1", "f", "{}"),)),
        _msg(Role.USER, "also this"),
        _msg(Role.TOOL, "done", tool_call_id="c1"),
    )
    assert [b["type"] for b in body["messages"][-1]["content"]] == ["tool_result", "text"]


def test_consecutive_turns_merge_and_empty_ones_are_dropped():
    body = _body(_msg(Role.USER, "a"), _msg(Role.USER, ""), _msg(Role.USER, "b"), _msg(Role.ASSISTANT, ""), _msg(Role.ASSISTANT, "c"))
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "c"}]},
    ]


def test_a_conversation_opening_with_the_assistant_gets_a_user_turn_first():
    body = _body(_msg(Role.SYSTEM, "s"), _msg(Role.ASSISTANT, "How can I help?"), _msg(Role.USER, "hi"))
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    with pytest.raises(errors.InvalidRequest, match="no user or assistant message"):
        _body(_msg(Role.SYSTEM, "only a system prompt"))


def test_images_become_base64_or_url_sources():
    parts = (TextPart("what is this?"), ImagePart("data:image/png;base64,iVBORw0KGgo="), ImagePart("https://example.com/cat.jpg"))
    body = _body(Message(role=Role.USER, content=parts))
    assert body["messages"][0]["content"][1:] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
    with pytest.raises(errors.InvalidRequest, match="base64"):
        _body(Message(role=Role.USER, content=(ImagePart("data:image/png,rawbytes"),)))


def test_tool_call_arguments_that_are_not_an_object_are_refused():
    with pytest.raises(errors.InvalidRequest, match="call_9"):
        _body(_msg(Role.USER, "x"), _msg(Role.ASSISTANT, tool_calls=(ToolCall("call_9", "f", "[1, 2]"),)))


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        (ToolChoice(), True, {"type": "auto"}),
        (ToolChoice(mode="required"), True, {"type": "any"}),
        (ToolChoice(mode="tool", name="get_weather"), False, {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}),
        (ToolChoice(mode="none"), False, {"type": "none"}),
        (ToolChoice(), False, {"type": "auto", "disable_parallel_tool_use": True}),
    ],
)
def test_tools_and_tool_choice(choice, parallel, expected):
    body = _body(_msg(Role.USER, "x"), tools=(WEATHER, ToolSpec("ping")), tool_choice=choice, parallel_tool_calls=parallel)
    assert body["tools"] == [
        {"name": "get_weather", "description": "Weather for a city", "input_schema": WEATHER.parameters},
        {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert body["tool_choice"] == expected


def test_json_schema_answers_are_refused_so_the_route_can_fall_back():
    with pytest.raises(errors.Unsupported, match="JSON schema"):
        _body(_msg(Role.USER, "x"), response_format=ResponseFormat(type="json_schema", schema={}))


def test_response_text_tool_use_stop_reason_and_cache_usage():
    raw = json.dumps({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [{"type": "text", "text": "Let me "}, {"type": "text", "text": "look."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 7, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5},
    }).encode()  # fmt: skip
    resp = chat_response("claude", raw, "alias")
    assert resp.model == "alias" and resp.text == "Let me look." and resp.finish_reason is FinishReason.TOOL_CALLS
    assert resp.tool_calls == (ToolCall("toolu_1", "get_weather", '{"city":"Paris"}'),)
    assert resp.usage == Usage(input_tokens=115, output_tokens=7, cached_input_tokens=100)


@pytest.mark.parametrize(
    ("reason", "sequence", "finish"),
    [("end_turn", None, FinishReason.STOP), ("stop_sequence", "END", FinishReason.STOP), ("max_tokens", None, FinishReason.LENGTH),
     ("refusal", None, FinishReason.CONTENT_FILTER)],
)  # fmt: skip
def test_stop_reasons(reason, sequence, finish):
    raw = json.dumps({"content": [{"type": "text", "text": "x"}], "stop_reason": reason, "stop_sequence": sequence, "usage": {}}).encode()
    resp = chat_response("claude", raw, "alias")
    assert resp.finish_reason is finish and resp.stop_sequence == sequence


def test_a_body_that_is_not_a_message_is_an_upstream_error():
    with pytest.raises(errors.UpstreamError, match="not an Anthropic message"):
        chat_response("claude", b"<html>", "alias")


def _events(*events: dict) -> list:
    translator = StreamTranslator("claude")
    out = [translator.feed(json.dumps(e).encode()) for e in events]
    assert translator.done == (events[-1]["type"] == "message_stop")
    return [c for c in out if c is not None]


def test_stream_events_become_chunks_as_they_arrive():
    chunks = _events(
        {"type": "message_start", "message": {"id": "m", "content": [], "usage": {"input_tokens": 9, "output_tokens": 1, "cache_read_input_tokens": 4}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Checking"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city": '}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}},
        {"type": "content_block_stop", "index": 2},
        {"type": "some_future_event", "index": 3},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 12}},
        {"type": "message_stop"},
    )  # fmt: skip
    assert [c.text for c in chunks[:1]] == ["Checking"]
    calls = [d for c in chunks for d in c.tool_calls]
    assert [(d.index, d.id, d.name, d.arguments) for d in calls] == [
        (0, "toolu_1", "get_weather", ""), (0, None, None, '{"city": '), (0, None, None, '"Paris"}'),
        (1, "toolu_2", "get_time", ""), (1, None, None, "{}"),
    ]  # fmt: skip
    last = chunks[-1]
    assert last.finish_reason is FinishReason.TOOL_CALLS
    assert last.usage == Usage(input_tokens=13, output_tokens=12, cached_input_tokens=4)


def test_stop_sequence_reaches_the_last_chunk():
    chunks = _events(
        {"type": "message_start", "message": {"usage": {"input_tokens": 3, "output_tokens": 1}}},
        {"type": "message_delta", "delta": {"stop_reason": "stop_sequence", "stop_sequence": "END"}, "usage": {"output_tokens": 2}},
        {"type": "message_stop"},
    )
    assert len(chunks) == 1 and chunks[0].finish_reason is FinishReason.STOP and chunks[0].stop_sequence == "END"


def test_an_error_event_raises_an_upstream_error():
    translator = StreamTranslator("claude")
    with pytest.raises(errors.UpstreamError, match="overloaded_error: Overloaded"):
        translator.feed(b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}')
    with pytest.raises(errors.UpstreamError, match="not Anthropic JSON"):
        translator.feed(b"not json")


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, errors.InvalidRequest), (401, errors.UpstreamError), (403, errors.UpstreamError), (429, errors.RateLimited),
     (500, errors.UpstreamError), (503, errors.UpstreamUnavailable), (529, errors.UpstreamUnavailable), (504, errors.UpstreamTimeout)],
)  # fmt: skip
def test_upstream_statuses_map_to_gateway_errors(status, kind):
    raw = json.dumps({"type": "error", "error": {"type": "x_error", "message": "the detail"}}).encode()
    exc = status_error("claude", status, raw, {"Retry-After": "9"})
    assert type(exc) is kind and "the detail" in exc.message
    if status in (401, 403):
        assert exc.code == "upstream_authentication_failed" and type(upstream_error("claude", status, raw, {})) is errors.UpstreamError
    if status == 429:
        assert exc.headers == {"Retry-After": "9"}
