"""Rolling latency percentiles per model and per task, and the SLO check the router uses.

A window keeps the samples of the last `window_s` seconds (at most `cap` of them); p95 is
computed on demand. A model with fewer than `min_samples` samples is presumed to meet its SLO.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

__all__ = ["SloTracker", "Window"]


class Window:
    def __init__(self, window_s: float, cap: int = 1000, clock: Callable[[], float] = time.monotonic) -> None:
        self._samples: deque[tuple[float, float]] = deque(maxlen=cap)
        self._window = window_s
        self._clock = clock

    def add(self, value_ms: float) -> None:
        self._samples.append((self._clock(), value_ms))

    def _live(self) -> list[float]:
        cutoff = self._clock() - self._window
        while self._samples and self._samples[0][0] < cutoff:
            self._samples.popleft()
        return [v for _, v in self._samples]

    def count(self) -> int:
        return len(self._live())

    def percentile(self, q: float) -> float | None:
        values = sorted(self._live())
        if not values:
            return None
        return values[min(len(values) - 1, math.ceil(q * len(values)) - 1)]


class SloTracker:
    def __init__(self, window_s: float, min_samples: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._min = min_samples
        self._clock = clock
        self._latency: dict[tuple[str, str], Window] = {}
        self._ttft: dict[tuple[str, str], Window] = {}
        self.breaches: dict[str, int] = {}
        self.reroutes: dict[str, int] = {}

    def _win(self, table: dict[tuple[str, str], Window], key: tuple[str, str]) -> Window:
        if key not in table:
            table[key] = Window(self._window_s, clock=self._clock)
        return table[key]

    def record(self, model: str, task: str, latency_ms: float, ttft_ms: float | None = None) -> None:
        for key in (("model", model), ("task", task)):
            self._win(self._latency, key).add(latency_ms)
            if ttft_ms is not None:
                self._win(self._ttft, key).add(ttft_ms)

    def p95(self, model: str) -> float | None:
        window = self._latency.get(("model", model))
        if window is None or window.count() < self._min:
            return None
        return window.percentile(0.95)

    def breaching(self, model: str, slo_ms: int) -> float | None:
        """The model's p95 when it breaks `slo_ms` on enough samples, else None."""
        p95 = self.p95(model)
        return p95 if slo_ms and p95 is not None and p95 > slo_ms else None

    def snapshot(self) -> dict[str, dict[str, dict[str, object]]]:
        out: dict[str, dict[str, dict[str, object]]] = {"model": {}, "task": {}}
        for (kind, name), window in self._latency.items():
            ttft = self._ttft.get((kind, name))
            out[kind][name] = {
                "samples": window.count(),
                "p50_ms": _round(window.percentile(0.5)),
                "p95_ms": _round(window.percentile(0.95)),
                "ttft_p95_ms": _round(ttft.percentile(0.95)) if ttft else None,
                **({"breaches": self.breaches.get(name, 0), "reroutes": self.reroutes.get(name, 0)} if kind == "model" else {}),
            }
        return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
