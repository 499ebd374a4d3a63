"""Live figures for the dashboard, kept in memory: an observer of finished requests.

Rates come from per-second buckets over the last `window_s` seconds (15 minutes by default),
counted when a request ends. Latency percentiles per task and per model come from the last
`quantile_window_s` seconds of each, at most its latest `samples` requests (under heavy load the
percentiles cover less time, never more memory). The last `recent` requests are kept as
metadata only: the prompt and answer are dropped on arrival.

`observe` does constant work per record (it runs on the event loop for every request); the
sums, sorts and series are made in `snapshot`, which the dashboard polls every second or two.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from seekgate.telemetry.record import RequestRecord

__all__ = ["LiveStats"]

_MAX_KEYS = 100
"""Tasks and models tracked at once; a key past this is counted under `_OTHER`."""
_OTHER = "(other)"
_SPARK = 30
"""Latest latencies per task and model, oldest first, for the sparklines."""


class _Bucket:
    """Everything that ended within one wall-clock second."""

    __slots__ = ("cache", "codes", "errors", "guards", "input_tokens", "output_tokens", "requests", "second", "statuses")

    def __init__(self, second: int) -> None:
        self.second = second
        self.requests = 0
        self.errors = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cache: dict[str, int] = {}
        self.statuses: dict[int, int] = {}
        self.guards: dict[str, int] | None = None
        self.codes: dict[str, int] | None = None


class _Sample(msgspec.Struct, array_like=True, frozen=True):
    at: float
    latency_ms: float
    ttft_ms: float | None
    output_tokens: int
    ok: bool


class LiveStats:
    """An `Observer` that keeps the dashboard's rolling figures, and a `Gauge` of requests in
    flight; `snapshot()` is JSON-ready."""

    def __init__(
        self,
        *,
        window_s: int = 900,
        rate_window_s: int = 60,
        quantile_window_s: float = 300.0,
        samples: int = 512,
        recent: int = 200,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < rate_window_s <= window_s:
            raise ValueError("rate_window_s must be positive and at most window_s")
        self.window_s = window_s
        self.rate_window_s = rate_window_s
        self.quantile_window_s = quantile_window_s
        self._clock = clock
        self._cap = samples
        self._buckets: deque[_Bucket] = deque()
        self._samples: dict[str, dict[str, deque[_Sample]]] = {"task": {}, "model": {}, "all": {}}
        self._recent: deque[tuple[int, RequestRecord]] = deque(maxlen=recent)
        self._seq = 0
        self._in_flight = 0
        self.started = clock()

    def start(self, endpoint: str) -> None:
        self._in_flight += 1

    def end(self, endpoint: str) -> None:
        self._in_flight -= 1

    def observe(self, record: RequestRecord) -> None:
        now = self._clock()
        if record.prompt is not None or record.answer is not None:
            record = msgspec.structs.replace(record, prompt=None, answer=None)
        self._seq += 1
        self._recent.append((self._seq, record))

        bucket = self._bucket(now)
        failed = record.status >= 400
        bucket.requests += 1
        bucket.errors += failed
        bucket.input_tokens += record.input_tokens
        bucket.output_tokens += record.output_tokens
        bucket.cache[record.cache] = bucket.cache.get(record.cache, 0) + 1
        bucket.statuses[record.status] = bucket.statuses.get(record.status, 0) + 1
        if record.guards:
            if bucket.guards is None:
                bucket.guards = {}
            _add(bucket.guards, record.guards)
        if record.error is not None:
            if bucket.codes is None:
                bucket.codes = {}
            bucket.codes[record.error] = bucket.codes.get(record.error, 0) + 1

        sample = _Sample(now, record.latency_ms, record.ttft_ms, record.output_tokens, not failed)
        for group, key in (("task", record.task), ("model", record.model), ("all", "all")):
            if key is not None:
                self._add_sample(group, key, sample, now)

    def _bucket(self, now: float) -> _Bucket:
        second = int(now)
        if self._buckets and self._buckets[-1].second >= second:
            # A clock that steps back a little still counts the request, in the newest second.
            return self._buckets[-1]
        self._expire(now)
        bucket = _Bucket(second)
        self._buckets.append(bucket)
        return bucket

    def _expire(self, now: float) -> None:
        oldest = int(now) - self.window_s + 1
        while self._buckets and self._buckets[0].second < oldest:
            self._buckets.popleft()

    def _add_sample(self, group: str, key: str, sample: _Sample, now: float) -> None:
        table = self._samples[group]
        window = table.get(key)
        if window is None:
            if len(table) >= _MAX_KEYS:
                key = _OTHER
            window = table.setdefault(key, deque(maxlen=self._cap))
        window.append(sample)
        cutoff = now - self.quantile_window_s
        while window[0].at < cutoff:
            window.popleft()

    def snapshot(self, now: float | None = None, after: int = 0) -> dict[str, Any]:
        """Every figure as plain JSON types. `after`: only the recent requests past this
        sequence number (the `seq` of an earlier snapshot), so a poller fetches only what is new."""
        now = self._clock() if now is None else now
        self._expire(now)
        last = int(now)
        start = last - self.window_s + 1
        series: dict[str, list[int]] = {k: [0] * self.window_s for k in ("requests", "errors", "input_tokens", "output_tokens")}
        cache: dict[str, int] = {"hit": 0, "miss": 0, "bypass": 0, "off": 0}
        statuses: dict[int, int] = {}
        guards: dict[str, int] = {}
        codes: dict[str, int] = {}
        for b in self._buckets:
            i = b.second - start
            if not 0 <= i < self.window_s:
                continue  # from a future second, if the clock stepped back
            series["requests"][i] = b.requests
            series["errors"][i] = b.errors
            series["input_tokens"][i] = b.input_tokens
            series["output_tokens"][i] = b.output_tokens
            _add(cache, b.cache)
            _add(statuses, b.statuses)
            if b.guards:
                _add(guards, b.guards)
            if b.codes:
                _add(codes, b.codes)
        totals = {k: sum(v) for k, v in series.items()}
        recent_totals = {k: sum(v[-self.rate_window_s :]) for k, v in series.items()}
        looked_up = cache["hit"] + cache["miss"]
        return {
            "now": now,
            "started": self.started,
            "window_s": self.window_s,
            "rate_window_s": self.rate_window_s,
            "quantile_window_s": self.quantile_window_s,
            "in_flight": self._in_flight,
            "rates": {f"{k}_per_s": round(v / self.rate_window_s, 3) for k, v in recent_totals.items()},
            "totals": totals,
            "series": {"start": start, "step_s": 1, **series},
            "cache": {**cache, "hit_rate": round(cache["hit"] / looked_up, 4) if looked_up else None},
            "guards": _by_count(guards),
            "statuses": {str(s): n for s, n in sorted(statuses.items())},
            "error_codes": _by_count(codes),
            "latency": {group: self._latency(group, now) for group in ("task", "model")},
            "overall": self._latency("all", now).get("all"),
            "seq": self._seq,
            "recent": [_public(seq, r) for seq, r in reversed(self._recent) if seq > after],
        }

    def _latency(self, group: str, now: float) -> dict[str, dict[str, Any]]:
        cutoff = now - self.quantile_window_s
        table = self._samples[group]
        out: dict[str, dict[str, Any]] = {}
        for key in list(table):
            window = table[key]
            while window and window[0].at < cutoff:
                window.popleft()
            if not window:
                del table[key]  # a task or model no longer seen stops taking a place
                continue
            ok = [s for s in window if s.ok]
            latencies = sorted(s.latency_ms for s in ok)
            ttfts = sorted(s.ttft_ms for s in ok if s.ttft_ms is not None)
            seconds = sum(latencies) / 1000
            out[key] = {
                "requests": len(window),
                "errors": len(window) - len(ok),
                "p50_ms": _quantile(latencies, 0.5),
                "p95_ms": _quantile(latencies, 0.95),
                "ttft_p50_ms": _quantile(ttfts, 0.5),
                "ttft_p95_ms": _quantile(ttfts, 0.95),
                "output_tokens_per_s": round(sum(s.output_tokens for s in ok) / seconds, 1) if seconds > 0 else None,
                "spark_ms": [round(s.latency_ms, 1) for s in ok[-_SPARK:]],
            }
        return dict(sorted(out.items()))


def _add(into: dict[Any, int], counts: dict[Any, int]) -> None:
    for k, n in counts.items():
        into[k] = into.get(k, 0) + n


def _by_count(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _quantile(ordered: list[float], q: float) -> float | None:
    """Nearest rank, as the SLO tracker computes it, so both agree on the same samples."""
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 1)


def _public(seq: int, record: RequestRecord) -> dict[str, Any]:
    out = msgspec.structs.asdict(record)
    del out["prompt"], out["answer"]
    out["seq"] = seq
    out["latency_ms"] = round(record.latency_ms, 1)
    if record.ttft_ms is not None:
        out["ttft_ms"] = round(record.ttft_ms, 1)
    out["fallbacks"] = list(record.fallbacks)
    return out
