"""The live dashboard: `GET /dashboard`, one self-contained page (inline CSS and JS, no build
step, nothing fetched from elsewhere), and `GET /dashboard/data`, the figures it polls.

The data is the live statistics (telemetry/live.py), each model's backend health and circuit
state, and each task's SLO status. With an admin key configured the data needs it (the page asks
once and keeps it for the browser tab); with none the dashboard is open, and shows metadata only:
prompts and answers never reach it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from seekgate import errors
from seekgate.api.admin import require_admin
from seekgate.api.http import handled
from seekgate.api.openai.routes import openai_error_response
from seekgate.backends.base import Health
from seekgate.backends.registry import Registry
from seekgate.core.service import Gateway
from seekgate.settings import AdminSettings, resolve_secret
from seekgate.telemetry.live import LiveStats

__all__ = ["dashboard_routes"]

log = logging.getLogger("seekgate.api")

_OPEN = 'data-auth="open"'
_KEYED = 'data-auth="key"'
_NO_STORE = {"cache-control": "no-store"}


def dashboard_routes(stats: LiveStats, gateway: Gateway, registry: Registry, admin: AdminSettings) -> list[Route]:
    page = resources.files("seekgate.api").joinpath("dashboard.html").read_text(encoding="utf-8")
    if _OPEN not in page:
        raise RuntimeError(f"dashboard.html lost its {_OPEN} marker")
    health = HealthCache(registry)

    async def dashboard(request: Request) -> Response:
        # The page only says whether to ask for the key; it carries no figures itself.
        keyed = resolve_secret(admin.api_key) is not None
        return HTMLResponse(page.replace(_OPEN, _KEYED) if keyed else page, headers=_NO_STORE)

    async def data(request: Request) -> Response:
        if resolve_secret(admin.api_key) is not None:
            require_admin(request, admin)
        after = request.query_params.get("after", "0")
        if not after.isdigit():
            raise errors.InvalidRequest("after: a sequence number (the seq of an earlier answer)", param="after")
        snapshot = stats.snapshot(after=int(after))
        snapshot["backends"] = _backends(registry, gateway, await health.get())
        snapshot["slo"] = _slo(gateway)
        return Response(msgspec.json.encode(snapshot), media_type="application/json", headers=_NO_STORE)

    return [
        Route("/dashboard", dashboard, methods=["GET"]),
        Route("/dashboard/data", handled(data, openai_error_response), methods=["GET"]),
    ]


class HealthCache:
    """Backend health for every model, probed at most once per `ttl_s`, so that any number of
    open dashboards cost the backends one probe each few seconds. Once there is an answer, a
    poll never waits on a probe: it gets the last answer while a fresh one is fetched."""

    def __init__(self, registry: Registry, ttl_s: float = 3.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._registry = registry
        self._ttl = ttl_s
        self._clock = clock
        self._at = -math.inf
        self._value: dict[str, Health] | None = None
        self._probe: asyncio.Future[dict[str, Health]] | None = None

    async def get(self) -> dict[str, Health]:
        if self._value is not None and self._clock() - self._at < self._ttl:
            return self._value
        if self._probe is None:
            self._probe = asyncio.ensure_future(self._refresh())
            self._probe.add_done_callback(self._done)
        if self._value is not None:
            return self._value
        # shield: a poller that goes away must not cancel the probe the others wait for
        return await asyncio.shield(self._probe)

    async def _refresh(self) -> dict[str, Health]:
        value = await self._registry.health(list(self._registry.models.values()))
        self._value, self._at = value, self._clock()
        return value

    def _done(self, probe: asyncio.Future[dict[str, Health]]) -> None:
        self._probe = None
        if not probe.cancelled() and probe.exception() is not None:
            # Nobody may be awaiting a background probe: say why it failed; the next poll retries.
            log.error("dashboard health probe failed", exc_info=probe.exception())


def _backends(registry: Registry, gateway: Gateway, health: dict[str, Health]) -> list[dict[str, Any]]:
    out = []
    for alias, entry in registry.models.items():
        h = health.get(alias)
        out.append(
            {
                "model": alias,
                "backend": entry.backend_name,
                "type": entry.backend_type,
                "ready": h.ready if h else None,
                "detail": h.detail if h else "not probed yet",
                "load": h.load if h else {},
                "circuit": gateway.router.breaker.state(alias),
            }
        )
    return out


def _slo(gateway: Gateway) -> dict[str, Any]:
    """Each task's p95 against its target. A breach counts, as for the router, only once the
    task has `slo_min_samples` samples; before that an over-target p95 is `at risk`."""
    routing = gateway.settings.routing
    seen = gateway.router.slo.snapshot()
    tasks = []
    for name, profile in sorted(gateway.settings.tasks.items()):
        if not profile.slo_p95_ms:
            continue
        figures = seen["task"].get(name, {})
        samples = figures.get("samples", 0)
        p95 = figures.get("p95_ms")
        if not samples or not isinstance(p95, float | int):
            status = "no data"
        elif p95 <= profile.slo_p95_ms:
            status = "ok"
        else:
            status = "breach" if isinstance(samples, int) and samples >= routing.slo_min_samples else "at risk"
        tasks.append({"task": name, "target_p95_ms": profile.slo_p95_ms, "p95_ms": p95, "samples": samples, "status": status})
    return {"window_s": routing.slo_window_s, "min_samples": routing.slo_min_samples, "tasks": tasks, "models": seen["model"]}
