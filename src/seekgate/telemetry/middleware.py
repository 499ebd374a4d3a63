"""The ASGI middleware that meters every API request: it gives the request an id (the caller's
`X-Request-Id` when it is sane, else a new one) and a `Trace` (at `request.state.trace`, where
the gateway writes what it decided), times the response to its last byte, and hands the
finished record to `Telemetry`. Only the generation and embedding endpoints are metered, by
their fixed paths, so a label never holds a raw URL."""

from __future__ import annotations

import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seekgate.telemetry.record import Telemetry, Trace

__all__ = ["METERED", "TelemetryMiddleware", "trace_of"]

METERED = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/messages", "/v1/messages/count_tokens", "/v1/embeddings"})
_SANE_ID = re.compile(r"[\w.:-]{1,64}")
CLIENT_GONE = 499


def trace_of(scope: Scope) -> Trace | None:
    state = scope.get("state")
    return state.get("trace") if isinstance(state, dict) else None


class TelemetryMiddleware:
    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in METERED:
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        trace = Trace(id=given if _SANE_ID.fullmatch(given) else "req_" + secrets.token_hex(12), endpoint=scope["path"])
        scope.setdefault("state", {})["trace"] = trace
        status = 500
        done = False

        async def metered_send(message: Message) -> None:
            nonlocal status, done
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", trace.id.encode())]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                done = True

        self.telemetry.started(trace.endpoint)
        try:
            await self.app(scope, receive, metered_send)
        finally:
            # A response that never finished went to a caller who left (or the server stopped).
            self.telemetry.ended(trace.endpoint)
            self.telemetry.finish(trace.record(status if done else CLIENT_GONE, time.perf_counter()))
