"""Task profiles, prompt packs and resilient routes, through real HTTP with the openai SDK."""

import json
import time
from pathlib import Path

import httpx
import openai
import pytest

from tests.integration.conftest import ECHO_PACK


def _sent(resp) -> dict:
    """What the echo-body upstream received (it answers with the request body)."""
    return json.loads(resp.choices[0].message.content)


def test_header_picks_the_task_and_its_pack(client: openai.OpenAI):
    raw = client.chat.completions.with_raw_response.create(
        model="fake-echo", messages=[{"role": "user", "content": "hello"}], extra_headers={"X-Task-Type": "editor"}
    )
    assert raw.headers["x-seekgate-task"] == "editor" and raw.headers["x-seekgate-pack"] == "editor@v1"
    assert raw.headers["x-seekgate-model"] == "fake-echo" and raw.headers["x-seekgate-backend"] == "fake"


def test_body_metadata_picks_the_task(client: openai.OpenAI):
    raw = client.chat.completions.with_raw_response.create(
        model="fake-echo", messages=[{"role": "user", "content": "hello"}], metadata={"task_type": "refactor"}
    )
    assert raw.headers["x-seekgate-task"] == "refactor"


@pytest.mark.parametrize(
    ("text", "task"),
    [("diff --git a/x.py b/x.py\n--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b", "ci"), ("Write tests for add()", "tests"), ("What is a monad?", "chat")],
)
def test_task_is_inferred_from_the_messages(client: openai.OpenAI, text, task):
    raw = client.chat.completions.with_raw_response.create(model="fake-echo", messages=[{"role": "user", "content": text}])
    assert raw.headers["x-seekgate-task"] == task


def test_pack_goes_first_and_the_clients_system_message_stays(client: openai.OpenAI):
    resp = client.chat.completions.create(
        model="echo-body",
        messages=[{"role": "system", "content": "Client rules."}, {"role": "user", "content": "hi"}],
        extra_headers={"X-Task-Type": "tests"},
    )
    messages = _sent(resp)["messages"]
    assert [m["role"] for m in messages] == ["system", "system", "user"]
    assert "edge case" in messages[0]["content"].lower() and messages[1]["content"] == "Client rules."


def test_pack_header_overrides_and_none_disables_it(client: openai.OpenAI):
    raw = client.chat.completions.with_raw_response.create(
        model="echo-body", messages=[{"role": "user", "content": "hi"}], extra_headers={"X-Prompt-Pack": "editor@v1"}
    )
    assert raw.headers["x-seekgate-pack"] == "editor@v1" and raw.headers["x-seekgate-task"] == "chat"
    plain = client.chat.completions.with_raw_response.create(
        model="echo-body", messages=[{"role": "user", "content": "hi"}], extra_headers={"X-Prompt-Pack": "none"}
    )
    assert "x-seekgate-pack" not in plain.headers
    assert _sent(plain.parse())["messages"] == [{"role": "user", "content": "hi"}]


def test_profile_default_max_tokens_applies_only_when_the_client_sets_none(client: openai.OpenAI):
    resp = client.chat.completions.create(model="echo-body", messages=[{"role": "user", "content": "hi"}], extra_headers={"X-Task-Type": "chat"})
    assert _sent(resp)["max_tokens"] == 1024
    resp = client.chat.completions.create(model="echo-body", messages=[{"role": "user", "content": "hi"}], max_tokens=7)
    assert _sent(resp)["max_tokens"] == 7


def test_edited_pack_files_take_effect_without_a_restart(client: openai.OpenAI, prompts_dir: Path):
    def pack_text() -> str:
        resp = client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}], extra_headers={"X-Task-Type": "echo-task"})
        return _sent(resp)["messages"][0]["content"]

    assert "version 1" in pack_text()
    (prompts_dir / "echo-pack@v1.md").write_text(ECHO_PACK.format(version=1).replace("You are", "Now you are"))
    deadline = time.monotonic() + 30
    while "Now you are" not in pack_text():
        assert time.monotonic() < deadline, "the edited pack never took effect"
        time.sleep(0.2)


