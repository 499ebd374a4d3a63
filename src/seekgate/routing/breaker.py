"""A circuit breaker per model: after N failures in a row it opens and the router skips that
model until the cooldown ends; then one request probes it (half-open) and its outcome closes
or reopens the circuit."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Breaker"]


@dataclass
class _State:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


class Breaker:
    def __init__(self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = failures
        self._cooldown = cooldown_s
        self._clock = clock
        self._states: dict[str, _State] = {}

    def state(self, key: str) -> str:
        s = self._states.get(key)
        if s is None or s.opened_at is None:
            return "closed"
        if s.probing or self._clock() - s.opened_at >= self._cooldown:
            return "half-open"
        return "open"

    def allow(self, key: str) -> bool:
        """May a request go to `key` now? Claims the single probe of a half-open circuit."""
        s = self._states.get(key)
        if s is None or s.opened_at is None:
            return True
        if s.probing or self._clock() - s.opened_at < self._cooldown:
            return False
        s.probing = True
        return True

    def success(self, key: str) -> None:
        self._states.pop(key, None)

    def failure(self, key: str) -> None:
        s = self._states.setdefault(key, _State())
        s.failures += 1
        if s.probing or (self._threshold > 0 and s.failures >= self._threshold):
            s.opened_at = self._clock()
            s.probing = False

    def release(self, key: str) -> None:
        """A probe that ended without a verdict (e.g. the client left) frees the probe slot."""
        s = self._states.get(key)
        if s is not None:
            s.probing = False
