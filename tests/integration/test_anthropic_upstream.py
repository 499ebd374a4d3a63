"""The `anthropic` backend: OpenAI and Anthropic clients reach a Claude upstream (a fake that
speaks the Messages API exactly and validates requests as strictly as Anthropic) through the
real gateway on loopback, with tools, streaming, error mapping, fallback and escalation."""

import json
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tests.fixtures.fake_anthropic import API_KEY, RETRY_AFTER, FakeAnthropic, fake_anthropic
from tests.fixtures.servers import Process, free_port, run_gateway

CONFIG = """
[server]
default_model = "cloud-sonnet"

[routing]
default_task = "cloud"
classify = false
retries = 1
retry_backoff_ms = 10
breaker_failures = 1000

[anthropic]
model_map = [{{ pattern = "claude-*", model = "cloud-sonnet" }}]

[backends.claude]
type = "anthropic"
base_url = "{fake}"
api_key = "env::TEST_ANTHROPIC_KEY"
default_max_tokens = 333

[backends.claude-badkey]
type = "anthropic"
base_url = "{fake}"
api_key = "env::TEST_WRONG_ANTHROPIC_KEY"

[backends.claude-slow]
type = "anthropic"
base_url = "{fake}"
api_key = "env::TEST_ANTHROPIC_KEY"
read_timeout = 0.5

[backends.claude-refused]
type = "anthropic"
base_url = "http://127.0.0.1:{closed_port}"
api_key = "env::TEST_ANTHROPIC_KEY"

{models}

[tasks.cloud]
route = ["cloud-sonnet"]

[tasks.overflow]
route = ["cloud-busy", "cloud-sonnet"]

[tasks.unreachable]
route = ["cloud-refused", "cloud-sonnet"]

[tasks.risky]
route = ["fake-echo"]
on_high_risk = "cloud-sonnet"
"""

MODELS = {
    "cloud-sonnet": ("claude", "claude-sonnet-4-6"),
    "cloud-cached": ("claude", "claude-cached"),
    "cloud-busy": ("claude", "claude-overloaded"),
    "cloud-limited": ("claude", "claude-rate-limited"),
    "cloud-failing": ("claude", "claude-server-error"),
    "cloud-stream-error": ("claude", "claude-stream-error"),
    "cloud-truncated": ("claude", "claude-truncated"),
    "cloud-badkey": ("claude-badkey", "claude-sonnet-4-6"),
    "cloud-hang": ("claude-slow", "claude-hang"),
    "cloud-refused": ("claude-refused", "claude-sonnet-4-6"),
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with fake_anthropic() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(fake: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    models = "\n".join(f'[models.{alias}]\nbackend = "{backend}"\nupstream_model = "{name}"\n' for alias, (backend, name) in MODELS.items())
    config = CONFIG.format(fake=fake.base_url, closed_port=free_port(), models=models)
    env = {"TEST_ANTHROPIC_KEY": API_KEY, "TEST_WRONG_ANTHROPIC_KEY": "sk-ant-wrong"}
    with run_gateway(config, Path(tmp_path_factory.mktemp("anthropic-upstream")), env=env) as server:
        yield server


@pytest.fixture
def oai(gateway: Process) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url + "/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.fixture
def claude(gateway: Process) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.base_url, api_key="sk-ant-client-key", max_retries=0, timeout=60)


def _sent(fake: FakeAnthropic) -> dict:
    """The last Messages API request the gateway sent upstream."""
    assert fake.last.path == "/v1/messages"
    return fake.last.body


def test_plain_chat_reaches_claude_in_anthropic_form(oai: openai.OpenAI, fake: FakeAnthropic):
    resp = oai.chat.completions.create(
        model="cloud-sonnet", max_tokens=50, temperature=0.5, top_p=0.9, stop=["NEVER"],
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "one two three"}],
    )  # fmt: skip
    assert resp.model == "cloud-sonnet" and resp.choices[0].message.content == "one two three"
    assert resp.choices[0].finish_reason == "stop" and resp.usage.prompt_tokens > 0 and resp.usage.completion_tokens == 3
    sent = _sent(fake)
    assert sent == {
        "model": "claude-sonnet-4-6", "max_tokens": 50, "stream": False, "temperature": 0.5, "top_p": 0.9, "stop_sequences": ["NEVER"],
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "one two three"}]}],
    }  # fmt: skip
    headers = {k.lower(): v for k, v in fake.last.headers.items()}
    assert headers["x-api-key"] == API_KEY and headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers  # the client's own key never goes upstream


