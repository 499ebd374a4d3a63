"""Tool calls through `openai` backends whose model has no tool use, emulated per backend:

    tool_mode = "grammar"      the GBNF grammar in the request (llama.cpp's server)
    tool_mode = "json_schema"  response_format json_schema (vLLM, Ollama, mistralrs, MLX)

Both run against llama-cpp-python's own server with the bundled SmolLM2 (the `upstream`
fixture). That server takes JSON schemas in its own dialect (`{"type": "json_object",
"schema": ...}`), so the json_schema backend reaches it through a small proxy that rewrites
OpenAI's `json_schema` response format into it and records what the gateway sent; the
constraint itself is enforced by llama.cpp."""

import json
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import anthropic
import jsonschema
import openai
import pytest
from aiohttp import web

from tests.fixtures.servers import Process, run_gateway, serve_app
from tests.integration.test_tools import OPENAI_TOOLS, SCHEMAS, WEATHER

CONFIG = """
[backends.upstream-grammar]
type = "openai"
base_url = "{upstream}/v1"
tool_mode = "grammar"

[backends.upstream-schema]
type = "openai"
base_url = "{proxy}/v1"
tool_mode = "json_schema"

[models.smol-grammar]
backend = "upstream-grammar"
upstream_model = "smollm2-upstream"

[models.smol-schema]
backend = "upstream-schema"
upstream_model = "smollm2-upstream"
"""


