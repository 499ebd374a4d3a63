import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.testclient import TestClient

from seekgate.backends.registry import Registry
from seekgate.routing.breaker import Breaker
from seekgate.settings import load_settings
from seekgate.telemetry.metrics import MULTIPROC_ENV, HealthGauges, Metrics, clear_multiprocess_dir, metrics_route
from seekgate.telemetry.record import RequestRecord

CHAT = "/v1/chat/completions"


def record(n: int = 0, **fields: object) -> RequestRecord:
    values: dict[str, object] = {"id": f"req-{n}", "time": 0.0, "endpoint": CHAT, "status": 200, "latency_ms": 100.0}
    values.update(fields)
    return RequestRecord(**values)  # type: ignore[arg-type]


def metrics(**kwargs: object) -> Metrics:
    vocab: dict[str, object] = {
        "tasks": ["chat", "review"],
        "models": ["fake-echo", "fake-fixed", "fake-down"],
        "backends": ["fake"],
    }
    vocab.update(kwargs)
    return Metrics(registry=CollectorRegistry(), **vocab)  # type: ignore[arg-type]


def value(m: Metrics, name: str, **labels: str) -> float | None:
    return m.registry.get_sample_value(name, labels)


def test_a_known_sequence_of_requests_gives_exact_counts_sums_and_buckets():
    m = metrics()
    ok = {"task": "chat", "model": "fake-echo", "backend": "fake"}
    m.observe(record(1, latency_ms=120.0, input_tokens=10, output_tokens=5, cache="miss", **ok))
    m.observe(
        record(
            2,
            latency_ms=2000.0,
            stream=True,
            ttft_ms=300.0,
            input_tokens=7,
            output_tokens=20,
            guards={"secret:redact": 2, "pii:redact": 1},
            **ok,
        )
    )
    m.observe(record(3, latency_ms=2.0, status=429, error="rate_limit_error", task="chat", model="fake-echo", cache="hit"))
    m.observe(
        record(
            4, latency_ms=40_000.0, task="review", model="fake-fixed", backend="fake", output_tokens=1,
            fallbacks=("fake-down=upstream_unavailable", "fake-echo=circuit_open"), escalated="high risk: review", slo_breach=True,
        )
    )  # fmt: skip

    endpoint = {"endpoint": CHAT}
    assert value(m, "seekgate_requests_total", **endpoint, **ok, status="200") == 2
    assert value(m, "seekgate_requests_total", **endpoint, task="chat", model="fake-echo", backend="none", status="429") == 1
    assert value(m, "seekgate_requests_total", **endpoint, task="review", model="fake-fixed", backend="fake", status="200") == 1

    chat = {"endpoint": CHAT, "task": "chat", "model": "fake-echo"}
    assert value(m, "seekgate_request_duration_seconds_count", **chat) == 3
    assert value(m, "seekgate_request_duration_seconds_sum", **chat) == pytest.approx(2.122)
    assert value(m, "seekgate_request_duration_seconds_bucket", **chat, le="0.005") == 1
    assert value(m, "seekgate_request_duration_seconds_bucket", **chat, le="0.25") == 2
    assert value(m, "seekgate_request_duration_seconds_bucket", **chat, le="2.5") == 3
    review = {"endpoint": CHAT, "task": "review", "model": "fake-fixed"}
    assert value(m, "seekgate_request_duration_seconds_bucket", **review, le="30.0") == 0
    assert value(m, "seekgate_request_duration_seconds_bucket", **review, le="60.0") == 1

    assert value(m, "seekgate_time_to_first_token_seconds_count", task="chat", model="fake-echo") == 1
    assert value(m, "seekgate_time_to_first_token_seconds_sum", task="chat", model="fake-echo") == pytest.approx(0.3)
    assert value(m, "seekgate_time_to_first_token_seconds_count", task="review", model="fake-fixed") is None

    assert value(m, "seekgate_tokens_total", direction="input", task="chat", model="fake-echo") == 17
    assert value(m, "seekgate_tokens_total", direction="output", task="chat", model="fake-echo") == 25
    assert value(m, "seekgate_tokens_total", direction="output", task="review", model="fake-fixed") == 1
    assert value(m, "seekgate_tokens_total", direction="input", task="review", model="fake-fixed") is None

    assert value(m, "seekgate_cache_requests_total", task="chat", result="miss") == 1
    assert value(m, "seekgate_cache_requests_total", task="chat", result="hit") == 1
    assert value(m, "seekgate_cache_requests_total", task="chat", result="off") == 1
    assert value(m, "seekgate_cache_requests_total", task="review", result="off") == 1

    assert value(m, "seekgate_guard_actions_total", kind="secret", action="redact") == 2
    assert value(m, "seekgate_guard_actions_total", kind="pii", action="redact") == 1
    assert value(m, "seekgate_fallbacks_total", model="fake-down", reason="upstream_unavailable") == 1
    assert value(m, "seekgate_fallbacks_total", model="fake-echo", reason="circuit_open") == 1
    assert value(m, "seekgate_escalations_total", task="review") == 1
    assert value(m, "seekgate_escalations_total", task="chat") is None
    assert value(m, "seekgate_slo_breaches_total", task="review", model="fake-fixed") == 1


