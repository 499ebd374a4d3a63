"""HTTP plumbing shared by every dialect: bounded body reading, decoding into wire models,
and running a handler so that a caller who goes away cancels its work."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from seekgate import errors
from seekgate.core.service import Hints
from seekgate.telemetry.middleware import trace_of

__all__ = ["ClientGone", "api_key", "decode", "handled", "hints_from", "read_body", "until_disconnected"]

log = logging.getLogger("seekgate.api")
Handler = Callable[[Request], Awaitable[Response]]


def handled(fn: Handler, render: Callable[[errors.SeekgateError], Response]) -> Handler:
    """Render every failure in the dialect's error format; unexpected ones are logged, not hidden."""

    async def endpoint(request: Request) -> Response:
        try:
            return await fn(request)
        except errors.SeekgateError as exc:
            trace = trace_of(request.scope)
            if trace is not None:
                trace.error = exc.code or exc.kind
            return render(exc)
        except ClientGone:
            return Response(status_code=499)
        except Exception:
            log.exception("unhandled error in %s", request.url.path)
            return render(errors.SeekgateError("internal error; see the gateway log"))

    return endpoint


def hints_from(request: Request) -> Hints:
    """The routing headers every dialect accepts."""
    h = request.headers
    return Hints(
        task=h.get("x-task-type"), pack=h.get("x-prompt-pack"), risk=h.get("x-risk-level"), model=h.get("x-model-alias"),
        session=h.get("x-session-id"), context=h.get("x-context-refs"), api_key=api_key(request),
        fresh=_no_cache(h.get("cache-control", "")), trace=trace_of(request.scope),
    )  # fmt: skip


def _no_cache(value: str) -> bool:
    directives = {d.strip().split("=", 1)[0].lower() for d in value.split(",")}
    return bool(directives & {"no-cache", "no-store"})


def api_key(request: Request) -> str | None:
    """The caller's key: `Authorization: Bearer KEY` (OpenAI SDKs) or `x-api-key: KEY` (Anthropic's)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.headers.get("x-api-key") or None

T = TypeVar("T")
_AT = re.compile(r" - at `\$\.?(.*)`$")


class ClientGone(Exception):
    """The caller disconnected before the answer was ready; nothing is sent."""


async def read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise errors.PayloadTooLarge(f"request body is {length} bytes; the limit is {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.PayloadTooLarge(f"request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decode(body: bytes, decoder: msgspec.json.Decoder[T]) -> T:
    """Decode and validate; errors name the offending field."""
    if not body.strip():
        raise errors.MalformedJSON("the request body is empty; send a JSON object")
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _AT.search(text)
        param = match.group(1) if match else None
        message = _AT.sub("", text)
        if param:
            message = f"{param}: {message}"
        elif message.startswith("Expected `object`"):
            message = "the request body must be a JSON object, " + message.split(", ", 1)[-1]
        raise errors.InvalidRequest(f"invalid request: {message}", param=param) from None
    except msgspec.DecodeError as exc:
        raise errors.MalformedJSON(f"the request body is not valid JSON: {exc}") from None


async def until_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work` in this task, cancelling it if the client disconnects first.

    One watcher task per request (not two tasks and asyncio.wait): this runs on every call.
    """
    current = asyncio.current_task()
    assert current is not None
    gone = False

    async def watch() -> None:
        nonlocal gone
        await _wait_disconnect(request)
        gone = True
        current.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if gone:
            current.uncancel()
            raise ClientGone() from None
        raise
    finally:
        watcher.cancel()


async def _wait_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
