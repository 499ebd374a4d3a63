"""Timing and failure behaviour through the real HTTP stack, with the deterministic fake backend."""

import time

import httpx
import openai
import pytest


def test_fixed_answer_and_streamed_usage(client: openai.OpenAI):
    resp = client.chat.completions.create(model="fake-fixed", messages=[{"role": "user", "content": "x"}])
    assert resp.choices[0].message.content == "Hello from the fake backend."
    chunks = list(client.chat.completions.create(model="fake-tokens", messages=[{"role": "user", "content": "x"}], stream=True, stream_options={"include_usage": True}))
    content = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content) == 64 and chunks[-1].usage.completion_tokens == 64


def test_max_tokens_cuts_with_finish_reason_length(client: openai.OpenAI):
    resp = client.chat.completions.create(model="fake-tokens", messages=[{"role": "user", "content": "x"}], max_tokens=5)
    assert resp.choices[0].finish_reason == "length" and resp.usage.completion_tokens == 5
    resp = client.chat.completions.create(model="fake-tokens", messages=[{"role": "user", "content": "x"}], max_completion_tokens=64)
    assert resp.choices[0].finish_reason == "stop"


def test_echo_model_returns_the_last_user_message(client: openai.OpenAI):
    resp = client.chat.completions.create(model="fake-echo", messages=[{"role": "user", "content": "repeat after me"}])
    assert resp.choices[0].message.content == "repeat after me"


def test_slow_stream_delivers_chunks_over_time(client: openai.OpenAI):
    arrivals = []
    for chunk in client.chat.completions.create(model="fake-slow", messages=[{"role": "user", "content": "a b c d e"}], stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.monotonic())
    assert len(arrivals) == 5
    assert arrivals[-1] > arrivals[0]  # streamed as produced, not released in one burst at the end


def test_a_flaky_backend_answers_every_request_thanks_to_the_retry(client: openai.OpenAI):
    # fake-flaky refuses every other call (503 upstream_unavailable, which is safe to retry):
    # with routing.retries = 1 each request's retry lands on a good call.
    for _ in range(4):
        resp = client.chat.completions.create(model="fake-flaky", messages=[{"role": "user", "content": "x"}])
        assert resp.choices[0].message.content == "x"


@pytest.mark.parametrize(("model", "status"), [("fake-error-502", 502), ("fake-error-503", 503), ("fake-error-504", 504)])
def test_scripted_errors_keep_their_status(client: openai.OpenAI, model, status):
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == status


def test_failure_mid_stream_ends_the_stream_with_an_error_event(gateway):
    body = {"model": "fake-broken", "messages": [{"role": "user", "content": "a b c d"}], "stream": True}
    with httpx.stream("POST", gateway.base_url + "/v1/chat/completions", json=body) as resp:
        assert resp.status_code == 200
        events = [line for line in resp.iter_lines() if line.startswith("data: ")]
    assert '"error"' in events[-1] and "mid-stream" in events[-1]
    assert "[DONE]" not in events[-1]
