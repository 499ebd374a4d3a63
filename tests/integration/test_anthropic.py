"""The Anthropic Messages API with the real anthropic SDK, against the embedded engine and the
fake backend."""

import anthropic
import httpx
import pytest


@pytest.fixture
def claude(gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.base_url, api_key="sk-ant-unused", max_retries=0, timeout=120)


def test_plain_message_from_the_bundled_model(claude: anthropic.Anthropic):
    msg = claude.messages.create(
        model="claude-haiku-4-5", max_tokens=32, system="Answer in one short sentence.",
        messages=[{"role": "user", "content": "What is a list in Python?"}], extra_body={"temperature": 0},
    )  # fmt: skip
    assert msg.type == "message" and msg.role == "assistant" and msg.model == "claude-haiku-4-5"
    assert msg.content[0].type == "text" and msg.content[0].text.strip()
    assert msg.stop_reason in ("end_turn", "max_tokens") and 0 < msg.usage.output_tokens <= 32 and msg.usage.input_tokens > 0


def test_system_blocks_and_stop_sequences(claude: anthropic.Anthropic):
    msg = claude.messages.create(
        model="claude-haiku-4-5", max_tokens=60, extra_body={"temperature": 0},
        system=[{"type": "text", "text": "You list fruit."}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "List: apple, banana,"}]}],
        stop_sequences=["e"],  # the commonest letter: any answer of a few words has one
    )  # fmt: skip
    assert msg.stop_reason == "stop_sequence" and msg.stop_sequence == "e"
    assert "e" not in msg.content[0].text


def test_streaming_follows_anthropics_event_sequence(gateway, claude: anthropic.Anthropic):
    body = {"model": "claude-haiku-4-5", "max_tokens": 24, "temperature": 0, "stream": True,
            "messages": [{"role": "user", "content": "Count to five."}]}  # fmt: skip
    with httpx.stream("POST", gateway.base_url + "/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}, timeout=120) as resp:
        events = [line.removeprefix("event: ") for line in resp.iter_lines() if line.startswith("event: ")]
    assert events[:3] == ["message_start", "ping", "content_block_start"]
    deltas = events[3:-3]
    assert deltas and set(deltas) == {"content_block_delta"}
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    with claude.messages.stream(model="claude-haiku-4-5", max_tokens=24, extra_body={"temperature": 0},
                                messages=[{"role": "user", "content": "Count to five."}]) as stream:  # fmt: skip
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 1 and "".join(pieces) == final.content[0].text
    assert final.usage.output_tokens > 0 and final.stop_reason in ("end_turn", "max_tokens")
    plain = claude.messages.create(model="claude-haiku-4-5", max_tokens=24, extra_body={"temperature": 0}, messages=[{"role": "user", "content": "Count to five."}])
    assert plain.content[0].text == final.content[0].text


def test_claude_model_names_map_to_local_aliases(claude: anthropic.Anthropic):
    raw = claude.messages.with_raw_response.create(model="claude-sonnet-4-5", max_tokens=4, messages=[{"role": "user", "content": "hi"}])
    assert raw.headers["x-seekgate-model"] == "smollm2-135m"  # "auto": the chat route, DeepSeek absent here
    raw = claude.messages.with_raw_response.create(model="fake-echo", max_tokens=8, messages=[{"role": "user", "content": "same words"}])
    assert raw.parse().content[0].text == "same words"


def test_count_tokens_uses_the_models_tokenizer(claude: anthropic.Anthropic):
    short = claude.messages.count_tokens(model="claude-haiku-4-5", messages=[{"role": "user", "content": "hi"}])
    long = claude.messages.count_tokens(model="claude-haiku-4-5", messages=[{"role": "user", "content": "hi " * 200}])
    assert 0 < short.input_tokens < long.input_tokens and long.input_tokens - short.input_tokens >= 150


def test_errors_use_anthropics_shape(gateway, claude: anthropic.Anthropic):
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.messages.create(model="claude-haiku-4-5", max_tokens=0, messages=[{"role": "user", "content": "x"}])
    assert info.value.body["type"] == "error" and info.value.body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in info.value.message
    with pytest.raises(anthropic.NotFoundError) as info:
        claude.messages.create(model="gpt-9", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert info.value.body["error"]["type"] == "not_found_error" and "smollm2-135m" in info.value.message
    with pytest.raises(anthropic.BadRequestError) as info:
        claude.messages.create(
            model="claude-haiku-4-5", max_tokens=8,
            messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}],
        )  # fmt: skip
    assert "images" in info.value.message
    missing = httpx.post(gateway.base_url + "/v1/messages", json={"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "x"}]})
    assert missing.status_code == 400 and "max_tokens" in missing.json()["error"]["message"]
    assert httpx.post(gateway.base_url + "/v1/messages", content=b"{nope").json()["error"]["type"] == "invalid_request_error"


def test_a_failure_mid_stream_ends_with_an_error_event(gateway):
    body = {"model": "fake-broken", "max_tokens": 16, "stream": True, "messages": [{"role": "user", "content": "a b c d"}]}
    with httpx.stream("POST", gateway.base_url + "/v1/messages", json=body, timeout=60) as resp:
        lines = [line for line in resp.iter_lines() if line]
    assert lines[-2] == "event: error" and "mid-stream" in lines[-1]


def test_tool_results_and_thinking_blocks_from_earlier_turns_are_accepted(claude: anthropic.Anthropic):
    msg = claude.messages.create(
        model="fake-echo", max_tokens=16,
        messages=[
            {"role": "user", "content": "what is in a.txt?"},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "look", "signature": "s"},
                                              {"type": "tool_use", "id": "toolu_1", "name": "read", "input": {"path": "a.txt"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "hello"}, {"type": "text", "text": "summarise it"}]},
        ],
    )  # fmt: skip
    assert msg.content[0].text == "summarise it"