def test_unknown_task_pack_and_risk_are_clear_errors(client: openai.OpenAI):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="fake-echo", messages=[{"role": "user", "content": "x"}], extra_headers={"X-Task-Type": "poetry"})
    assert info.value.body["param"] == "X-Task-Type" and "editor" in info.value.message and "rag-code" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="fake-echo", messages=[{"role": "user", "content": "x"}], extra_headers={"X-Prompt-Pack": "editor@v9"})
    assert info.value.body["param"] == "X-Prompt-Pack" and "editor@v1" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="fake-echo", messages=[{"role": "user", "content": "x"}], extra_headers={"X-Risk-Level": "extreme"})
    assert info.value.body["param"] == "X-Risk-Level"
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(
            model="fake-echo", messages=[{"role": "user", "content": "x"}], extra_headers={"X-Task-Type": "ci", "X-Risk-Level": "high"}
        )
    assert "low, med" in info.value.message


def test_auto_model_follows_the_route_and_falls_back_when_a_model_is_down(client: openai.OpenAI):
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "echo me"}], extra_headers={"X-Task-Type": "overflow-demo"}
    )
    assert raw.parse().choices[0].message.content == "Hello from the fake backend."
    assert raw.headers["x-seekgate-model"] == "fake-fixed"
    assert raw.headers["x-seekgate-fallback"] == "fake-error-503=upstream_unavailable, fake-error-502=upstream_error"


def test_streams_fall_back_before_the_first_chunk(client: openai.OpenAI):
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": "a b c"}], stream=True, extra_headers={"X-Task-Type": "overflow-demo"}
    )
    assert raw.headers["x-seekgate-model"] == "fake-fixed"
    assert "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices) == "Hello from the fake backend."


def test_every_model_down_reports_each_failure(client: openai.OpenAI):
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}], extra_headers={"X-Task-Type": "all-down"})
    assert info.value.status_code == 504
    assert "refused" in info.value.message and "fake-error-504" in info.value.message


def test_long_prompts_take_the_long_context_route(client: openai.OpenAI):
    short = client.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": "short"}], extra_headers={"X-Task-Type": "long-demo"})
    assert short.headers["x-seekgate-model"] == "fake-fixed"
    long = client.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": "word " * 100}], extra_headers={"X-Task-Type": "long-demo"})
    assert long.headers["x-seekgate-model"] == "fake-echo"


def test_circuit_opens_on_a_failing_model_and_probes_it_after_the_cooldown(client: openai.OpenAI):
    def fallback() -> str:
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "ping"}], extra_headers={"X-Task-Type": "fallback-demo"}
        )
        assert raw.parse().choices[0].message.content == "ping"
        return raw.headers["x-seekgate-fallback"]

    # One request: a try and a retry on the refused port, two failures in a row: the circuit opens.
    assert fallback() == "refused-breaker=upstream_unavailable"
    assert fallback() == "refused-breaker=circuit_open"  # skipped without a connection attempt
    time.sleep(1.1)  # the configured cooldown (breaker_cooldown_s = 1.0)
    assert fallback() == "refused-breaker=upstream_unavailable"  # the half-open probe failed: open again
    assert fallback() == "refused-breaker=circuit_open"


def test_the_default_route_reaches_the_bundled_model_when_deepseek_is_absent(client: openai.OpenAI):
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=[{"role": "user", "content": "Hi"}], max_tokens=4)
    assert raw.headers["x-seekgate-model"] == "smollm2-135m"
    assert raw.headers["x-seekgate-fallback"] == "ds-coder-v2-lite=model_not_ready"


