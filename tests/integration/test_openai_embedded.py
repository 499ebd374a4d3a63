"""The real openai SDK against the gateway on loopback, served by the embedded llama.cpp engine
with the bundled SmolLM2 (and a tiny random-weight DeepSeek-V2 for the FIM path)."""

import asyncio
import json
import time

import httpx
import openai
import pytest


def test_chat_returns_a_real_answer_with_usage(client: openai.OpenAI):
    resp = client.chat.completions.create(
        model="smollm2-135m",
        messages=[{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Name a colour."}],
        max_tokens=24,
        temperature=0,
    )
    choice = resp.choices[0]
    assert choice.message.role == "assistant" and choice.message.content.strip()
    assert choice.finish_reason in ("stop", "length")
    assert resp.model == "smollm2-135m"
    assert resp.usage.prompt_tokens > 5 and 0 < resp.usage.completion_tokens <= 24
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_default_model_answers_when_the_request_names_none(gateway):
    resp = httpx.post(gateway.base_url + "/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}, timeout=120)
    assert resp.status_code == 200
    assert resp.json()["model"] == "smollm2-135m"
    assert resp.headers["x-seekgate-backend"] == "embedded"


def test_greedy_generation_is_deterministic_and_streaming_matches_it(client: openai.OpenAI):
    kwargs = dict(model="smollm2-135m", messages=[{"role": "user", "content": "Count: one, two,"}], max_tokens=16, temperature=0)
    first = client.chat.completions.create(**kwargs).choices[0].message.content
    second = client.chat.completions.create(**kwargs).choices[0].message.content
    assert first == second
    stream = client.chat.completions.create(**kwargs, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == first
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0


def test_stream_yields_tokens_as_they_are_generated(client: openai.OpenAI):
    stream = client.chat.completions.create(
        model="smollm2-135m", messages=[{"role": "user", "content": "Write a long story about a robot."}], max_tokens=48, stream=True, seed=1
    )
    contents = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert len(contents) >= 10  # many small deltas, not one buffered blob


def test_array_content_parts_and_stop_sequences(client: openai.OpenAI):
    resp = client.chat.completions.create(
        model="smollm2-135m",
        messages=[{"role": "user", "content": [{"type": "text", "text": "List: apple, banana,"}, {"type": "text", "text": " cherry"}]}],
        max_tokens=40,
        temperature=0,
        stop=[","],
    )
    assert "," not in resp.choices[0].message.content
    assert resp.choices[0].finish_reason == "stop"


def test_json_schema_response_format_is_enforced_by_the_grammar(client: openai.OpenAI):
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    for seed in (1, 2, 3):
        resp = client.chat.completions.create(
            model="smollm2-135m",
            messages=[{"role": "user", "content": "Invent a person."}],
            response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
            max_tokens=80,
            temperature=0.9,
            seed=seed,
        )
        assert resp.choices[0].finish_reason == "stop"  # the schema bounds the answer's length
        data = json.loads(resp.choices[0].message.content)
        assert set(data) == {"name", "age"} and isinstance(data["age"], int) and isinstance(data["name"], str)


def test_json_object_response_format_constrains_every_token(client: openai.OpenAI):
    resp = client.chat.completions.create(
        model="smollm2-135m",
        messages=[{"role": "user", "content": "Give me a JSON object describing a cat."}],
        response_format={"type": "json_object"},
        max_tokens=60,
        temperature=0,
    )
    text = resp.choices[0].message.content
    assert text.lstrip().startswith("{")  # without the grammar this model answers in prose or code
    if resp.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(text), dict)
    else:  # cut by max_tokens: still a prefix of a JSON object, so closing it must be all that is missing
        assert not any(ch in text for ch in "\x00\x01\x02\x1f")


def test_text_completion(client: openai.OpenAI):
    resp = client.completions.create(model="smollm2-135m", prompt="def add(a, b):\n", max_tokens=12, temperature=0)
    assert resp.choices[0].text and resp.usage.completion_tokens <= 12
    stream = client.completions.create(model="smollm2-135m", prompt="def add(a, b):\n", max_tokens=12, temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in stream) == resp.choices[0].text


def test_fill_in_the_middle_needs_fim_tokens(client: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model="smollm2-135m", prompt="def f(", suffix="    return x\n", max_tokens=4)
    assert info.value.body["param"] == "suffix" and "fill-in-the-middle" in info.value.body["message"]


def test_fill_in_the_middle_on_a_deepseek_v2_model(client: openai.OpenAI):
    resp = client.completions.create(
        model="tiny-deepseek2", prompt="def f(x):\n    ", suffix="\n    return y\n", max_tokens=8, temperature=0
    )
    assert resp.usage.completion_tokens > 0
    assert resp.usage.prompt_tokens > 8  # FIM markers plus prefix and suffix
    chat = client.chat.completions.create(model="tiny-deepseek2", messages=[{"role": "user", "content": "hi"}], max_tokens=8)
    assert chat.usage.completion_tokens > 0


def test_models_lists_aliases_with_backend_and_readiness(client: openai.OpenAI, gateway):
    models = {m.id: m for m in client.models.list()}
    assert {"smollm2-135m", "ds-coder-v2-lite", "ds-coder-6.7b", "upstream-smol", "fake-fixed"} <= set(models)
    smol = models["smollm2-135m"].model_dump()
    assert smol["backend"] == "embedded" and smol["backend_type"] == "llamacpp" and smol["ready"] is True
    ds = models["ds-coder-v2-lite"].model_dump()
    assert ds["ready"] is False and "seekgate pull ds-coder-v2-lite" in ds["detail"]
    assert models["upstream-smol"].model_dump()["ready"] is True
    assert models["refused"].model_dump()["ready"] is False


def test_missing_weights_answer_503_naming_the_pull_command(client: openai.OpenAI):
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="ds-coder-v2-lite", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 503 and "seekgate pull ds-coder-v2-lite" in info.value.message


def test_health_ready_and_docs(gateway):
    assert httpx.get(gateway.base_url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(gateway.base_url + "/readyz", timeout=30)
    # The test config includes a deliberately unreachable backend, so readiness says which.
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["model:smollm2-135m"]["ready"] is True
    assert checks["backend:refused"]["ready"] is False and checks["backend:upstream"]["ready"] is True
    spec = httpx.get(gateway.base_url + "/openapi.json").json()
    assert {"/v1/chat/completions", "/v1/completions", "/v1/models", "/healthz", "/readyz"} <= set(spec["paths"])
    assert "messages" in spec["components"]["schemas"]["ChatCompletionRequest"]["properties"]
    assert "openapi.json" in httpx.get(gateway.base_url + "/docs").text


def _load(gateway, alias: str) -> dict:
    models = httpx.get(gateway.base_url + "/v1/models").json()["data"]
    return next(m for m in models if m["id"] == alias)["load"]


@pytest.fixture(scope="module")
def tight_loaded(gateway) -> None:
    """smol-tight loads on first use; the counters exist once it has."""
    resp = httpx.post(gateway.base_url + "/v1/chat/completions", json={"model": "smol-tight", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}, timeout=120)
    assert resp.status_code == 200


def _wait_for(predicate, what: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


# A long answer that cannot end early: the grammar demands a 3000-character string.
LONG = {"type": "json_schema", "json_schema": {"name": "long", "schema": {"type": "string", "minLength": 3000}}}


def test_a_client_that_disconnects_stops_its_generation(gateway, tight_loaded):
    before = _load(gateway, "smol-tight")["cancelled"]
    body = {"model": "smol-tight", "messages": [{"role": "user", "content": "Talk."}], "max_tokens": 1500, "stream": True, "response_format": LONG}
    with httpx.stream("POST", gateway.base_url + "/v1/chat/completions", json=body, timeout=60) as resp:
        lines = resp.iter_lines()
        assert next(lines).startswith("data: ")
        assert _load(gateway, "smol-tight")["running"] == 1
    _wait_for(lambda: _load(gateway, "smol-tight")["cancelled"] == before + 1, "the generation to be cancelled")
    assert _load(gateway, "smol-tight")["running"] == 0


def test_a_non_streaming_client_that_disconnects_stops_its_generation(gateway, tight_loaded):
    before = _load(gateway, "smol-tight")["cancelled"]
    body = {"model": "smol-tight", "messages": [{"role": "user", "content": "Talk."}], "max_tokens": 1500, "response_format": LONG}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(gateway.base_url + "/v1/chat/completions", json=body, timeout=httpx.Timeout(60, read=1.5))
    _wait_for(lambda: _load(gateway, "smol-tight")["cancelled"] == before + 1, "the generation to be cancelled")


def test_full_queue_answers_503_at_once_and_the_server_keeps_serving(gateway, tight_loaded, aclient: openai.AsyncOpenAI):
    # smol-tight has one context and a queue of one: a third concurrent request is refused.
    async def scenario() -> None:
        running = await aclient.chat.completions.create(
            model="smol-tight", messages=[{"role": "user", "content": "Talk."}], max_tokens=1500, stream=True, response_format=LONG
        )
        await running.__anext__()
        waiting = asyncio.create_task(
            aclient.chat.completions.create(model="smol-tight", messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
        )
        await asyncio.to_thread(_wait_for, lambda: _load(gateway, "smol-tight")["waiting"] == 1, "the second request to queue")
        with pytest.raises(openai.InternalServerError) as info:
            await aclient.chat.completions.create(model="smol-tight", messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
        assert info.value.status_code == 503 and info.value.response.headers["retry-after"] == "1"
        assert "busy" in info.value.message
        await running.close()  # frees the context: the queued request now runs
        resp = await waiting
        assert resp.usage.completion_tokens > 0

    asyncio.run(scenario())