def test_max_tokens_defaults_to_the_backend_setting(oai: openai.OpenAI, fake: FakeAnthropic):
    oai.chat.completions.create(model="cloud-sonnet", messages=[{"role": "user", "content": "hi"}])
    assert _sent(fake)["max_tokens"] == 333


def test_streaming_chat_arrives_word_by_word_with_usage(oai: openai.OpenAI, fake: FakeAnthropic):
    text = "the quick brown fox jumps"
    chunks = list(oai.chat.completions.create(
        model="cloud-sonnet", messages=[{"role": "user", "content": text}], stream=True, stream_options={"include_usage": True},
    ))  # fmt: skip
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    # one delta per word; the output guard holds each word until its end is seen (docs/guards.md)
    assert deltas == ["the ", "quick ", "brown ", "fox ", "jumps"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage.completion_tokens == 5 and chunks[-1].usage.prompt_tokens > 0
    assert _sent(fake)["stream"] is True


def test_max_tokens_cut_is_length_and_cache_reads_are_cached_tokens(oai: openai.OpenAI):
    cut = oai.chat.completions.create(model="cloud-sonnet", max_tokens=2, messages=[{"role": "user", "content": "a b c d"}])
    assert cut.choices[0].message.content == "a b" and cut.choices[0].finish_reason == "length"
    cached = oai.chat.completions.create(model="cloud-cached", messages=[{"role": "user", "content": "hello"}])
    # Anthropic counts cache reads (50) and writes (10) apart from input_tokens; OpenAI's prompt_tokens is all of them.
    assert cached.usage.prompt_tokens_details.cached_tokens == 50 and cached.usage.prompt_tokens > 60


def test_openai_tool_round_trip_with_streamed_arguments(oai: openai.OpenAI, fake: FakeAnthropic):
    question = {"role": "user", "content": 'Use the tool for the weather: {"city": "Paris"}'}
    stream = oai.chat.completions.create(model="cloud-sonnet", messages=[question], tools=[WEATHER], stream=True)
    text, calls, finish = "", [], None
    for chunk in stream:
        delta = chunk.choices[0].delta
        text += delta.content or ""
        calls.extend(delta.tool_calls or ())
        finish = chunk.choices[0].finish_reason or finish
    assert text == "I will call get_weather." and finish == "tool_calls"
    first, *pieces = calls
    assert first.index == 0 and first.id.startswith("toolu_") and first.function.name == "get_weather"
    assert len(pieces) >= 3 and all(p.index == 0 and p.id is None for p in pieces)  # arguments in several pieces, as they came
    arguments = "".join(p.function.arguments for p in calls)
    assert json.loads(arguments) == {"city": "Paris"}
    assert _sent(fake)["tool_choice"] == {"type": "auto"}
    assert _sent(fake)["tools"] == [{"name": "get_weather", "description": "Current weather for a city", "input_schema": WEATHER["function"]["parameters"]}]

    call = {"id": first.id, "type": "function", "function": {"name": "get_weather", "arguments": arguments}}
    answer = oai.chat.completions.create(
        model="cloud-sonnet", tools=[WEATHER],
        messages=[question, {"role": "assistant", "content": text, "tool_calls": [call]},
                  {"role": "tool", "tool_call_id": first.id, "content": "18C and sunny"}],
    )  # fmt: skip
    assert answer.choices[0].message.content == "Tool said: 18C and sunny" and answer.choices[0].finish_reason == "stop"
    assert _sent(fake)["messages"][1:] == [
        {"role": "assistant", "content": [{"type": "text", "text": text},
                                          {"type": "tool_use", "id": first.id, "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": first.id, "content": "18C and sunny"}]},
    ]  # fmt: skip


def test_parallel_calls_and_their_results_in_one_user_turn(oai: openai.OpenAI, fake: FakeAnthropic):
    ask = {"role": "user", "content": "Call each tool, please."}
    resp = oai.chat.completions.create(model="cloud-sonnet", messages=[ask], tools=[WEATHER, TIME])
    calls = resp.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"] and resp.choices[0].finish_reason == "tool_calls"
    assert [json.loads(c.function.arguments) for c in calls] == [{"city": "city-value"}, {"zone": "zone-value"}]
    # Two tool messages in a row must reach Anthropic as one user turn, or it answers 400.
    results = [{"role": "tool", "tool_call_id": c.id, "content": f"result {i}"} for i, c in enumerate(calls)]
    answer = oai.chat.completions.create(
        model="cloud-sonnet", tools=[WEATHER, TIME], messages=[ask, resp.choices[0].message.model_dump(exclude_none=True), *results]
    )
    assert answer.choices[0].message.content == "Tool said: result 0; result 1"
    assert [m["role"] for m in _sent(fake)["messages"]] == ["user", "assistant", "user"]
    single = oai.chat.completions.create(model="cloud-sonnet", messages=[ask], tools=[WEATHER, TIME], parallel_tool_calls=False)
    assert len(single.choices[0].message.tool_calls) == 1
    assert _sent(fake)["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def test_tool_choice_forces_a_tool(oai: openai.OpenAI, fake: FakeAnthropic):
    forced = oai.chat.completions.create(
        model="cloud-sonnet", messages=[{"role": "user", "content": "What time is it?"}], tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )  # fmt: skip
    assert _sent(fake)["tool_choice"] == {"type": "tool", "name": "get_time"}
    assert [c.function.name for c in forced.choices[0].message.tool_calls] == ["get_time"]
    assert forced.choices[0].message.content is None and forced.choices[0].finish_reason == "tool_calls"
    required = oai.chat.completions.create(model="cloud-sonnet", messages=[{"role": "user", "content": "hi"}], tools=[WEATHER], tool_choice="required")
    assert _sent(fake)["tool_choice"] == {"type": "any"} and required.choices[0].message.tool_calls[0].function.name == "get_weather"
    plain = oai.chat.completions.create(model="cloud-sonnet", messages=[{"role": "user", "content": "use no tool"}], tools=[WEATHER], tool_choice="none")
    assert _sent(fake)["tool_choice"] == {"type": "none"} and plain.choices[0].message.content == "use no tool"


def test_images_and_an_assistant_first_conversation_are_valid_anthropic(oai: openai.OpenAI, fake: FakeAnthropic):
    image = [{"type": "text", "text": "Compare these."},
             {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
             {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]  # fmt: skip
    oai.chat.completions.create(model="cloud-sonnet", messages=[{"role": "user", "content": image}])
    assert _sent(fake)["messages"][0]["content"][1:] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]
    greeting = [{"role": "assistant", "content": "How can I help?"}, {"role": "user", "content": "say hi"}]
    resp = oai.chat.completions.create(model="cloud-sonnet", messages=greeting)
    assert resp.choices[0].message.content == "say hi"
    assert [m["role"] for m in _sent(fake)["messages"]] == ["user", "assistant", "user"]


def test_anthropic_sdk_streams_tool_use_from_the_claude_upstream(claude: anthropic.Anthropic, fake: FakeAnthropic):
    tools = [{"name": "get_weather", "description": "Weather", "input_schema": WEATHER["function"]["parameters"]}]
    ask = {"role": "user", "content": 'Check the weather with a tool: {"city": "Oslo"}'}
    with claude.messages.stream(model="claude-sonnet-4-6", max_tokens=200, tools=tools, messages=[ask], extra_body={"temperature": 0.3}) as stream:
        pieces = [e.partial_json for e in stream if e.type == "input_json" and e.partial_json]
        final = stream.get_final_message()
    sent = _sent(fake)
    assert sent["model"] == "claude-sonnet-4-6" and sent["stream"] is True and sent["temperature"] == 0.3 and sent["max_tokens"] == 200
    # arguments stream too, a JSON value at a time (the output guard holds a value until it ends)
    assert len(pieces) >= 2 and json.loads("".join(pieces)) == {"city": "Oslo"}
    assert final.stop_reason == "tool_use" and [b.type for b in final.content] == ["text", "tool_use"]
    use = final.content[1]
    assert use.name == "get_weather" and use.input == {"city": "Oslo"}
    answer = claude.messages.create(
        model="claude-sonnet-4-6", max_tokens=200, tools=tools,
        messages=[ask, {"role": "assistant", "content": [b.model_dump() for b in final.content]},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "-3C"}, {"type": "text", "text": "Thanks"}]}],
    )  # fmt: skip
    assert answer.content[0].text == "Tool said: -3C" and answer.stop_reason == "end_turn"
    assert _sent(fake)["messages"][-1]["content"] == [{"type": "tool_result", "tool_use_id": use.id, "content": "-3C"}, {"type": "text", "text": "Thanks"}]


