"""One API request, as the meters see it: a `Trace` filled while it runs, a `RequestRecord`
when it ends, and `Telemetry`, which hands each record to every observer (metrics, the log
line, the request log, the live dashboard).

The HTTP middleware (telemetry/middleware.py) makes the trace and times the response; the
gateway writes what it decided into it (task, model, backend, cache, guards, tokens). Records
carry only bounded values (config names, codes, counts) apart from `id` and the optional
redacted prompt and answer, which only the request log keeps.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, fields
from typing import Literal, Protocol

import msgspec

__all__ = ["CacheResult", "Gauge", "Observer", "RequestRecord", "Telemetry", "Trace"]

log = logging.getLogger("seekgate.telemetry")

CacheResult = Literal["hit", "miss", "bypass", "off"]
"""hit: answered from the cache; miss: looked up, not found (the answer is stored); bypass: the
client sent Cache-Control: no-cache; off: not cacheable (task, sampling, or caching disabled)."""


class RequestRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    """Also returned as the x-request-id response header."""
    time: float
    """When the request arrived, Unix seconds."""
    endpoint: str
    """The route template, e.g. /v1/chat/completions (never the raw path)."""
    status: int
    """The HTTP status; 499 when the client went away first."""
    latency_ms: float
    """Until the last byte of the response was handed to the server."""
    stream: bool = False
    ttft_ms: float | None = None
    """Streams: until the first piece of the answer."""
    task: str | None = None
    model: str | None = None
    """The alias that answered (or was asked for, when the request failed before routing)."""
    backend: str | None = None
    error: str | None = None
    """The error code of a failed request (e.g. rate_limited, model_not_found)."""
    input_tokens: int = 0
    output_tokens: int = 0
    cache: CacheResult = "off"
    guards: dict[str, int] = {}
    """`kind:action` -> how many, e.g. {"secret:redact": 2}."""
    fallbacks: tuple[str, ...] = ()
    """`alias=reason` for each model skipped on the way."""
    escalated: str | None = None
    slo_breach: bool = False
    caller: str = "anonymous"
    """`key:<id>` or anonymous: never the key itself."""
    prompt: str | None = None
    """Only with telemetry.log_prompts: the prompt as the model saw it (redacted)."""
    answer: str | None = None


@dataclass
class Trace:
    """What one request collects while it runs; the middleware turns it into a record."""

    id: str
    endpoint: str
    arrived: float = field(default_factory=time.time)
    started: float = field(default_factory=time.perf_counter)
    stream: bool = False
    task: str | None = None
    model: str | None = None
    backend: str | None = None
    error: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache: CacheResult = "off"
    guards: dict[str, int] = field(default_factory=dict)
    fallbacks: tuple[str, ...] = ()
    escalated: str | None = None
    slo_breach: bool = False
    caller: str = "anonymous"
    prompt: str | None = None
    answer: str | None = None
    first_byte: float | None = None
    """perf_counter at the first answer piece of a stream."""

    def record(self, status: int, ended: float) -> RequestRecord:
        ttft = (self.first_byte - self.started) * 1000 if self.stream and self.first_byte is not None else None
        same = {name: getattr(self, name) for name in RequestRecord.__struct_fields__ if name in _TRACE_FIELDS}
        same["guards"] = dict(self.guards)
        return RequestRecord(**same, time=self.arrived, status=status, latency_ms=(ended - self.started) * 1000, ttft_ms=ttft)


_TRACE_FIELDS = frozenset(f.name for f in fields(Trace))


class Gauge(Protocol):
    def start(self, endpoint: str) -> None: ...
    def end(self, endpoint: str) -> None: ...


class Telemetry:
    """Hands every finished request to each observer; one failing observer never breaks the
    response or the others. `gauges` hear when a request starts and ends (in-flight counts)."""

    def __init__(self, observers: list[Observer] | None = None, gauges: list[Gauge] | None = None) -> None:
        self.observers: list[Observer] = list(observers or [])
        self.gauges: list[Gauge] = list(gauges or [])

    def add(self, observer: Observer) -> None:
        self.observers.append(observer)

    def started(self, endpoint: str) -> None:
        for gauge in self.gauges:
            gauge.start(endpoint)

    def ended(self, endpoint: str) -> None:
        for gauge in self.gauges:
            gauge.end(endpoint)

    def finish(self, record: RequestRecord) -> None:
        for observer in self.observers:
            try:
                observer.observe(record)
            except Exception:  # a meter must never take a request down; say which one failed
                log.exception("telemetry observer %s failed", type(observer).__name__)
