"""Tool calls on the embedded engine, which has no native tool use: emulated with a grammar
built from the tool schemas, in both dialects, streamed as they are generated."""

import json

import anthropic
import httpx
import jsonschema
import openai
import pytest

WEATHER = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 30}, "unit": {"enum": ["c", "f"]}}, "required": ["city", "unit"]}
SEARCH = {"type": "object", "properties": {"query": {"type": "string", "maxLength": 40}, "limit": {"type": "integer", "minimum": 1, "maximum": 10}}, "required": ["query"]}
OPENAI_TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Current weather for a city", "parameters": WEATHER}},
    {"type": "function", "function": {"name": "search_code", "description": "Search the repository", "parameters": SEARCH}},
]
SCHEMAS = {"get_weather": WEATHER, "search_code": SEARCH}


def test_openai_required_tool_call_is_valid_against_its_schema(client: openai.OpenAI):
    for seed in (1, 2, 3):
        resp = client.chat.completions.create(
            model="smollm2-135m", messages=[{"role": "user", "content": "What's the weather in Oslo?"}],
            tools=OPENAI_TOOLS, tool_choice="required", parallel_tool_calls=False, max_tokens=80, seed=seed,
        )  # fmt: skip
        choice = resp.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        (call,) = choice.message.tool_calls
        assert call.id.startswith("call_") and call.function.name in SCHEMAS
        jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])


def test_tool_choice_forces_the_named_tool_and_refuses_unknown_ones(client: openai.OpenAI):
    resp = client.chat.completions.create(
        model="smollm2-135m", messages=[{"role": "user", "content": "find the parser"}], tools=OPENAI_TOOLS,
        tool_choice={"type": "function", "function": {"name": "search_code"}}, max_tokens=80, temperature=0,
    )  # fmt: skip
    calls = resp.choices[0].message.tool_calls
    assert calls and all(c.function.name == "search_code" for c in calls)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="smollm2-135m", messages=[{"role": "user", "content": "x"}], tools=OPENAI_TOOLS,
            tool_choice={"type": "function", "function": {"name": "rm_rf"}},
        )  # fmt: skip
    assert "rm_rf" in info.value.message


def test_openai_stream_sends_the_name_then_argument_pieces(client: openai.OpenAI):
    stream = client.chat.completions.create(
        model="smollm2-135m", messages=[{"role": "user", "content": "Weather in Lima?"}], tools=OPENAI_TOOLS[:1],
        tool_choice="required", parallel_tool_calls=False, max_tokens=80, temperature=0, stream=True,
    )  # fmt: skip
    deltas = [c.choices[0].delta.tool_calls[0] for c in stream if c.choices and c.choices[0].delta.tool_calls]
    assert deltas[0].id and deltas[0].function.name == "get_weather"
    pieces = [d.function.arguments for d in deltas[1:] if d.function.arguments]
    assert len(pieces) > 3  # streamed as generated, not sent whole at the end
    jsonschema.validate(json.loads("".join(pieces)), WEATHER)


def test_auto_lets_the_model_answer_in_prose_or_call_validly(client: openai.OpenAI):
    for seed in range(4):
        resp = client.chat.completions.create(
            model="smollm2-135m", messages=[{"role": "user", "content": "Say hello, or look up the weather in Rome."}],
            tools=OPENAI_TOOLS, max_tokens=60, seed=seed,
        )  # fmt: skip
        message = resp.choices[0].message
        if message.tool_calls:
            assert resp.choices[0].finish_reason == "tool_calls"
            for call in message.tool_calls:
                jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])
        else:
            assert message.content and not message.content.lstrip().startswith(("{", "["))


def test_anthropic_tool_round_trip(gateway):
    claude = anthropic.Anthropic(base_url=gateway.base_url, api_key="unused", max_retries=0, timeout=120)
    tools = [{"name": "get_weather", "description": "Current weather for a city", "input_schema": WEATHER}]
    first = claude.messages.create(
        model="claude-haiku-4-5", max_tokens=80, tools=tools, tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "Weather in Cairo?"}],
    )  # fmt: skip
    assert first.stop_reason == "tool_use"
    use = next(b for b in first.content if b.type == "tool_use")
    jsonschema.validate(use.input, WEATHER)
    second = claude.messages.create(
        model="claude-haiku-4-5", max_tokens=40, tools=tools, tool_choice={"type": "none"},
        messages=[
            {"role": "user", "content": "Weather in Cairo?"},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "31 C, sunny"}]},
        ],
    )  # fmt: skip
    assert second.stop_reason in ("end_turn", "max_tokens") and second.content[0].type == "text" and second.content[0].text


def test_anthropic_stream_carries_tool_use_blocks_with_input_json_deltas(gateway):
    body = {
        "model": "claude-haiku-4-5", "max_tokens": 80, "stream": True, "temperature": 0,
        "tools": [{"name": "get_weather", "description": "w", "input_schema": WEATHER}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "messages": [{"role": "user", "content": "Weather in Quito?"}],
    }  # fmt: skip
    with httpx.stream("POST", gateway.base_url + "/v1/messages", json=body, timeout=120) as resp:
        data = [json.loads(line[6:]) for line in resp.iter_lines() if line.startswith("data: ")]
    starts = [d for d in data if d["type"] == "content_block_start"]
    assert [s["content_block"]["type"] for s in starts] == ["tool_use"] and starts[0]["content_block"]["name"] == "get_weather"
    partial = [d["delta"]["partial_json"] for d in data if d["type"] == "content_block_delta"]
    assert len(partial) > 3 and all(d["delta"]["type"] == "input_json_delta" for d in data if d["type"] == "content_block_delta")
    jsonschema.validate(json.loads("".join(partial)), WEATHER)
    assert next(d for d in data if d["type"] == "message_delta")["delta"]["stop_reason"] == "tool_use"