def test_anthropic_sdk_stop_sequence_round_trips(claude: anthropic.Anthropic):
    msg = claude.messages.create(model="claude-sonnet-4-6", max_tokens=50, stop_sequences=["three"], messages=[{"role": "user", "content": "one two three four"}])
    assert msg.stop_reason == "stop_sequence" and msg.stop_sequence == "three" and msg.content[0].text == "one two "


def test_a_refused_upstream_key_is_an_upstream_error_in_each_dialect(oai: openai.OpenAI, claude: anthropic.Anthropic, fake: FakeAnthropic):
    with pytest.raises(openai.APIStatusError) as info:
        oai.chat.completions.create(model="cloud-badkey", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502 and info.value.body["code"] == "upstream_authentication_failed"
    assert "401" in info.value.message and "sk-ant-wrong" not in info.value.message
    assert fake.last.headers["x-api-key"] == "sk-ant-wrong"
    with pytest.raises(anthropic.APIStatusError) as ainfo:
        claude.messages.create(model="cloud-badkey", max_tokens=8, messages=[{"role": "user", "content": "hi"}])
    assert ainfo.value.status_code == 502 and ainfo.value.body["type"] == "error" and "invalid x-api-key" in ainfo.value.body["error"]["message"]


def test_rate_limits_pass_retry_after_through(oai: openai.OpenAI, claude: anthropic.Anthropic):
    with pytest.raises(openai.RateLimitError) as info:
        oai.chat.completions.create(model="cloud-limited", messages=[{"role": "user", "content": "hi"}])
    assert info.value.response.headers["retry-after"] == RETRY_AFTER
    with pytest.raises(anthropic.RateLimitError) as ainfo:
        claude.messages.create(model="cloud-limited", max_tokens=8, messages=[{"role": "user", "content": "hi"}], stream=True)
    assert ainfo.value.response.headers["retry-after"] == RETRY_AFTER and ainfo.value.body["error"]["type"] == "rate_limit_error"


def test_overloaded_claude_is_503_and_a_route_falls_back(oai: openai.OpenAI, gateway: Process):
    with pytest.raises(openai.InternalServerError) as info:
        oai.chat.completions.create(model="cloud-busy", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 503 and info.value.body["type"] == "upstream_unavailable"
    body = {"model": "auto", "messages": [{"role": "user", "content": "still there?"}], "stream": True}
    with httpx.stream("POST", gateway.base_url + "/v1/chat/completions", json=body, headers={"X-Task-Type": "overflow"}, timeout=60) as resp:
        assert resp.status_code == 200 and resp.headers["x-seekgate-model"] == "cloud-sonnet"
        assert resp.headers["x-seekgate-fallback"] == "cloud-busy=upstream_unavailable"
        streamed = "".join(json.loads(line[6:])["choices"][0]["delta"].get("content") or "" for line in resp.iter_lines()
                           if line.startswith("data: {") and json.loads(line[6:])["choices"])  # fmt: skip
    assert streamed == "still there?"


def test_an_unreachable_upstream_falls_back_and_a_failing_one_is_502(oai: openai.OpenAI, gateway: Process):
    resp = httpx.post(gateway.base_url + "/v1/chat/completions", json={"model": "auto", "messages": [{"role": "user", "content": "ping"}]},
                      headers={"X-Task-Type": "unreachable"}, timeout=60)  # fmt: skip
    assert resp.status_code == 200 and resp.headers["x-seekgate-fallback"] == "cloud-refused=upstream_unavailable"
    with pytest.raises(openai.InternalServerError) as info:
        oai.chat.completions.create(model="cloud-failing", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502 and "Internal server error" in info.value.message


def test_no_answer_within_read_timeout_is_504(oai: openai.OpenAI):
    with pytest.raises(openai.APIStatusError) as info:
        oai.chat.completions.create(model="cloud-hang", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 504 and info.value.body["type"] == "upstream_timeout"


def test_an_error_event_or_a_cut_mid_stream_ends_the_stream_with_an_error(oai: openai.OpenAI, claude: anthropic.Anthropic):
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in oai.chat.completions.create(model="cloud-stream-error", messages=[{"role": "user", "content": "one two three four"}], stream=True):
            received.extend(c.delta.content for c in chunk.choices if c.delta.content)
    # every word that came before the error arrives (the output guard releases what it held)
    assert received == ["one ", "two"] and "overloaded_error" in info.value.message
    with pytest.raises(anthropic.APIStatusError) as ainfo:
        with claude.messages.stream(model="cloud-stream-error", max_tokens=50, messages=[{"role": "user", "content": "one two three"}]) as stream:
            list(stream.text_stream)
    assert "overloaded_error" in str(ainfo.value)
    with pytest.raises(openai.APIError) as info:
        list(oai.chat.completions.create(model="cloud-truncated", messages=[{"role": "user", "content": "cut short"}], stream=True))
    assert "ended the stream before the answer finished" in info.value.message


def test_what_claude_cannot_serve_is_refused_clearly(oai: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as info:
        oai.completions.create(model="cloud-sonnet", prompt="def f(")
    assert "text completions" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(model="cloud-sonnet", messages=[{"role": "user", "content": "hi"}], response_format={"type": "json_object"})
    assert "JSON schema" in info.value.message


def test_high_risk_escalates_to_claude(gateway: Process, fake: FakeAnthropic):
    def ask(risk: str) -> httpx.Response:
        body = {"model": "auto", "messages": [{"role": "user", "content": f"drop the {risk} table"}]}
        return httpx.post(gateway.base_url + "/v1/chat/completions", json=body, headers={"X-Task-Type": "risky", "X-Risk-Level": risk}, timeout=60)

    before = len(fake.requests)
    low = ask("low")
    assert low.headers["x-seekgate-model"] == "fake-echo" and len(fake.requests) == before
    high = ask("high")
    assert high.status_code == 200 and high.headers["x-seekgate-model"] == "cloud-sonnet"
    assert high.headers["x-seekgate-escalated"] == "high risk: cloud-sonnet" and high.headers["x-seekgate-backend"] == "claude"
    assert _sent(fake)["messages"] == [{"role": "user", "content": [{"type": "text", "text": "drop the high table"}]}]


def test_models_list_probes_each_anthropic_backend(gateway: Process, fake: FakeAnthropic):
    data = {m["id"]: m for m in httpx.get(gateway.base_url + "/v1/models", timeout=60).json()["data"]}
    assert data["cloud-sonnet"]["ready"] is True and data["cloud-sonnet"]["backend_type"] == "anthropic"
    assert data["cloud-badkey"]["ready"] is False and "401" in data["cloud-badkey"]["detail"]
    assert data["cloud-refused"]["ready"] is False and "unreachable" in data["cloud-refused"]["detail"]
    probes = [r for r in fake.requests if r.path == "/v1/models"]
    assert probes and probes[-1].headers["anthropic-version"] == "2023-06-01"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": "hi"}]}, "first message"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}, "alternate"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x"}]}]}, "tool_use_id"),
        ({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {"role": "user", "content": "next"}]}, "without `tool_result`"),
        ({"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "tool_result", "tool_use_id": "t1"}]}]}, "come first"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]}, "non-empty"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "seed": 1}, "seed: Extra inputs"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "tool_choice": {"type": "any"}}, "tool_choice"),
    ],
)  # fmt: skip
def test_the_fake_refuses_what_anthropic_refuses(fake: FakeAnthropic, body: dict, message: str):
    headers = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
    resp = httpx.post(fake.base_url + "/v1/messages", json=body, headers=headers, timeout=10)
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error"
    assert message in resp.json()["error"]["message"]
