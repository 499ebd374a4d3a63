"""Prometheus metrics at GET /metrics: an observer of finished requests, in-flight gauges, and
backend health and circuit state refreshed when Prometheus scrapes.

Every label value is bounded: task, model and backend names must be ones the configuration
defines (anything else is counted as "other"), guard kinds and actions and fallback reasons
come from fixed vocabularies, status is the HTTP code, and endpoint is a route template. No
caller, request id or free text ever becomes a label.

Several worker processes (`seekgate serve --workers N`) share one set of figures through
prometheus_client's multiprocess mode: with PROMETHEUS_MULTIPROC_DIR set (before
prometheus_client is imported) each process writes its values to files in that directory, and
whichever worker answers a scrape sums them. Health and circuit gauges are each worker's own
view, as of its last scrape; the most recent one wins.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from seekgate import errors
from seekgate.guards.types import Action, Kind
from seekgate.telemetry.record import RequestRecord

if TYPE_CHECKING:
    from seekgate.backends.registry import Registry
    from seekgate.routing.breaker import Breaker
    from seekgate.settings import Settings

__all__ = ["LATENCY_BUCKETS", "MULTIPROC_ENV", "HealthGauges", "Metrics", "clear_multiprocess_dir", "metrics_route"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds: from a cache hit (milliseconds) to a long answer from a slow local model (minutes)."""
OTHER = "other"
NONE = "none"
_GUARD_KINDS = frozenset(k.value for k in Kind)
_GUARD_ACTIONS = frozenset(a.value for a in Action)
_CACHE_RESULTS = frozenset({"hit", "miss", "bypass", "off"})


def _error_kinds() -> frozenset[str]:
    """Every `kind` an error can have: the reasons the router records when it skips a model."""
    kinds, todo = set(), [errors.SeekgateError]
    while todo:
        cls = todo.pop()
        kinds.add(cls.kind)
        todo.extend(cls.__subclasses__())
    return frozenset(kinds | {"circuit_open"})


def _bounded(value: str | None, allowed: frozenset[str] | None) -> str:
    if value is None:
        return NONE
    return value if allowed is None or value in allowed else OTHER