def test_label_values_outside_the_configuration_are_counted_as_other():
    m = metrics(endpoints=[CHAT])
    m.observe(
        record(
            1, endpoint="/v1/secret-path/alice", task="user-invented", model="gpt-9", backend="somewhere", status=404,
            guards={"weird:redact": 1, "pii:obliterate": 2, "nocolon": 1}, fallbacks=("unknown-model=made up reason", "fake-down=upstream_error"),
        )
    )  # fmt: skip
    assert value(m, "seekgate_requests_total", endpoint="other", task="other", model="other", backend="other", status="404") == 1
    assert value(m, "seekgate_guard_actions_total", kind="other", action="redact") == 1
    assert value(m, "seekgate_guard_actions_total", kind="pii", action="other") == 2
    assert value(m, "seekgate_guard_actions_total", kind="other", action="none") is None  # "nocolon": empty action
    assert value(m, "seekgate_guard_actions_total", kind="other", action="other") == 1
    assert value(m, "seekgate_fallbacks_total", model="other", reason="other") == 1
    assert value(m, "seekgate_fallbacks_total", model="fake-down", reason="upstream_error") == 1


def test_a_request_that_failed_before_routing_is_labelled_none():
    m = metrics()
    m.observe(record(1, status=400, error="invalid_request_error"))
    assert value(m, "seekgate_requests_total", endpoint=CHAT, task="none", model="none", backend="none", status="400") == 1
    assert value(m, "seekgate_cache_requests_total", task="none", result="off") == 1


def test_in_flight_counts_started_requests_until_they_end():
    m = metrics()
    m.start(CHAT)
    m.start(CHAT)
    m.start("/v1/messages")
    m.end(CHAT)
    assert value(m, "seekgate_requests_in_flight", endpoint=CHAT) == 1
    assert value(m, "seekgate_requests_in_flight", endpoint="/v1/messages") == 1


