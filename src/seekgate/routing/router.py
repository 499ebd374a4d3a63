"""Turns a request into an ordered list of candidate models and runs it on the first that
answers: retries a connection failure with backoff, falls back down the route on failures that
another model may not have, and skips models whose circuit is open. A stream falls back only
before its first chunk; once tokens went out it is never restarted elsewhere."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from seekgate import errors
from seekgate.backends.registry import ModelEntry, Registry
from seekgate.core.types import ChatRequest, Chunk, Request
from seekgate.routing.breaker import Breaker
from seekgate.routing.slo import SloTracker
from seekgate.settings import RoutingSettings, TaskProfile

__all__ = ["Attempts", "Router", "estimate_tokens"]

log = logging.getLogger("seekgate.routing")
T = TypeVar("T")

# Failures that say "this model, now" rather than "this request": the next model may serve it.
_FALL_BACK = (errors.ModelNotReady, errors.Overloaded, errors.UpstreamError, errors.Unsupported)
# Failures that count against a model's circuit (not its configuration or its load).
_TRIPS = (errors.UpstreamError,)
AUTO_MODELS = frozenset({"", "auto"})


@dataclass
class Attempts:
    """What the router tried, for response headers and logs."""

    served: ModelEntry | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    served_since: float = 0.0
    """perf_counter() when the call to the model that answered began: its own latency, without
    the time lost on models that failed before it."""
    slo_demoted: list[tuple[str, float, int]] = field(default_factory=list)
    """Models moved to the back of the route because their p95 breaks the SLO: alias, p95, SLO."""

    def fallback_header(self) -> str | None:
        return ", ".join(f"{alias}={reason}" for alias, reason in self.skipped) or None

    def slo_header(self) -> str | None:
        if not self.slo_demoted:
            return None
        return "rerouted: " + ", ".join(f"{a} p95 {p95:.0f} ms > {slo} ms" for a, p95, slo in self.slo_demoted)


class Router:
    def __init__(self, registry: Registry, settings: RoutingSettings) -> None:
        self._registry = registry
        self._settings = settings
        self.breaker = Breaker(settings.breaker_failures, settings.breaker_cooldown_s)
        self.slo = SloTracker(settings.slo_window_s, settings.slo_min_samples)

    def candidates(self, request: Request, profile: TaskProfile, attempts: Attempts) -> list[ModelEntry]:
        if request.model not in AUTO_MODELS:
            return [self._registry.get(request.model)]
        route = profile.route
        if profile.long_context_tokens and estimate_tokens(request) > profile.long_context_tokens:
            route = profile.long_context_route
        entries = [self._registry.get(alias) for alias in route] or [self._registry.default]
        return self._by_slo(entries, profile.slo_p95_ms, attempts)

    def _by_slo(self, entries: list[ModelEntry], slo_ms: int, attempts: Attempts) -> list[ModelEntry]:
        """Models that meet the SLO first (route order kept), then those that break it."""
        if not slo_ms or len(entries) < 2:
            return entries
        meeting, breaking = [], []
        for entry in entries:
            p95 = self.slo.breaching(entry.alias, slo_ms)
            (meeting if p95 is None else breaking).append((entry, p95))
            if p95 is not None:
                self.slo.breaches[entry.alias] = self.slo.breaches.get(entry.alias, 0) + 1
        if not breaking or not meeting or [e for e, _ in meeting + breaking] == entries:
            return entries
        for entry, p95 in breaking:
            assert p95 is not None
            attempts.slo_demoted.append((entry.alias, p95, slo_ms))
            self.slo.reroutes[entry.alias] = self.slo.reroutes.get(entry.alias, 0) + 1
        return [e for e, _ in meeting + breaking]

    async def chat(self, candidates: list[ModelEntry], request: Request, attempts: Attempts, call: Callable[[ModelEntry, Request], Awaitable[T]]) -> T:
        last: errors.SeekgateError | None = None
        for i, entry in enumerate(candidates):
            final = i == len(candidates) - 1
            if not self.breaker.allow(entry.alias) and not final:
                attempts.skipped.append((entry.alias, "circuit_open"))
                continue
            try:
                result, attempts.served_since = await self._with_retries(entry, request, call)
            except _FALL_BACK as exc:
                last = exc
                attempts.skipped.append((entry.alias, exc.kind))
                log.info("model %s failed (%s); %s", entry.alias, exc.message, "no more candidates" if final else "falling back")
                continue
            attempts.served = entry
            return result
        assert last is not None
        if len(candidates) > 1:
            tried = "; ".join(f"{a}: {r}" for a, r in attempts.skipped)
            last.message = f"every model on the route failed ({tried}); last: {last.message}"
        raise last

    async def _with_retries(
        self, entry: ModelEntry, request: Request, call: Callable[[ModelEntry, Request], Awaitable[T]]
    ) -> tuple[T, float]:
        delay = self._settings.retry_backoff_ms / 1000
        for attempt in range(self._settings.retries + 1):
            started = time.perf_counter()
            try:
                result = await call(entry, request)
            except errors.UpstreamUnavailable:
                # Connection refused: nothing reached the model, so trying again is safe.
                self.breaker.failure(entry.alias)
                if attempt == self._settings.retries:
                    raise
                await asyncio.sleep(delay * 2**attempt)
                continue
            except _TRIPS:
                self.breaker.failure(entry.alias)
                raise
            except BaseException:
                self.breaker.release(entry.alias)
                raise
            self.breaker.success(entry.alias)
            return result, started
        raise AssertionError("unreachable")

    async def open_stream(self, candidates: list[ModelEntry], request: Request, attempts: Attempts) -> tuple[Chunk, AsyncIterator[Chunk]]:
        async def first_chunk(entry: ModelEntry, req: Request) -> tuple[Chunk, AsyncIterator[Chunk]]:
            chunks = entry.backend.stream(req)
            try:
                return await anext(chunks), chunks
            except BaseException:
                await chunks.aclose()  # type: ignore[attr-defined]
                raise

        return await self.chat(candidates, request, attempts, first_chunk)


def estimate_tokens(request: Request) -> int:
    # About four characters a token for code and English: good enough to pick a route, and free.
    if isinstance(request, ChatRequest):
        return sum(len(m.text) for m in request.messages) // 4
    return (len(request.prompt) + len(request.suffix or "")) // 4