class Metrics:
    """The gateway's Prometheus metrics. An `Observer` (observe each finished request) and a
    `Gauge` (start and end of each request, for the in-flight count) of telemetry/record.py.

    `tasks`, `models` and `backends` are the names label values may take (from the settings);
    `endpoints` likewise when given (None trusts the caller to pass route templates).
    `multiprocess_dir` is PROMETHEUS_MULTIPROC_DIR when several processes serve: `render` then
    sums every process's files instead of reading this process's registry.
    """

    def __init__(
        self,
        *,
        tasks: Iterable[str],
        models: Iterable[str],
        backends: Iterable[str],
        endpoints: Iterable[str] | None = None,
        registry: CollectorRegistry | None = None,
        multiprocess_dir: str | None = None,
    ) -> None:
        self._tasks = frozenset(tasks)
        self._models = frozenset(models)
        self._backends = frozenset(backends)
        self._endpoints = frozenset(endpoints) if endpoints is not None else None
        self._reasons = _error_kinds()
        self._multiprocess_dir = multiprocess_dir
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "seekgate_requests",
            "API requests finished, by endpoint, task, model, backend and HTTP status.",
            ["endpoint", "task", "model", "backend", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "seekgate_request_duration_seconds",
            "Time from arrival to the last byte of the response.",
            ["endpoint", "task", "model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "seekgate_time_to_first_token_seconds",
            "Streams: time from arrival to the first piece of the answer.",
            ["task", "model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "seekgate_tokens", "Tokens in prompts (input) and answers (output).", ["direction", "task", "model"], registry=r
        )
        self.cache = Counter(
            "seekgate_cache_requests",
            "Requests by cache result: hit, miss, bypass (Cache-Control: no-cache), off (not cacheable).",
            ["task", "result"],
            registry=r,
        )
        self.guard_actions = Counter(
            "seekgate_guard_actions", "Guard findings acted on, by kind and action.", ["kind", "action"], registry=r
        )
        self.fallbacks = Counter(
            "seekgate_fallbacks", "Models skipped on a route, by model and reason.", ["model", "reason"], registry=r
        )
        self.escalations = Counter(
            "seekgate_escalations", "Requests escalated to a stronger model or to review.", ["task"], registry=r
        )
        self.slo_breaches = Counter(
            "seekgate_slo_breaches", "Requests whose model broke its task's latency SLO.", ["task", "model"], registry=r
        )
        self.in_flight = Gauge(
            "seekgate_requests_in_flight",
            "API requests being answered now.",
            ["endpoint"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.backend_up = Gauge(
            "seekgate_backend_up",
            "1 when the backend answers its health probe (an in-process engine: a model on it is loaded).",
            ["backend"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self.model_ready = Gauge(
            "seekgate_model_ready", "1 when the model can answer now.", ["model"], registry=r, multiprocess_mode="livemostrecent"
        )
        self.circuit_open = Gauge(
            "seekgate_circuit_open",
            "1 while the model's circuit breaker is open or half-open (the router skips it).",
            ["model"],
            registry=r,
            multiprocess_mode="livemostrecent",
        )

    @classmethod
    def from_settings(cls, settings: Settings, *, endpoints: Iterable[str] | None = None) -> Metrics:
        """Label vocabularies from the settings; multiprocess mode when PROMETHEUS_MULTIPROC_DIR is set."""
        models = {*settings.models, *(alias.partition("@")[0] for alias in settings.models)}
        groups = {",".join((m.backend, *m.replicas)) for m in settings.models.values() if m.replicas}
        return cls(
            tasks={*settings.tasks, settings.routing.default_task},
            models=models,
            backends={*settings.backends, *groups},
            endpoints=endpoints,
            multiprocess_dir=os.environ.get(MULTIPROC_ENV) or None,
        )

    def _task(self, task: str | None) -> str:
        return _bounded(task, self._tasks)

    def _model(self, model: str | None) -> str:
        return _bounded(model, self._models)

    def _backend(self, backend: str | None) -> str:
        return _bounded(backend, self._backends)

    def _endpoint(self, endpoint: str) -> str:
        return _bounded(endpoint, self._endpoints)

    def start(self, endpoint: str) -> None:
        self.in_flight.labels(self._endpoint(endpoint)).inc()

    def end(self, endpoint: str) -> None:
        self.in_flight.labels(self._endpoint(endpoint)).dec()

    def observe(self, record: RequestRecord) -> None:
        endpoint, task, model = self._endpoint(record.endpoint), self._task(record.task), self._model(record.model)
        self.requests.labels(endpoint, task, model, self._backend(record.backend), str(record.status)).inc()
        self.duration.labels(endpoint, task, model).observe(record.latency_ms / 1000)
        if record.ttft_ms is not None:
            self.ttft.labels(task, model).observe(record.ttft_ms / 1000)
        if record.input_tokens:
            self.tokens.labels("input", task, model).inc(record.input_tokens)
        if record.output_tokens:
            self.tokens.labels("output", task, model).inc(record.output_tokens)
        self.cache.labels(task, _bounded(record.cache, _CACHE_RESULTS)).inc()
        for key, n in record.guards.items():
            kind, _, action = key.partition(":")
            self.guard_actions.labels(_bounded(kind, _GUARD_KINDS), _bounded(action, _GUARD_ACTIONS)).inc(n)
        for skipped in record.fallbacks:
            alias, _, reason = skipped.rpartition("=")
            self.fallbacks.labels(self._model(alias), _bounded(reason, self._reasons)).inc()
        if record.escalated:
            self.escalations.labels(task).inc()
        if record.slo_breach:
            self.slo_breaches.labels(task, model).inc()

    def set_backend_up(self, backend: str, up: bool) -> None:
        self.backend_up.labels(self._backend(backend)).set(1 if up else 0)

    def set_model_ready(self, model: str, ready: bool) -> None:
        self.model_ready.labels(self._model(model)).set(1 if ready else 0)

    def set_circuit(self, model: str, state: str) -> None:
        """`state` as Breaker.state gives it: closed, open or half-open."""
        self.circuit_open.labels(self._model(model)).set(0 if state == "closed" else 1)

    def render(self) -> bytes:
        """The Prometheus text format: this process's figures, or every worker's summed."""
        if self._multiprocess_dir is None:
            return generate_latest(self.registry)
        _forget_dead_processes(self._multiprocess_dir)
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=self._multiprocess_dir)
        return generate_latest(merged)


def _forget_dead_processes(path: str) -> None:
    """Drop the live gauges (in flight, health) of workers that died without cleaning up: the
    server restarts a crashed worker under a new pid, and the old files would count forever."""
    pids = {int(f.stem.rpartition("_")[2]) for f in Path(path).glob("gauge_live*_*.db") if f.stem.rpartition("_")[2].isdigit()}
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, path)
        except PermissionError:
            pass  # alive, under another user


def clear_multiprocess_dir(path: str) -> None:
    """Start a multiprocess run from zero: make the directory, remove figures left by an earlier run."""
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    for kind in ("counter", "gauge", "histogram", "summary"):
        for f in folder.glob(f"{kind}_*.db"):
            f.unlink(missing_ok=True)


class HealthGauges:
    """Sets backend_up, model_ready and circuit_open just before a scrape. Circuit state is read
    every time (it is in memory); health probes run at most every `every_s` seconds, one at a
    time however many scrapes arrive together (a server probe has its own 3 s timeout)."""

    def __init__(
        self,
        metrics: Metrics,
        registry: Registry,
        breaker: Breaker,
        every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metrics = metrics
        self._registry = registry
        self._breaker = breaker
        self._every = every_s
        self._clock = clock
        self._probed: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        entries = list(self._registry.models.values())
        for entry in entries:
            self._metrics.set_circuit(entry.alias, self._breaker.state(entry.alias))
        async with self._lock:
            if self._probed is not None and self._clock() - self._probed < self._every:
                return
            health = await self._registry.health(entries)
            self._probed = self._clock()
        up: dict[str, bool] = {}
        for entry in entries:
            ready = health[entry.alias].ready
            self._metrics.set_model_ready(entry.alias, ready)
            up[entry.backend_name] = up.get(entry.backend_name, False) or ready
        for backend, is_up in up.items():
            self._metrics.set_backend_up(backend, is_up)


def metrics_route(metrics: Metrics, refresh: Callable[[], Awaitable[None]] | None = None) -> Route:
    """GET /metrics in the Prometheus text format; `refresh` runs first (e.g. HealthGauges.refresh)."""

    async def endpoint(request: Request) -> Response:
        if refresh is not None:
            await refresh()
        # Merging the workers' files reads the disk: off the event loop.
        body = await asyncio.to_thread(metrics.render)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", endpoint, methods=["GET"])
