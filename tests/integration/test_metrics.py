"""GET /metrics through the real gateway: exact figures after a known sequence of requests in
both dialects, and the same totals from whichever of several worker processes answers."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fixtures.servers import Process, free_port, run_gateway, wait_http

CONFIG = """
[server]
default_model = "fake-echo"
preload_default = false

[routing]
classify = false
breaker_failures = 1
breaker_cooldown_s = 300

[guards.profiles.default]
names = false

[models.fake-err]
backend = "fake"
upstream_model = "error-502"

[models.fake-slow]
backend = "fake"
upstream_model = "slow-30"

[tasks.chat]
route = ["fake-echo"]

[tasks.guarded]
route = ["fake-echo"]

[tasks.limited]
route = ["fake-echo"]
requests_per_minute = 1

[tasks.cached]
route = ["fake-echo"]
cacheable = true

[tasks.fallback]
route = ["fake-err", "fake-echo"]

[tasks.slow]
route = ["fake-slow"]
slo_p95_ms = 1
"""

CHAT = "/v1/chat/completions"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base_url: str) -> Samples:
    # A new connection each time, so that with several workers any of them may answer.
    resp = httpx.get(base_url + "/metrics", headers={"Connection": "close"}, timeout=30)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    return {(s.name, frozenset(s.labels.items())): s.value for f in text_string_to_metric_families(resp.text) for s in f.samples}


def get(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def settled(base_url: str, requests: int) -> Samples:
    """The figures once every request sent has been counted (a record is made just after the
    response's last byte leaves, so the client can be a moment ahead)."""
    deadline = time.monotonic() + 10
    while True:
        samples = scrape(base_url)
        if total(samples, "seekgate_requests_total") >= requests or time.monotonic() > deadline:
            return samples
        time.sleep(0.05)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    with run_gateway(CONFIG, tmp_path_factory.mktemp("metrics")) as server:
        yield server


def test_a_known_sequence_of_requests_gives_exact_metrics(gateway: Process):
    client = openai.OpenAI(base_url=gateway.base_url + "/v1", api_key="unused", max_retries=0)

    def chat(task: str, text: str, **kwargs: object) -> object:
        return client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": text}], extra_headers={"X-Task-Type": task}, **kwargs
        )  # type: ignore[call-overload]

    for _ in range(3):
        chat("chat", "one two three")
    stream = client.chat.completions.create(
        model="fake-echo", messages=[{"role": "user", "content": "a b c d"}], stream=True, extra_headers={"X-Task-Type": "chat"}
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "a b c d"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": "x"}], extra_headers={"X-Task-Type": "chat"}
        )
    chat("limited", "first")
    with pytest.raises(openai.RateLimitError):
        chat("limited", "second")
    chat("cached", "same question", temperature=0)
    chat("cached", "same question", temperature=0)
    chat("fallback", "route me")
    chat("slow", "x y z")
    raw = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=[{"role": "user", "content": "mail ada.lovelace@example.org please"}],
        extra_headers={"X-Task-Type": "guarded"},
    )
    guard_header = raw.headers["x-seekgate-guards"]
    claude = anthropic.Anthropic(base_url=gateway.base_url, api_key="unused", max_retries=0)
    claude.messages.create(
        model="fake-echo",
        max_tokens=50,
        messages=[{"role": "user", "content": "hi there"}],
        extra_headers={"X-Task-Type": "chat"},
    )

    m = settled(gateway.base_url, 13)
    assert total(m, "seekgate_requests_total") == 13
    ok = {"endpoint": CHAT, "backend": "fake", "status": "200"}
    assert get(m, "seekgate_requests_total", **ok, task="chat", model="fake-echo") == 4
    assert get(m, "seekgate_requests_total", **ok, task="limited", model="fake-echo") == 1
    assert get(m, "seekgate_requests_total", **ok, task="cached", model="fake-echo") == 2
    assert get(m, "seekgate_requests_total", **ok, task="fallback", model="fake-echo") == 1
    assert get(m, "seekgate_requests_total", **ok, task="slow", model="fake-slow") == 1
    assert get(m, "seekgate_requests_total", **ok, task="guarded", model="fake-echo") == 1
    assert (
        get(m, "seekgate_requests_total", endpoint="/v1/messages", task="chat", model="fake-echo", backend="fake", status="200")
        == 1
    )
    assert total(m, "seekgate_requests_total", status="404", task="chat") == 1
    assert total(m, "seekgate_requests_total", status="429", task="limited") == 1
    # An unknown model name never becomes a label value of its own.
    assert not any(("model", "no-such-model") in labels for _, labels in m)

    chat_series = {"endpoint": CHAT, "task": "chat", "model": "fake-echo"}
    assert get(m, "seekgate_request_duration_seconds_count", **chat_series) == 4
    assert get(m, "seekgate_request_duration_seconds_bucket", **chat_series, le="+Inf") == 4
    slow = {"endpoint": CHAT, "task": "slow", "model": "fake-slow"}
    assert get(m, "seekgate_request_duration_seconds_bucket", **slow, le="0.025") == 0  # three words, 30 ms each
    assert get(m, "seekgate_request_duration_seconds_bucket", **slow, le="+Inf") == 1
    assert total(m, "seekgate_request_duration_seconds_count") == 13
    assert get(m, "seekgate_time_to_first_token_seconds_count", task="chat", model="fake-echo") == 1
    assert total(m, "seekgate_time_to_first_token_seconds_count") == 1

    # The fake backend counts words: 3 x "one two three" and "a b c d" on chat completions,
    # "hi there" on messages; answers echo them.
    assert get(m, "seekgate_tokens_total", direction="input", task="chat", model="fake-echo") == 3 * 3 + 4 + 2
    assert get(m, "seekgate_tokens_total", direction="output", task="chat", model="fake-echo") == 3 * 3 + 4 + 2
    assert get(m, "seekgate_tokens_total", direction="output", task="cached", model="fake-echo") == 2  # the hit used no model

    assert get(m, "seekgate_cache_requests_total", task="cached", result="miss") == 1
    assert get(m, "seekgate_cache_requests_total", task="cached", result="hit") == 1
    assert get(m, "seekgate_cache_requests_total", task="chat", result="off") == 6  # with the 404

    expected_guards = dict(item.split("=") for item in guard_header.split(", "))
    assert expected_guards.get("pii:redact") == "1"
    for key, n in expected_guards.items():
        kind, action = key.split(":")
        assert get(m, "seekgate_guard_actions_total", kind=kind, action=action) == int(n)

    assert get(m, "seekgate_fallbacks_total", model="fake-err", reason="upstream_error") == 1
    assert total(m, "seekgate_fallbacks_total") == 1
    assert get(m, "seekgate_slo_breaches_total", task="slow", model="fake-slow") == 1
    assert total(m, "seekgate_slo_breaches_total") == 1
    assert total(m, "seekgate_escalations_total") == 0

    assert total(m, "seekgate_requests_in_flight") == 0
    assert get(m, "seekgate_backend_up", backend="fake") == 1
    assert get(m, "seekgate_model_ready", model="fake-echo") == 1
    assert get(m, "seekgate_circuit_open", model="fake-err") == 1  # one failure opens it (breaker_failures = 1)
    assert get(m, "seekgate_circuit_open", model="fake-echo") == 0


