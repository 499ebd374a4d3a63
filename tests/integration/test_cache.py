"""The response cache through the real HTTP stack: an upstream that numbers its answers shows
whether a request reached the model (a new number) or came from the cache (an old one).
Every part of the key misses when it changes; non-deterministic requests and tasks that are
not cacheable are never cached; no-cache bypasses; hits stream; secrets stay out of the cache;
Redis holds the cache when configured. The request log line and id are checked here too."""

from __future__ import annotations

import json
import random
import string
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest
from aiohttp import web

from tests.fixtures.redis import redis_db, redis_server, redis_url  # noqa: F401  (fixtures; see tests/fixtures/redis.py)
from tests.fixtures.servers import Process, run_gateway, serve_app

CONFIG = """
[server]
default_model = "numbered"
preload_default = false

[backends.numbering]
type = "openai"
base_url = "{upstream}/v1"

[models.numbered]
backend = "numbering"
upstream_model = "numbered"

[models.numbered-b]
backend = "numbering"
upstream_model = "numbered-b"

[tasks.chat]
route = ["numbered"]
cacheable = false

[tasks.refactor]
route = ["numbered"]
cacheable = true
pack = ""

[tasks.tests]
route = ["numbered"]
cacheable = true
pack = ""

[tasks.ci]
route = ["ds-coder-v2-lite", "numbered"]   # DeepSeek's weights are not on this machine
cacheable = true
pack = ""
"""


class Numbering:
    """An OpenAI-compatible upstream whose every answer carries a new number."""

    def __init__(self) -> None:
        self.calls = 0

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.calls += 1
        last = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        text = f"answer {self.calls}: {last}"
        usage = {"prompt_tokens": 7, "completion_tokens": 4}
        if not body.get("stream"):
            message = {"role": "assistant", "content": text}
            return web.json_response({"choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for piece in text.split(" "):
            delta = {"choices": [{"index": 0, "delta": {"content": piece + " "}, "finish_reason": None}]}
            await resp.write(b"data: " + json.dumps(delta).encode() + b"\n\n")
        end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": usage}
        await resp.write(b"data: " + json.dumps(end).encode() + b"\n\ndata: [DONE]\n\n")
        return resp


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Numbering, str]]:
    numbering = Numbering()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", numbering.chat)
    with serve_app(app) as root:
        yield numbering, root