def test_vocabularies_from_the_settings_include_families_replica_groups_and_the_default_task(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text(
        """
[backends.fake-b]
type = "fake"
[models."fam@v1"]
backend = "fake"
upstream_model = "echo"
[models.pair]
backend = "fake"
replicas = ["fake-b"]
upstream_model = "echo"
"""
    )
    m = Metrics.from_settings(load_settings(config, env={}))
    m.observe(record(1, task="chat", model="fam", backend="fake-b"))
    assert value(m, "seekgate_requests_total", endpoint=CHAT, task="chat", model="fam", backend="fake-b", status="200") == 1
    m.set_backend_up("fake,fake-b", True)
    assert value(m, "seekgate_backend_up", backend="fake,fake-b") == 1


SETTINGS = """
[server]
default_model = "fake-echo"
preload_default = false

[models.flaky]
backend = "fake"
upstream_model = "flaky"
"""


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingRegistry(Registry):
    def __init__(self, *args: object) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.probes = 0

    async def health(self, entries):  # type: ignore[no-untyped-def]
        self.probes += 1
        return await super().health(entries)


def test_health_gauges_probe_at_most_every_interval_and_read_circuits_every_scrape(tmp_path: Path):
    config = tmp_path / "c.toml"
    config.write_text(SETTINGS)
    settings = load_settings(config, env={}, overrides={"server.data_dir": str(tmp_path)})
    m = Metrics.from_settings(settings)
    registry = CountingRegistry(settings)
    clock = Clock()
    breaker = Breaker(failures=1, cooldown_s=30, clock=clock)
    gauges = HealthGauges(m, registry, breaker, every_s=5, clock=clock)

    async def scrapes() -> None:
        registry.build()
        await asyncio.gather(gauges.refresh(), gauges.refresh(), gauges.refresh())  # together: one probe
        assert registry.probes == 1
        breaker.failure("flaky")
        clock.now = 4.9
        await gauges.refresh()
        assert registry.probes == 1
        assert value(m, "seekgate_circuit_open", model="flaky") == 1
        clock.now = 5.0
        await gauges.refresh()
        assert registry.probes == 2
        breaker.success("flaky")
        await gauges.refresh()
        assert value(m, "seekgate_circuit_open", model="flaky") == 0
        await registry.aclose()

    asyncio.run(scrapes())
    assert value(m, "seekgate_backend_up", backend="fake") == 1
    assert value(m, "seekgate_model_ready", model="fake-echo") == 1
    # The embedded engine has loaded nothing (no preload): its models and the backend are not up.
    assert value(m, "seekgate_model_ready", model="smollm2-135m") == 0
    assert value(m, "seekgate_backend_up", backend="embedded") == 0
    assert value(m, "seekgate_circuit_open", model="fake-echo") == 0


def test_the_route_refreshes_then_serves_the_prometheus_text_format():
    m = metrics()
    m.observe(record(1, task="chat", model="fake-echo", backend="fake"))
    refreshed: list[bool] = []

    async def refresh() -> None:
        refreshed.append(True)
        m.set_backend_up("fake", True)

    with TestClient(Starlette(routes=[metrics_route(m, refresh)])) as client:
        resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain; version=")
    assert refreshed == [True]
    families = {f.name: f for f in text_string_to_metric_families(resp.text)}
    assert families["seekgate_requests"].type == "counter"
    assert [s.value for s in families["seekgate_requests"].samples if s.name == "seekgate_requests_total"] == [1.0]
    assert [s.value for s in families["seekgate_backend_up"].samples] == [1.0]


WORKER = """
import sys
from seekgate.telemetry.metrics import Metrics
from seekgate.telemetry.record import RequestRecord
import os

m = Metrics(tasks=["chat"], models=["fake-echo"], backends=["fake"], multiprocess_dir=os.environ["PROMETHEUS_MULTIPROC_DIR"])
for i in range(int(sys.argv[1])):
    m.observe(RequestRecord(id=str(i), time=0.0, endpoint="/v1/chat/completions", status=200, latency_ms=50.0, task="chat",
                            model="fake-echo", backend="fake", input_tokens=3, output_tokens=4))
m.start("/v1/chat/completions")
m.set_backend_up("fake", int(sys.argv[1]) % 2 == 0)
print("ready", flush=True)
sys.stdin.read()
"""


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}


def test_worker_processes_sum_their_figures_and_a_dead_workers_in_flight_count_goes(tmp_path: Path):
    folder = tmp_path / "prom"
    clear_multiprocess_dir(str(folder))
    env = {**os.environ, MULTIPROC_ENV: str(folder)}
    workers: list[subprocess.Popen[str]] = []
    try:
        for n in (2, 3):  # one after the other, so the second sets the health gauge last
            workers.append(
                subprocess.Popen(
                    [sys.executable, "-c", WORKER, str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
                )
            )
            out = workers[-1].stdout
            assert out is not None and out.readline().strip() == "ready"
        # The process that renders observed nothing itself: everything comes from the files.
        reader = Metrics(
            tasks=["chat"], models=["fake-echo"], backends=["fake"], registry=CollectorRegistry(), multiprocess_dir=str(folder)
        )
        live = samples(reader.render().decode())
    finally:
        for w in workers:
            w.communicate("", timeout=30)
    chat = (
        ("backend", "fake"),
        ("endpoint", "/v1/chat/completions"),
        ("model", "fake-echo"),
        ("status", "200"),
        ("task", "chat"),
    )
    assert live[("seekgate_requests_total", chat)] == 5
    assert live[("seekgate_tokens_total", (("direction", "output"), ("model", "fake-echo"), ("task", "chat")))] == 20
    duration = (("endpoint", "/v1/chat/completions"), ("model", "fake-echo"), ("task", "chat"))
    assert live[("seekgate_request_duration_seconds_count", duration)] == 5
    assert live[("seekgate_request_duration_seconds_bucket", (*duration[:1], ("le", "0.05"), *duration[1:]))] == 5
    assert live[("seekgate_requests_in_flight", (("endpoint", "/v1/chat/completions"),))] == 2
    assert live[("seekgate_backend_up", (("backend", "fake"),))] == 0  # the worker that set it last (n=3) saw it down

    after = samples(reader.render().decode())
    assert after[("seekgate_requests_total", chat)] == 5  # counters outlive their process
    assert ("seekgate_requests_in_flight", (("endpoint", "/v1/chat/completions"),)) not in after

    clear_multiprocess_dir(str(folder))
    assert ("seekgate_requests_total", chat) not in samples(reader.render().decode())
