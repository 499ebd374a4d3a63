import json

import pytest

from seekgate.telemetry.live import LiveStats
from seekgate.telemetry.record import RequestRecord

T0 = 1_700_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def record(n: int = 0, **fields: object) -> RequestRecord:
    values: dict[str, object] = {
        "id": f"req-{n}",
        "time": T0,
        "endpoint": "/v1/chat/completions",
        "status": 200,
        "latency_ms": 100.0,
    }
    values.update(fields)
    return RequestRecord(**values)  # type: ignore[arg-type]


def test_rates_are_per_second_over_the_last_minute_and_the_series_places_each_second():
    clock = Clock()
    stats = LiveStats(clock=clock)
    for i in range(120):  # one request a second for two minutes, 10 tokens in and 30 out each
        clock.now = T0 + i
        stats.observe(record(i, input_tokens=10, output_tokens=30))
    snap = stats.snapshot()
    assert snap["rates"] == {"requests_per_s": 1.0, "errors_per_s": 0.0, "input_tokens_per_s": 10.0, "output_tokens_per_s": 30.0}
    assert snap["totals"] == {"requests": 120, "errors": 0, "input_tokens": 1200, "output_tokens": 3600}
    series = snap["series"]
    assert len(series["requests"]) == stats.window_s and series["start"] + stats.window_s - 1 == int(clock.now)
    assert series["requests"][-120:] == [1] * 120 and sum(series["requests"][:-120]) == 0

    clock.now += 30  # after a quiet half minute, the last minute holds 30 requests and this failure
    stats.observe(record(999, status=502, error="upstream_error"))
    assert stats.snapshot()["rates"]["requests_per_s"] == round(31 / 60, 3)
    assert stats.snapshot()["rates"]["errors_per_s"] == round(1 / 60, 3)


def test_latency_quantiles_per_task_and_model_count_errors_apart():
    stats = LiveStats(clock=Clock())
    for ms in range(1, 101):
        stats.observe(
            record(ms, latency_ms=float(ms), task="chat", model="fake-echo", output_tokens=5, stream=True, ttft_ms=ms / 10)
        )
    stats.observe(record(101, latency_ms=5.0, task="refactor", model="fake-echo", output_tokens=50))
    stats.observe(record(102, latency_ms=99_999.0, task="chat", model="fake-echo", status=502, error="upstream_error"))
    latency = stats.snapshot()["latency"]
    chat = latency["task"]["chat"]
    assert (chat["requests"], chat["errors"], chat["p50_ms"], chat["p95_ms"]) == (101, 1, 50, 95)  # the failure is not a latency
    assert (chat["ttft_p50_ms"], chat["ttft_p95_ms"]) == (5.0, 9.5)
    assert chat["output_tokens_per_s"] == pytest.approx(500 / 5.05, abs=0.1)
    assert chat["spark_ms"][-1] == 100 and len(chat["spark_ms"]) == 30
    assert latency["task"]["refactor"]["p95_ms"] == 5.0 and latency["task"]["refactor"]["ttft_p95_ms"] is None
    assert list(latency["model"]) == ["fake-echo"] and latency["model"]["fake-echo"]["requests"] == 102
    overall = stats.snapshot()["overall"]
    assert overall["requests"] == 102 and overall["p50_ms"] == 50


def test_requests_without_task_or_model_count_in_rates_only():
    stats = LiveStats(clock=Clock())
    stats.observe(record(endpoint="/v1/models"))
    snap = stats.snapshot()
    assert snap["totals"]["requests"] == 1 and snap["latency"] == {"task": {}, "model": {}}
    assert snap["overall"]["requests"] == 1


def test_cache_hit_rate_is_hits_over_lookups():
    stats = LiveStats(clock=Clock())
    assert stats.snapshot()["cache"]["hit_rate"] is None  # no lookups yet: no rate, not 0%
    for i, result in enumerate(["hit", "hit", "hit", "miss", "bypass", "off", "off"]):
        stats.observe(record(i, cache=result))
    assert stats.snapshot()["cache"] == {"hit": 3, "miss": 1, "bypass": 1, "off": 2, "hit_rate": 0.75}


