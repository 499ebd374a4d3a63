"""How a scalpel chore reaches a model: through the gateway in-process (`gateway_chat`: the
task profile, guards, routing, pins and metrics all apply), or any OpenAI-compatible server
(`endpoint_chat`, through the same backend class the gateway uses for one)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable

import msgspec

from seekgate import errors
from seekgate.backends.openai_compat import OpenAICompatBackend
from seekgate.backends.upstream import pooled_session
from seekgate.core.service import Gateway, Hints
from seekgate.core.types import ChatRequest, ChatResponse
from seekgate.settings import OpenAIBackendSpec
from seekgate.telemetry.record import Telemetry, Trace

__all__ = ["ENDPOINT", "SCALPEL_TASK", "Chat", "EndpointChat", "endpoint_chat", "gateway_chat"]

Chat = Callable[[ChatRequest], Awaitable[ChatResponse]]
SCALPEL_TASK = "scalpel"
"""The task profile used through the gateway when one of that name is configured."""
ENDPOINT = "/mcp"
"""The endpoint label of the model calls a chore makes, in metrics and the request log."""


def gateway_chat(
    gateway: Gateway,
    *,
    task: str | None = None,
    model: str = "auto",
    pack: str | None = "none",
    api_key: str | None = None,
    telemetry: Telemetry | None = None,
) -> Chat:
    """Model turns through the gateway in-process: the task profile (`task`, else `scalpel` when
    configured, else the default task), its guards, rate limits, route and pins apply; with
    `telemetry`, each turn is metered as a request to /mcp. `pack` "none" leaves the task's
    prompt pack out (the chore brings its own instructions); None uses the task's pack."""
    tasks = gateway.settings.tasks
    name = task or (SCALPEL_TASK if SCALPEL_TASK in tasks else gateway.settings.routing.default_task)

    async def chat(request: ChatRequest) -> ChatResponse:
        request = msgspec.structs.replace(request, model=model)
        if telemetry is None:
            return (await gateway.chat(request, Hints(task=name, pack=pack, api_key=api_key)))[1]
        trace = Trace(id="scalpel_" + os.urandom(8).hex(), endpoint=ENDPOINT)
        status = 499  # cancelled: the caller went away, as the HTTP middleware counts it
        telemetry.started(ENDPOINT)
        try:
            _, answer = await gateway.chat(request, Hints(task=name, pack=pack, api_key=api_key, trace=trace))
            status = 200
            return answer
        except errors.SeekgateError as exc:
            status, trace.error = exc.status, exc.code or exc.kind
            raise
        finally:
            telemetry.ended(ENDPOINT)
            telemetry.finish(trace.record(status, time.perf_counter()))

    return chat


class EndpointChat:
    """Model turns against an OpenAI-compatible server, translated by the gateway's own
    OpenAI-compatible backend. `tool_mode` as for a configured backend: native tool calls, or
    for a model without them, a grammar or a JSON schema that keeps each call valid. The HTTP
    session opens on the first call; aclose() closes it."""

    def __init__(
        self, url: str, model: str, *, api_key: str | None = None, timeout_s: float = 300.0, tool_mode: str = "native"
    ) -> None:
        base = url.rstrip("/").removesuffix("/chat/completions")
        try:
            self._spec = msgspec.convert(
                {"type": "openai", "base_url": base, "read_timeout": timeout_s, "tool_mode": tool_mode}, OpenAIBackendSpec
            )
        except msgspec.ValidationError as exc:
            raise errors.InvalidRequest(f"endpoint settings: {exc}", param="tool_mode") from None
        self._model, self._api_key, self._timeout_s = model, api_key, timeout_s
        self._backend: OpenAICompatBackend | None = None
        self._close: Callable[[], Awaitable[None]] | None = None

    async def __call__(self, request: ChatRequest) -> ChatResponse:
        if self._backend is None:
            headers = {"Content-Type": "application/json"}
            if self._api_key:
                headers["Authorization"] = f"Bearer {self._api_key}"
            session = pooled_session(
                self._spec.base_url,
                headers,
                max_connections=4,
                connect_timeout=min(10.0, self._timeout_s),
                read_timeout=self._timeout_s,
            )
            self._backend, self._close = OpenAICompatBackend("scalpel", self._spec, self._model, session), session.close
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._backend.chat(request)
        except TimeoutError:
            raise errors.UpstreamTimeout(f"{self._spec.base_url} did not answer within {self._timeout_s:g}s") from None

    async def aclose(self) -> None:
        if self._close is not None:
            await self._close()
            self._backend = self._close = None


def endpoint_chat(
    url: str, model: str, *, api_key: str | None = None, timeout_s: float = 300.0, tool_mode: str = "native"
) -> EndpointChat:
    """A Chat against `url`: a chat-completions URL or its base (…/v1)."""
    return EndpointChat(url, model, api_key=api_key, timeout_s=timeout_s, tool_mode=tool_mode)