def test_the_metrics_endpoint_is_not_itself_metered(gateway: Process):
    before = scrape(gateway.base_url)
    after = scrape(gateway.base_url)
    assert total(after, "seekgate_requests_total") == total(before, "seekgate_requests_total")
    assert not any(("endpoint", "/metrics") in labels for _, labels in after)


@contextlib.contextmanager
def serve_workers(config: str, workdir: Path, *args: str) -> Iterator[Process]:
    """`seekgate --config FILE ARGS... serve --port P` with PROMETHEUS_MULTIPROC_DIR unset."""
    port = free_port()
    cfg = workdir / "seekgate.toml"
    cfg.write_text(config)
    log = workdir / "seekgate.log"
    cmd = [sys.executable, "-m", "seekgate.cli.main", "--config", str(cfg), *args, "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["SEEKGATE_SERVER__DATA_DIR"] = str(workdir / "data")
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    process = Process(proc, f"http://127.0.0.1:{port}", log)
    try:
        wait_http(process.base_url + "/healthz", proc, log)
        yield process
    finally:
        process.stop()


def test_several_workers_report_the_sum_of_all_their_requests(tmp_path: Path):
    # The model comes from --set and the task from the config file: both must reach the workers.
    added = '--set=models.fake-set={backend = "fake", upstream_model = "echo"}'
    with serve_workers(CONFIG, tmp_path, added, "serve", "--workers", "2") as server:
        match = re.search(r"summed in ([^\s\"]+)", server.log.read_text())
        assert match, server.log.read_text()
        folder = Path(match.group(1))

        def serving_pids() -> set[str]:
            return {f.stem.rpartition("_")[2] for f in folder.glob("counter_*.db")}

        sent = 0
        deadline = time.monotonic() + 60
        # New connections until both workers have answered some: the kernel picks the worker.
        while sent < 20 or (len(serving_pids()) < 2 and time.monotonic() < deadline):
            resp = httpx.post(
                server.base_url + CHAT,
                json={"model": "fake-set", "messages": [{"role": "user", "content": "hello there"}]},
                headers={"Connection": "close", "X-Task-Type": "guarded"},
                timeout=30,
            )
            assert resp.status_code == 200, resp.text
            sent += 1
        assert len(serving_pids()) == 2, f"one worker answered all {sent} requests"

        series = {"endpoint": CHAT, "task": "guarded", "model": "fake-set"}
        settled(server.base_url, sent)
        for _ in range(6):  # whichever worker answers reports every worker's requests
            m = scrape(server.base_url)
            assert get(m, "seekgate_requests_total", **series, backend="fake", status="200") == sent
            assert get(m, "seekgate_request_duration_seconds_count", **series) == sent
            assert get(m, "seekgate_tokens_total", direction="input", task="guarded", model="fake-set") == 2 * sent
            assert total(m, "seekgate_requests_total") == sent
            assert total(m, "seekgate_requests_in_flight") == 0
            assert get(m, "seekgate_backend_up", backend="fake") == 1
    assert not folder.exists()  # the directory serve made for this run is gone with it