class SchemaProxy:
    """OpenAI `response_format: json_schema` -> llama-cpp-python's json_object + schema."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.bodies: list[dict] = []

    async def forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(json.loads(json.dumps(body)))  # as the gateway sent it
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            body["response_format"] = {"type": "json_object", "schema": fmt["json_schema"]["schema"]}
        async with aiohttp.ClientSession() as session:
            async with session.post(self.target + request.path, json=body) as upstream:
                out = web.StreamResponse(status=upstream.status, headers={"Content-Type": upstream.headers.get("Content-Type", "application/json")})
                await out.prepare(request)
                async for block in upstream.content.iter_any():
                    await out.write(block)
                await out.write_eof()
                return out

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []})


@pytest.fixture(scope="module")
def proxy(upstream: Process) -> Iterator[tuple[str, SchemaProxy]]:
    handler = SchemaProxy(upstream.base_url)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler.forward)
    app.router.add_get("/v1/models", handler.models)
    with serve_app(app) as root:
        yield root, handler


@pytest.fixture(scope="module")
def tools_gateway(upstream: Process, proxy: tuple[str, SchemaProxy], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    folder: Path = tmp_path_factory.mktemp("tools-upstream")
    with run_gateway(CONFIG.format(upstream=upstream.base_url, proxy=proxy[0]), folder) as server:
        yield server


@pytest.fixture
def oa(tools_gateway: Process) -> openai.OpenAI:
    return openai.OpenAI(base_url=tools_gateway.base_url + "/v1", api_key="unused", max_retries=0, timeout=180)


MODELS = ["smol-grammar", "smol-schema"]


@pytest.mark.parametrize("model", MODELS)
def test_required_and_named_tool_calls_are_valid(oa: openai.OpenAI, model: str):
    resp = oa.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "What's the weather in Oslo?"}], tools=OPENAI_TOOLS,
        tool_choice="required", parallel_tool_calls=False, max_tokens=80, temperature=0,
    )  # fmt: skip
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])
    named = oa.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "find the parser"}], tools=OPENAI_TOOLS,
        tool_choice={"type": "function", "function": {"name": "search_code"}}, max_tokens=80, temperature=0,
    )  # fmt: skip
    assert all(c.function.name == "search_code" for c in named.choices[0].message.tool_calls)


@pytest.mark.parametrize("model", MODELS)
def test_streamed_arguments_reassemble_to_valid_calls(oa: openai.OpenAI, model: str):
    stream = oa.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Weather in Lima?"}], tools=OPENAI_TOOLS[:1],
        tool_choice="required", parallel_tool_calls=False, max_tokens=80, temperature=0, stream=True,
    )  # fmt: skip
    chunks = list(stream)
    deltas = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert deltas[0].function.name == "get_weather"
    pieces = [d.function.arguments for d in deltas[1:] if d.function.arguments]
    assert len(pieces) > 3
    jsonschema.validate(json.loads("".join(pieces)), WEATHER)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


@pytest.mark.parametrize("model", MODELS)
def test_auto_answers_either_valid_calls_or_plain_prose(oa: openai.OpenAI, model: str):
    for content in ("Say hello to me in one short sentence.", "What's the weather in Paris in celsius?"):
        stream = oa.chat.completions.create(
            model=model, messages=[{"role": "user", "content": content}], tools=OPENAI_TOOLS, tool_choice="auto",
            max_tokens=60, temperature=0, stream=True,
        )  # fmt: skip
        chunks = [c for c in stream if c.choices]
        text = "".join(c.choices[0].delta.content or "" for c in chunks)
        calls = [d for c in chunks for d in c.choices[0].delta.tool_calls or ()]
        finish = chunks[-1].choices[0].finish_reason
        if calls:
            assert finish == "tool_calls" and not text.strip()
            arguments = "".join(d.function.arguments or "" for d in calls if d.index == 0)
            jsonschema.validate(json.loads(arguments), SCHEMAS[calls[0].function.name])
        else:
            assert text.strip() and not text.lstrip().startswith(("{", "[")), text  # no envelope leaks out
            assert '"content"' not in text


def test_what_each_mode_sends_upstream(oa: openai.OpenAI, proxy: tuple[str, SchemaProxy]):
    handler = proxy[1]
    handler.bodies.clear()
    oa.chat.completions.create(
        model="smol-schema", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        tools=OPENAI_TOOLS, tool_choice="auto", max_tokens=5, temperature=0,
    )  # fmt: skip
    (sent,) = handler.bodies
    assert "tools" not in sent and "tool_choice" not in sent  # the server never sees tools it cannot use
    assert [m["role"] for m in sent["messages"]] == ["system", "user"] and "get_weather" in sent["messages"][0]["content"]
    schema = sent["response_format"]["json_schema"]["schema"]
    assert {"properties": {"content": {"type": "string"}}}.items() <= schema["anyOf"][-1].items()  # the prose envelope
    jsonschema.validate({"content": "plain words"}, schema)
    jsonschema.validate({"name": "get_weather", "arguments": {"city": "Oslo", "unit": "c"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"name": "get_weather", "arguments": {"city": "Oslo"}}, schema)


@pytest.mark.parametrize("model", MODELS)
def test_a_tool_round_trip_through_the_anthropic_dialect(tools_gateway: Process, model: str):
    claude = anthropic.Anthropic(base_url=tools_gateway.base_url, api_key="unused", max_retries=0, timeout=180)
    tools = [{"name": "get_weather", "description": "Current weather for a city", "input_schema": WEATHER}]
    first = claude.messages.create(
        model=model, max_tokens=80, tools=tools, tool_choice={"type": "any", "disable_parallel_tool_use": True}, extra_body={"temperature": 0},
        messages=[{"role": "user", "content": "Weather in Rome?"}],
    )  # fmt: skip
    (use,) = [b for b in first.content if b.type == "tool_use"]
    assert first.stop_reason == "tool_use" and use.name == "get_weather"
    jsonschema.validate(use.input, WEATHER)
    answer = claude.messages.create(
        model=model, max_tokens=40, tools=tools, extra_body={"temperature": 0},
        messages=[
            {"role": "user", "content": "Weather in Rome?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": use.id, "name": use.name, "input": use.input}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "21 C and sunny"}]},
        ],
    )  # fmt: skip
    assert answer.stop_reason in ("end_turn", "max_tokens", "tool_use") and answer.content