def test_guard_actions_statuses_and_error_codes_are_counted():
    stats = LiveStats(clock=Clock())
    stats.observe(record(1, guards={"secret:redact": 2, "pii:redact": 1}))
    stats.observe(record(2, guards={"secret:redact": 1, "command:block": 1}, status=403, error="output_blocked"))
    stats.observe(record(3, status=429, error="rate_limited"))
    stats.observe(record(4, status=429, error="rate_limited"))
    snap = stats.snapshot()
    assert snap["guards"] == {"secret:redact": 3, "command:block": 1, "pii:redact": 1}
    assert list(snap["guards"]) == ["secret:redact", "command:block", "pii:redact"]  # most frequent first
    assert snap["statuses"] == {"200": 1, "403": 1, "429": 2}
    assert snap["error_codes"] == {"rate_limited": 2, "output_blocked": 1}
    assert snap["totals"]["errors"] == 3


def test_recent_requests_keep_the_last_200_newest_first_without_prompts():
    stats = LiveStats(clock=Clock())
    for i in range(250):
        stats.observe(record(i, prompt="my secret prompt", answer="the answer", caller="key:abc"))
    snap = stats.snapshot()
    recent = snap["recent"]
    assert len(recent) == 200 and recent[0]["id"] == "req-249" and recent[-1]["id"] == "req-50"
    assert all("prompt" not in r and "answer" not in r for r in recent)
    assert "my secret prompt" not in json.dumps(snap)
    assert all(r.prompt is None and r.answer is None for _, r in stats._recent)  # not even kept in memory
    assert snap["seq"] == 250 and recent[0]["seq"] == 250


def test_after_returns_only_the_requests_a_poller_has_not_seen():
    stats = LiveStats(clock=Clock())
    for i in range(3):
        stats.observe(record(i))
    seen = stats.snapshot()["seq"]
    assert stats.snapshot(after=seen)["recent"] == []
    stats.observe(record(3))
    newer = stats.snapshot(after=seen)
    assert [r["id"] for r in newer["recent"]] == ["req-3"] and newer["seq"] == seen + 1


def test_old_requests_leave_the_rates_after_the_window_and_the_quantiles_after_theirs():
    clock = Clock()
    stats = LiveStats(window_s=900, quantile_window_s=300, clock=clock)
    stats.observe(record(1, task="chat", model="m", latency_ms=1000.0, guards={"pii:redact": 1}, cache="hit"))
    clock.now += 299
    snap = stats.snapshot()
    assert snap["latency"]["task"]["chat"]["p95_ms"] == 1000 and snap["totals"]["requests"] == 1
    clock.now += 2
    snap = stats.snapshot()
    assert snap["latency"]["task"] == {} and snap["latency"]["model"] == {} and snap["overall"] is None
    assert snap["totals"]["requests"] == 1 and snap["guards"] == {"pii:redact": 1}  # still within 15 minutes
    clock.now = T0 + 900
    snap = stats.snapshot()
    assert snap["totals"]["requests"] == 0 and snap["guards"] == {} and snap["cache"]["hit"] == 0 and snap["statuses"] == {}
    assert len(snap["recent"]) == 1  # the table keeps the last requests however old
    assert len(stats._buckets) == 0


def test_a_clock_that_steps_back_still_counts_the_request():
    clock = Clock()
    stats = LiveStats(clock=clock)
    stats.observe(record(1))
    clock.now -= 5
    stats.observe(record(2))
    assert stats.snapshot(now=T0)["totals"]["requests"] == 2


def test_tasks_and_models_beyond_the_limit_share_one_row():
    stats = LiveStats(clock=Clock())
    for i in range(150):
        stats.observe(record(i, model=f"model-{i}"))
    models = stats.snapshot()["latency"]["model"]
    assert len(models) == 101 and models["(other)"]["requests"] == 50


def test_the_snapshot_is_plain_json():
    stats = LiveStats(clock=Clock())
    stats.observe(record(1, task="chat", model="m", fallbacks=("a=upstream_error",), guards={"secret:redact": 1}, status=502))
    snap = stats.snapshot()
    assert json.loads(json.dumps(snap)) == snap
    assert snap["recent"][0]["fallbacks"] == ["a=upstream_error"]


def test_the_rate_window_must_fit_in_the_window():
    with pytest.raises(ValueError):
        LiveStats(window_s=60, rate_window_s=120)


def test_requests_in_flight_are_counted_between_start_and_end():
    stats = LiveStats(clock=Clock())
    stats.start("/v1/chat/completions")
    stats.start("/v1/messages")
    stats.end("/v1/chat/completions")
    assert stats.snapshot()["in_flight"] == 1
