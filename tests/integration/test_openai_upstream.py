"""The `openai` backend against real OpenAI-compatible servers on loopback: llama-cpp-python's
own server (a separate process serving the bundled model) and a deliberately broken upstream."""

import json

import httpx
import openai
import pytest


def test_chat_through_an_openai_compatible_server(client: openai.OpenAI):
    resp = client.chat.completions.create(
        model="upstream-smol", messages=[{"role": "user", "content": "Name a fruit."}], max_tokens=12, temperature=0
    )
    assert resp.model == "upstream-smol"  # the client sees the alias, not the upstream's name
    assert resp.choices[0].message.content.strip()
    assert resp.usage.completion_tokens > 0 and resp.usage.prompt_tokens > 0


def test_streams_pass_through_chunk_by_chunk(client: openai.OpenAI):
    kwargs = dict(model="upstream-smol", messages=[{"role": "user", "content": "Count to five."}], max_tokens=20, temperature=0)
    whole = client.chat.completions.create(**kwargs).choices[0].message.content
    chunks = list(client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True}))
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(deltas) > 3 and "".join(deltas) == whole
    # llama-cpp-python's server sends no usage in streams; the gateway counts its token chunks
    # (the output guard joins the tokens of a word into one delta, so there are no fewer).
    assert len(deltas) <= chunks[-1].usage.completion_tokens <= 20


def test_text_completion_through_the_upstream(client: openai.OpenAI):
    resp = client.completions.create(model="upstream-smol", prompt="The sky is", max_tokens=6, temperature=0)
    assert resp.choices[0].text
    streamed = "".join(c.choices[0].text for c in client.completions.create(model="upstream-smol", prompt="The sky is", max_tokens=6, temperature=0, stream=True))
    assert streamed == resp.choices[0].text


def test_request_options_reach_the_upstream_in_openai_form(client: openai.OpenAI):
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    resp = client.chat.completions.create(
        model="echo-body",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Are you ok?"}],
        response_format={"type": "json_schema", "json_schema": {"name": "r", "schema": schema}},
        max_completion_tokens=30,
        temperature=0.5,
        top_p=0.9,
        seed=11,
        stop="END",
        presence_penalty=0.5,
        extra_headers={"X-Prompt-Pack": "none"},
    )
    sent = json.loads(resp.choices[0].message.content)
    assert sent["model"] == "echo-body" and sent["stream"] is False
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Are you ok?"}]
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {"name": "r", "schema": schema, "strict": True}}
    assert (sent["max_tokens"], sent["temperature"], sent["top_p"], sent["seed"], sent["stop"]) == (30, 0.5, 0.9, 11, ["END"])
    assert sent["presence_penalty"] == 0.5


def test_refused_upstream_is_503(client: openai.OpenAI):
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="refused", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 503
    assert info.value.body["type"] == "upstream_unavailable" and "unreachable" in info.value.message


def test_refused_upstream_stream_is_503_before_any_output(client: openai.OpenAI):
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="refused", messages=[{"role": "user", "content": "hi"}], stream=True)
    assert info.value.status_code == 503


def test_upstream_timeout_is_504(client: openai.OpenAI):
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="hang", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 504 and info.value.body["type"] == "upstream_timeout"


def test_upstream_server_error_is_502_with_its_message(client: openai.OpenAI):
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="fail500", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502 and "upstream exploded" in info.value.message


def test_upstream_rejection_is_400_with_its_message(client: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="reject400", messages=[{"role": "user", "content": "hi"}])
    assert "bad temperature" in info.value.message


def test_upstream_garbage_is_502(client: openai.OpenAI):
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="garbage", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 502


def test_a_broken_upstream_stream_ends_with_an_error_event(client: openai.OpenAI, gateway):
    stream = client.chat.completions.create(model="broken", messages=[{"role": "user", "content": "hi"}], stream=True)
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "one two"
    assert "misbehaving" in info.value.message and "broke before the answer was complete" in info.value.message
    # and the gateway keeps serving
    assert httpx.get(gateway.base_url + "/healthz").status_code == 200
