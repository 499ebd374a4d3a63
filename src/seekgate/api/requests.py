"""The request log over HTTP (admin key): `GET /admin/requests` lists recent requests, newest
first, filtered by task, model, status (429, 4xx), errors, cache and time; `GET
/admin/requests/{id}` shows one, with its prompt and answer when `telemetry.log_prompts` kept them."""

from __future__ import annotations

import asyncio
import time

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from seekgate import errors
from seekgate.api.admin import endpoint
from seekgate.settings import AdminSettings
from seekgate.telemetry.requestlog import RequestLog, parse_filters

__all__ = ["routes"]


def routes(log: RequestLog | None, admin: AdminSettings) -> list[Route]:
    """With `log` None (telemetry.request_log = false) the routes answer 404 saying so."""

    def store() -> RequestLog:
        if log is None:
            raise errors.NotFound("the request log is off: set telemetry.request_log = true and restart", code="request_log_off")
        return log

    async def list_requests(request: Request) -> Response:
        requests_log = store()
        filters = parse_filters(request.query_params, time.time())
        limit = filters["limit"]
        # One more than asked tells whether another page follows.
        found = await asyncio.to_thread(requests_log.query, **{**filters, "limit": limit + 1})
        return JSONResponse(
            {"object": "list", "data": [msgspec.to_builtins(r) for r in found[:limit]], "has_more": len(found) > limit}
        )

    async def show(request: Request) -> Response:
        record = await asyncio.to_thread(store().get, request.path_params["id"])
        return JSONResponse(msgspec.to_builtins(record))

    return [
        Route("/admin/requests", endpoint(list_requests, admin), methods=["GET"]),
        Route("/admin/requests/{id}", endpoint(show, admin), methods=["GET"]),
    ]
