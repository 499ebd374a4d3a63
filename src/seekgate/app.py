"""create_app(settings): the one place that builds the object graph."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from seekgate import errors
from seekgate.api.admin import model_routes
from seekgate.api.anthropic.routes import routes as anthropic_routes
from seekgate.api.dashboard import dashboard_routes
from seekgate.api.openai.embeddings import routes as embedding_routes
from seekgate.api.openai.routes import openai_error_response
from seekgate.api.openai.routes import routes as openai_routes
from seekgate.api.openapi import DOCS_HTML, openapi_document
from seekgate.api.prompts import routes as prompt_routes
from seekgate.api.requests import routes as request_routes
from seekgate.api.reviews import routes as review_routes
from seekgate.backends.registry import SERVER_TYPES, Registry
from seekgate.cache.base import make_cache
from seekgate.context.service import ContextService
from seekgate.context.stage import ContextStage
from seekgate.core.service import Gateway
from seekgate.guards.keys import KeyStore
from seekgate.guards.limits import make_limiter
from seekgate.guards.scrub import LogScrubber
from seekgate.guards.stage import GuardStage
from seekgate.guards.vault import vault_key
from seekgate.mcp.chat import ENDPOINT as MCP_ENDPOINT
from seekgate.mcp.server import McpHttp, make_scalpel
from seekgate.prompts.packs import PackStore, shipped_packs_dir
from seekgate.reviews.store import ReviewStore
from seekgate.settings import ConfigError, Settings, resolve_secret
from seekgate.telemetry.live import LiveStats
from seekgate.telemetry.logs import RequestLogLine
from seekgate.telemetry.metrics import HealthGauges, Metrics, metrics_route
from seekgate.telemetry.middleware import METERED, TelemetryMiddleware
from seekgate.telemetry.record import Telemetry
from seekgate.telemetry.requestlog import RequestLog

__all__ = ["create_app", "create_local_app"]

log = logging.getLogger("seekgate")


def create_local_app(settings: Settings) -> Starlette:
    """The app for a command that calls the gateway in its own process (`seekgate mcp` over
    stdio, `seekgate review`): nothing listens for HTTP there, so /mcp is not served."""
    return create_app(msgspec.structs.replace(settings, scalpel=msgspec.structs.replace(settings.scalpel, http=False)))


def create_app(settings: Settings) -> Starlette:
    registry = Registry(settings)
    packs = PackStore([shipped_packs_dir(), Path(settings.routing.prompts_dir).expanduser()])
    for problem in packs.problems():
        log.warning("prompt pack skipped: %s", problem)
    reviews = ReviewStore(settings.server.data_path / "seekgate.db")
    context = ContextStage(ContextService(settings.context, settings.server.data_path))
    guards = _guards(settings)
    cache = make_cache(settings.cache, settings.server.data_path)
    gateway = Gateway(registry, settings, packs, reviews, context, guards, cache)
    live = LiveStats()  # the dashboard's figures
    telemetry = Telemetry([live], gauges=[live])
    meter = settings.telemetry
    if meter.log_requests:
        telemetry.add(RequestLogLine())
    request_log = RequestLog(settings.server.data_path / "seekgate.db", meter.request_log_days, meter.request_log_max_rows) if meter.request_log else None
    if request_log is not None:
        telemetry.add(request_log)
    metric_routes: list[Route] = []
    if meter.metrics:
        metrics = Metrics.from_settings(settings, endpoints=METERED | {MCP_ENDPOINT})
        telemetry.add(metrics)
        telemetry.gauges.append(metrics)  # requests in flight
        health = HealthGauges(metrics, registry, gateway.router.breaker)
        metric_routes.append(metrics_route(metrics, health.refresh))
    # scalpel (docs/scalpel.md): the MCP tool; `seekgate mcp` serves it over stdio from this same graph.
    scalpel = make_scalpel(settings, gateway, telemetry) if settings.scalpel.enabled else None
    mcp_http = None
    if scalpel is not None and settings.scalpel.http:
        mcp_http = McpHttp(
            scalpel, host=settings.server.host, authenticate=guards.authenticate, max_body_bytes=settings.server.max_body_bytes
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if guards.scrubber is not None:
            guards.scrubber.install()
        registry.build()
        await registry.start()
        if request_log is not None:
            await request_log.start()
        if scalpel is not None:
            scalpel.start()
        try:
            async with mcp_http.running() if mcp_http is not None else contextlib.nullcontext():
                yield
        finally:
            if scalpel is not None:
                await scalpel.aclose()  # running jobs end as aborted before their backends close
            if request_log is not None:
                await request_log.aclose()  # writes what is still queued
            await registry.aclose()
            if cache is not None:
                await cache.aclose()
            await guards.limiter.aclose()
            guards.keys.close()
            if guards.scrubber is not None:
                guards.scrubber.uninstall()
            reviews.close()
            await asyncio.to_thread(context.service.close)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        default = registry.default
        # The default model, and every server backend in use (once each): is it reachable?
        entries = [default, *(e for e in registry.models.values() if e.backend_type in SERVER_TYPES)]
        health = await registry.health(entries)
        checks: dict[str, dict[str, object]] = {f"model:{default.alias}": {"ready": health[default.alias].ready, "detail": health[default.alias].detail}}
        for e in entries[1:]:
            checks[f"backend:{e.backend_name}"] = {"ready": health[e.alias].ready, "detail": health[e.alias].detail}
        ready = all(c["ready"] for c in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    openapi = openapi_document()

    async def slo(request: Request) -> Response:
        return JSONResponse(gateway.router.slo.snapshot())

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(openapi)

    async def docs(request: Request) -> Response:
        return HTMLResponse(DOCS_HTML)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        kind = errors.NotFound if exc.status_code == 404 else errors.InvalidRequest
        err = kind(f"{request.method} {request.url.path}: {exc.detail}")
        err.status = exc.status_code
        return openai_error_response(err)

    app = Starlette(
        routes=[
            *openai_routes(gateway, settings.server.max_body_bytes),
            *embedding_routes(context.service, settings.server.max_body_bytes, lambda: context.stats, guards.authenticate),
            *anthropic_routes(gateway, settings.anthropic, settings.server.max_body_bytes),
            *prompt_routes(packs),
            *model_routes(registry, settings.admin, settings.server.max_body_bytes),
            *review_routes(reviews, settings.admin, settings.server.max_body_bytes),
            *request_routes(request_log, settings.admin),
            *metric_routes,
            *dashboard_routes(live, gateway, registry, settings.admin),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/v1/slo", slo, methods=["GET"]),
            Route("/openapi.json", openapi_json, methods=["GET"]),
            Route("/docs", docs, methods=["GET"]),
            *([Route(MCP_ENDPOINT, mcp_http)] if mcp_http is not None else []),
        ],
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
        middleware=[Middleware(TelemetryMiddleware, telemetry=telemetry)],
    )
    app.state.settings = settings
    app.state.gateway = gateway
    app.state.telemetry = telemetry
    app.state.scalpel = scalpel
    return app


def _guards(settings: Settings) -> GuardStage:
    config = settings.guards
    redis_url = resolve_secret(config.redis_url)
    if config.rate_limits == "redis" and not redis_url:
        raise ConfigError(f"guards.rate_limits is \"redis\": set the environment variable {config.redis_url} to redis://host:port/db")
    limiter = make_limiter(config.rate_limits, redis_url)
    scrubber = LogScrubber() if config.scrub_logs else None
    key = vault_key(resolve_secret(config.vault_key), settings.server.data_path / "vault.key")
    return GuardStage(config, KeyStore(settings.server.data_path / "seekgate.db"), limiter, scrubber, key)