@pytest.fixture(scope="module")
def gateway(upstream: tuple[Numbering, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    with run_gateway(CONFIG.replace("{upstream}", upstream[1]), tmp_path_factory.mktemp("cache")) as server:
        yield server


def _client(server: Process) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="local", max_retries=0)


def _ask(server: Process, text: str, *, task: str = "refactor", headers: dict[str, str] | None = None, **kwargs: object) -> tuple[str, str]:
    """The answer and the x-seekgate-cache header."""
    kwargs = {"model": "auto", "temperature": 0, **kwargs}
    raw = _client(server).chat.completions.with_raw_response.create(
        messages=[{"role": "user", "content": text}], extra_headers={"X-Task-Type": task, **(headers or {})}, **kwargs,
    )  # fmt: skip
    return raw.parse().choices[0].message.content or "", raw.headers["x-seekgate-cache"]


def _unique(label: str) -> str:
    return f"{label} {random.Random().getrandbits(48):x}"


def test_a_deterministic_request_reaches_the_model_once_and_then_comes_from_the_cache(gateway: Process, upstream: tuple[Numbering, str]):
    prompt = _unique("rename the variable")
    first, status = _ask(gateway, prompt)
    assert status == "miss" and first.endswith(prompt)
    calls = upstream[0].calls
    again, status = _ask(gateway, prompt)
    assert status == "hit" and again == first and upstream[0].calls == calls
    seeded, status = _ask(gateway, prompt, temperature=0.8, seed=7)  # a seed makes sampling repeatable too
    assert status == "miss"
    assert _ask(gateway, prompt, temperature=0.8, seed=7) == (seeded, "hit")


def test_changing_any_part_of_the_key_misses(gateway: Process, upstream: tuple[Numbering, str]):
    prompt = _unique("extract a function")
    base, _ = _ask(gateway, prompt)
    tool = {"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}}}
    variants: dict[str, dict[str, object]] = {
        "task": {"task": "tests"},
        "model": {"model": "numbered-b"},
        "pack": {"headers": {"X-Prompt-Pack": "refactor"}},
        "max_tokens": {"max_tokens": 33},
        "stop": {"stop": ["END"]},
        "top_p": {"top_p": 0.5},
        "seed": {"seed": 1},
        "response_format": {"response_format": {"type": "json_object"}},
        "tools": {"tools": [tool], "tool_choice": "none"},
    }
    for part, change in variants.items():
        calls = upstream[0].calls
        answer, status = _ask(gateway, prompt, **change)  # type: ignore[arg-type]
        assert status == "miss" and upstream[0].calls == calls + 1 and answer != base, part
    other, status = _ask(gateway, prompt + "!")
    assert status == "miss" and other != base
    assert _ask(gateway, prompt) == (base, "hit")  # the original is still there


def test_sampled_requests_and_tasks_that_are_not_cacheable_are_never_cached(gateway: Process, upstream: tuple[Numbering, str]):
    prompt = _unique("write a docstring")
    for kwargs in ({"temperature": 0.7}, {"temperature": openai.NOT_GIVEN}):  # sampled; the default temperature is 1
        first, status = _ask(gateway, prompt, **kwargs)  # type: ignore[arg-type]
        second, _ = _ask(gateway, prompt, **kwargs)  # type: ignore[arg-type]
        assert status == "off" and first != second
    first, status = _ask(gateway, prompt, task="chat")
    assert status == "off" and _ask(gateway, prompt, task="chat")[0] != first


def test_a_route_whose_first_model_has_no_weights_caches_the_model_that_answers(gateway: Process, upstream: tuple[Numbering, str]):
    prompt = _unique("review the diff")
    raw = _client(gateway).chat.completions.with_raw_response.create(
        model="auto", temperature=0, messages=[{"role": "user", "content": prompt}], extra_headers={"X-Task-Type": "ci"},
    )  # fmt: skip
    assert raw.headers["x-seekgate-cache"] == "miss" and raw.headers["x-seekgate-model"] == "numbered"
    calls = upstream[0].calls
    assert _ask(gateway, prompt, task="ci") == (raw.parse().choices[0].message.content, "hit") and upstream[0].calls == calls


def test_no_cache_asks_the_model_and_keeps_its_newer_answer(gateway: Process):
    prompt = _unique("inline the helper")
    first, _ = _ask(gateway, prompt)
    fresh, status = _ask(gateway, prompt, headers={"Cache-Control": "no-cache"})
    assert status == "bypass" and fresh != first
    assert _ask(gateway, prompt) == (fresh, "hit")


def test_a_hit_streams_and_a_streamed_answer_is_cached(gateway: Process, upstream: tuple[Numbering, str]):
    prompt = _unique("split the module")
    whole, _ = _ask(gateway, prompt)
    calls = upstream[0].calls
    with _client(gateway).chat.completions.with_streaming_response.create(
        model="auto", temperature=0, stream=True, messages=[{"role": "user", "content": prompt}], extra_headers={"X-Task-Type": "refactor"},
    ) as resp:  # fmt: skip
        assert resp.headers["x-seekgate-cache"] == "hit"
        chunks = list(resp.parse())
    deltas = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(deltas) > 1 and "".join(deltas) == whole and upstream[0].calls == calls
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]

    streamed_prompt = _unique("move the class")
    claude = anthropic.Anthropic(base_url=gateway.base_url, api_key="local", max_retries=0)
    ask = {"model": "numbered", "max_tokens": 50, "messages": [{"role": "user", "content": streamed_prompt}]}
    extra = {"extra_headers": {"X-Task-Type": "refactor"}, "extra_body": {"temperature": 0}}
    with claude.messages.stream(**ask, **extra) as stream:  # type: ignore[arg-type]
        streamed = "".join(stream.text_stream)
    assert streamed.startswith("answer ")
    calls = upstream[0].calls
    with claude.messages.stream(**ask, **extra) as stream:  # type: ignore[arg-type]
        assert "".join(stream.text_stream) == streamed and stream.get_final_message().stop_reason == "end_turn"
    assert upstream[0].calls == calls


def test_the_cache_never_holds_a_secret_the_client_sent_and_a_hit_restores_it(gateway: Process):
    rng = random.Random(5)
    token = "gh" + "p_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(36))
    prompt = f"why is {token} refused? {_unique('id')}"
    first, status = _ask(gateway, prompt)
    assert status == "miss" and token in first
    assert _ask(gateway, prompt) == (first, "hit")
    stored = (gateway.log.parent / "data" / "cache.db").read_bytes()
    wal = gateway.log.parent / "data" / "cache.db-wal"
    assert token.encode() not in stored + (wal.read_bytes() if wal.exists() else b"")


def test_a_prompt_holding_a_secret_still_hits_the_cache_after_a_restart(upstream: tuple[Numbering, str], tmp_path: Path):
    token = "gh" + "p_" + "".join(random.Random(9).choice(string.ascii_letters + string.digits) for _ in range(36))
    prompt = f"rotate {token} {_unique('restart')}"
    config = CONFIG.replace("{upstream}", upstream[1])
    with run_gateway(config, tmp_path) as server:
        first, status = _ask(server, prompt)
        assert status == "miss" and token in first
    with run_gateway(config, tmp_path) as restarted:  # same data_dir: the same vault key, the same placeholder
        assert _ask(restarted, prompt) == (first, "hit")


def test_replicas_that_share_a_vault_key_share_cached_answers_to_prompts_with_secrets(
    upstream: tuple[Numbering, str], redis_db: str, tmp_path: Path,  # noqa: F811
) -> None:  # fmt: skip
    token = "gh" + "p_" + "".join(random.Random(11).choice(string.ascii_letters + string.digits) for _ in range(36))
    prompt = f"revoke {token} {_unique('replica')}"
    config = CONFIG.replace("{upstream}", upstream[1]) + '\n[cache]\nstore = "redis"\n'
    env = {"SEEKGATE_REDIS_URL": redis_db, "SEEKGATE_VAULT_KEY": "one secret for the fleet"}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with run_gateway(config, tmp_path / "a", env=env) as one:
        first, status = _ask(one, prompt)
        assert status == "miss"
    with run_gateway(config, tmp_path / "b", env=env) as other:
        assert _ask(other, prompt) == (first, "hit")
    assert not (tmp_path / "a" / "data" / "vault.key").exists()  # the configured secret, not a file


def test_each_request_logs_one_json_line_with_its_figures_and_id(gateway: Process):
    prompt = _unique("log me")
    raw = _client(gateway).chat.completions.with_raw_response.create(
        model="auto", temperature=0, messages=[{"role": "user", "content": prompt}], extra_headers={"X-Task-Type": "refactor", "X-Request-Id": "req-test-42"},
    )  # fmt: skip
    assert raw.headers["x-request-id"] == "req-test-42"
    generated = _client(gateway).chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": "hi"}])
    assert generated.headers["x-request-id"].startswith("req_")
    deadline = time.monotonic() + 10
    line = None
    while line is None and time.monotonic() < deadline:
        lines = [json.loads(x) for x in gateway.log.read_text().splitlines() if x.startswith("{")]
        line = next((x for x in lines if x.get("request", {}).get("id") == "req-test-42"), None)
        time.sleep(0.1)
    assert line is not None and line["logger"] == "seekgate.requests" and line["level"] == "info"
    fields = line["request"]
    assert fields["endpoint"] == "/v1/chat/completions" and fields["status"] == 200 and fields["task"] == "refactor"
    assert fields["model"] == "numbered" and fields["backend"] == "numbering" and fields["cache"] == "miss"
    assert fields["input_tokens"] == 7 and fields["output_tokens"] == 4 and fields["latency_ms"] > 0
    assert prompt not in gateway.log.read_text()  # no prompt text in the log


def test_redis_holds_the_cache_when_configured(upstream: tuple[Numbering, str], redis_db: str, tmp_path: Path):  # noqa: F811
    config = CONFIG.replace("{upstream}", upstream[1]) + '\n[cache]\nstore = "redis"\n'
    with run_gateway(config, tmp_path, env={"SEEKGATE_REDIS_URL": redis_db}) as server:
        prompt = _unique("redis")
        first, status = _ask(server, prompt)
        assert status == "miss"
        assert _ask(server, prompt) == (first, "hit")
    (tmp_path / "second").mkdir()
    with run_gateway(config, tmp_path / "second", env={"SEEKGATE_REDIS_URL": redis_db}) as replica:
        assert _ask(replica, prompt) == (first, "hit")  # another replica shares it
    assert not (tmp_path / "data" / "cache.db").exists()
