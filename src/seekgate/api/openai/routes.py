"""OpenAI-compatible routes: thin handlers that decode, call the gateway, and encode."""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from seekgate import errors
from seekgate.api.http import api_key, decode, handled, hints_from, read_body, until_disconnected
from seekgate.api.openai import translate, wire
from seekgate.core.service import Gateway, OpenStream
from seekgate.reviews.store import Review
from seekgate.core.types import ChatResponse, Chunk
from seekgate.core.types import Request as CoreRequest

__all__ = ["openai_error_response", "routes"]

log = logging.getLogger("seekgate.api")

_chat_decoder = msgspec.json.Decoder(wire.ChatCompletionRequest)
_completion_decoder = msgspec.json.Decoder(wire.CompletionRequest)
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def openai_error_response(exc: errors.SeekgateError) -> Response:
    return JSONResponse(translate.error_body(exc), status_code=exc.status, headers=exc.headers or None)


def accepted_response(review: Review, headers: dict[str, str]) -> Response:
    """The 202 a client gets when its answer waits for a reviewer; it polls the Location."""
    poll = f"/v1/reviews/{review.id}"
    body = {"id": review.id, "object": "review", "status": review.status, "poll": poll}
    return JSONResponse(body, status_code=202, headers=headers | {"Location": poll})


def routes(gateway: Gateway, max_body: int) -> list[Route]:
    # Response ids: a random per-process prefix and a counter, so ids cost no system call.
    process_id, counter = os.urandom(6).hex(), itertools.count()

    def _rid(prefix: str) -> str:
        return f"{prefix}{process_id}{next(counter):08x}"

    def generation_endpoint(
        decoder: msgspec.json.Decoder[Any],
        to_core: Callable[[Any], CoreRequest],
        prefix: str,
        encode: Callable[[str, str, ChatResponse], bytes],
        events: Callable[[str, OpenStream, bool], AsyncIterator[bytes]],
    ) -> Callable[[Request], Awaitable[Response]]:
        """Chat and text completions share one shape: decode, run, encode as JSON or SSE."""

        async def endpoint(request: Request) -> Response:
            body = decode(await read_body(request, max_body), decoder)
            core_request = to_core(body)
            hints = hints_from(request)
            rid = _rid(prefix)
            if body.stream and not gateway.holds_for_review(core_request, hints):
                opened = await until_disconnected(request, gateway.stream(core_request, hints))
                usage = bool(body.stream_options and body.stream_options.include_usage)
                return StreamingResponse(
                    events(rid, opened, usage), media_type="text/event-stream", headers=_SSE_HEADERS | opened.outcome.headers()
                )
            outcome, answer = await until_disconnected(request, gateway.chat(core_request, hints))
            if outcome.review is not None:
                return accepted_response(outcome.review, outcome.headers())
            return Response(encode(rid, outcome.entry.alias, answer), media_type="application/json", headers=outcome.headers())

        return endpoint

    chat_completions = generation_endpoint(_chat_decoder, translate.chat_request, "chatcmpl-", translate.chat_response, _chat_events)
    completions = generation_endpoint(
        _completion_decoder, translate.completion_request, "cmpl-", translate.completion_response, _completion_events
    )

    async def models(request: Request) -> Response:
        if gateway.guards is not None:  # with guards.require_keys, listing models needs a key too
            await gateway.guards.authenticate(api_key(request))
        entries = list(gateway.registry.models.values())
        health = await gateway.registry.health(entries)
        data = [
            {
                "id": e.alias,
                "object": "model",
                "created": 0,
                "owned_by": "seekgate",
                "backend": e.backend_name,
                "backend_type": e.backend_type,
                "ready": health[e.alias].ready,
                "description": e.spec.description,
                **({"detail": health[e.alias].detail} if health[e.alias].detail else {}),
                **({"load": health[e.alias].load} if health[e.alias].load else {}),
            }
            for e in entries
        ]
        return JSONResponse({"object": "list", "data": data})

    return [
        Route("/v1/chat/completions", handled(chat_completions, openai_error_response), methods=["POST"]),
        Route("/v1/completions", handled(completions, openai_error_response), methods=["POST"]),
        Route("/v1/models", handled(models, openai_error_response), methods=["GET"]),
    ]


async def _guarded(chunks: AsyncIterator[Chunk], on_error: Callable[[errors.SeekgateError], bytes]) -> AsyncIterator[Chunk | bytes]:
    """Pass chunks through; a failure after the stream began ends it with an error event."""
    try:
        async for chunk in chunks:
            yield chunk
    except errors.SeekgateError as exc:
        log.warning("stream failed after it began: %s", exc.message)
        yield on_error(exc)
    except Exception:
        log.exception("stream failed after it began")
        yield on_error(errors.SeekgateError("internal error during the stream; see the gateway log"))


async def _chat_events(rid: str, opened: OpenStream, include_usage: bool) -> AsyncIterator[bytes]:
    created, alias = int(time.time()), opened.entry.alias
    yield translate.chat_chunk(rid, created, alias, None, first=True)
    async for item in _guarded(opened, translate.error_event):
        if isinstance(item, bytes):
            yield item
            return
        if item.text or item.tool_calls or item.finish_reason:
            yield translate.chat_chunk(rid, created, alias, item)
        if item.usage is not None and include_usage:
            yield translate.usage_chunk(rid, created, alias, item.usage, "chat.completion.chunk")
    yield translate.DONE


async def _completion_events(rid: str, opened: OpenStream, include_usage: bool) -> AsyncIterator[bytes]:
    created, alias = int(time.time()), opened.entry.alias
    async for item in _guarded(opened, translate.error_event):
        if isinstance(item, bytes):
            yield item
            return
        if item.text or item.finish_reason:
            yield translate.completion_chunk(rid, created, alias, item)
        if item.usage is not None and include_usage:
            yield translate.usage_chunk(rid, created, alias, item.usage, "text_completion")
    yield translate.DONE