def test_prompts_endpoint_lists_packs_and_versions(gateway):
    data = httpx.get(gateway.base_url + "/v1/prompts", timeout=30).json()
    refs = {p["ref"] for p in data["data"]}
    assert {"editor@v1", "refactor@v1", "tests@v1", "chat@v1", "rag-code@v1", "rag-doc@v1", "ci@v1", "echo-pack@v1"} <= refs


def test_a_model_that_breaks_the_slo_loses_its_place_on_the_route(client: openai.OpenAI, gateway):
    def serve() -> tuple[str, str | None]:
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "a b"}], extra_headers={"X-Task-Type": "slo-demo"}
        )
        return raw.headers["x-seekgate-model"], raw.headers.get("x-seekgate-slo")

    # fake-slow-slo takes about 80 ms (two chunks, 40 ms each) against a 50 ms SLO; the SLO is
    # judged once a model has routing.slo_min_samples = 3 samples.
    assert [serve() for _ in range(3)] == [("fake-slow-slo", None)] * 3
    model, slo = serve()
    assert model == "fake-fixed-slo", httpx.get(gateway.base_url + "/v1/slo", timeout=30).json()
    assert slo.startswith("rerouted: fake-slow-slo p95 ") and slo.endswith("> 50 ms")
    snapshot = httpx.get(gateway.base_url + "/v1/slo", timeout=30).json()
    slow = snapshot["model"]["fake-slow-slo"]
    assert slow["samples"] == 3 and slow["p95_ms"] > 50 and slow["reroutes"] >= 1
    assert snapshot["task"]["slo-demo"]["samples"] == 4


def test_replicas_share_the_load_by_fewest_requests_in_flight(aclient: openai.AsyncOpenAI, client: openai.OpenAI):
    import asyncio

    async def backends_of_two_concurrent() -> list[str]:
        async def one() -> str:
            raw = await aclient.chat.completions.with_raw_response.create(model="balanced-slow", messages=[{"role": "user", "content": "a"}])
            return raw.headers["x-seekgate-backend"]

        return sorted(await asyncio.gather(one(), one()))

    assert asyncio.run(backends_of_two_concurrent()) == ["fake-a", "fake-b"]
    # One at a time, nothing is in flight: the first listed replica answers each.
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(model="balanced-slow", messages=[{"role": "user", "content": "a"}])
        assert raw.headers["x-seekgate-backend"] == "fake-a"


def test_a_malformed_pack_file_is_reported_and_the_others_keep_working(gateway, prompts_dir: Path, client: openai.OpenAI):
    broken = prompts_dir / "broken@v1.md"
    broken.write_text("---\nname: broken\nversion: [\n---\nbody\n")
    try:
        deadline = time.monotonic() + 30
        while not (problems := httpx.get(gateway.base_url + "/v1/prompts", timeout=30).json()["problems"]):
            assert time.monotonic() < deadline, "the malformed pack was never reported"
            time.sleep(0.2)
        assert problems[0].startswith(f"{broken}:3:")
        resp = client.chat.completions.with_raw_response.create(model="fake-echo", messages=[{"role": "user", "content": "x"}], extra_headers={"X-Task-Type": "editor"})
        assert resp.headers["x-seekgate-pack"] == "editor@v1"
    finally:
        broken.unlink()


def test_circuit_closes_when_the_probe_succeeds(client: openai.OpenAI):
    def headers() -> tuple[str, str | None]:
        raw = client.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": "ping"}], extra_headers={"X-Task-Type": "recovery-demo"}
        )
        return raw.headers["x-seekgate-model"], raw.headers.get("x-seekgate-fallback")

    # fake-down-2 fails its first two calls: a try and a retry, two failures in a row: open.
    assert headers() == ("fake-echo", "fake-down-2=upstream_unavailable")
    assert headers() == ("fake-echo", "fake-down-2=circuit_open")
    time.sleep(1.1)  # the configured cooldown
    assert headers() == ("fake-down-2", None)  # the probe answers: the circuit closes
    assert headers() == ("fake-down-2", None)
