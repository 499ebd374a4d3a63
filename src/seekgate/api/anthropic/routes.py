"""Anthropic Messages API routes: POST /v1/messages and /v1/messages/count_tokens.

Claude Code and the anthropic SDK send anthropic-version, anthropic-beta and x-api-key headers;
they are accepted (keys are checked by the auth stage when it is configured)."""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from seekgate import errors
from seekgate.api.anthropic import translate, wire
from seekgate.api.http import decode, handled, hints_from, read_body, until_disconnected
from seekgate.core.service import Gateway, OpenStream
from seekgate.settings import AnthropicSettings

__all__ = ["anthropic_error_response", "routes"]

log = logging.getLogger("seekgate.api")

_messages_decoder = msgspec.json.Decoder(wire.MessagesRequest)
_count_decoder = msgspec.json.Decoder(wire.CountTokensRequest)


def anthropic_error_response(exc: errors.SeekgateError) -> Response:
    return JSONResponse(translate.error_body(exc), status_code=exc.status, headers=exc.headers or None)


def routes(gateway: Gateway, settings: AnthropicSettings, max_body: int) -> list[Route]:
    rules = tuple((r.pattern, r.model) for r in settings.model_map)
    process_id, counter = os.urandom(6).hex(), itertools.count()

    async def messages(request: Request) -> Response:
        body = decode(await read_body(request, max_body), _messages_decoder)
        core_request = translate.chat_request(body, translate.map_model(body.model, rules))
        hints = hints_from(request)
        mid = f"msg_{process_id}{next(counter):08x}"
        if body.stream and not gateway.holds_for_review(core_request, hints):
            opened = await until_disconnected(request, gateway.stream(core_request, hints))
            return StreamingResponse(
                _events(mid, body.model, opened),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"} | opened.outcome.headers(),
            )
        outcome, answer = await until_disconnected(request, gateway.chat(core_request, hints))
        if outcome.review is not None:
            poll = f"/v1/reviews/{outcome.review.id}"
            return JSONResponse({"id": outcome.review.id, "type": "review", "status": "pending", "poll": poll},
                                status_code=202, headers=outcome.headers() | {"Location": poll})  # fmt: skip
        return Response(translate.message_response(mid, body.model, answer), media_type="application/json", headers=outcome.headers())

    async def count_tokens(request: Request) -> Response:
        body = decode(await read_body(request, max_body), _count_decoder)
        core_request = translate.count_request(body, translate.map_model(body.model, rules))
        return JSONResponse({"input_tokens": await gateway.count_tokens(core_request, hints_from(request))})

    return [
        Route("/v1/messages", handled(messages, anthropic_error_response), methods=["POST"]),
        Route("/v1/messages/count_tokens", handled(count_tokens, anthropic_error_response), methods=["POST"]),
    ]


async def _events(mid: str, model: str, opened: OpenStream) -> AsyncIterator[bytes]:
    writer = translate.StreamWriter(mid, model)
    yield writer.start()
    try:
        async for chunk in opened:
            if chunk.text:
                yield writer.text(chunk.text)
            for delta in chunk.tool_calls:
                yield writer.tool(delta)
            if chunk.finish_reason is not None:
                yield writer.finish(chunk)
                return
    except errors.SeekgateError as exc:
        log.warning("stream failed after it began: %s", exc.message)
        yield writer.error(exc)
    except Exception:
        log.exception("stream failed after it began")
        yield writer.error(errors.SeekgateError("internal error during the stream; see the gateway log"))
