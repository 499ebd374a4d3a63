"""What every backend that calls an HTTP server shares: the pooled session, reading an SSE
stream, and turning upstream failures into the gateway's own errors."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import msgspec

from seekgate import errors
from seekgate.backends.base import Health

__all__ = ["error_message", "pooled_session", "probe", "sse_data", "transport_error", "upstream_error"]


def pooled_session(
    base_url: str, headers: Mapping[str, str], *, max_connections: int, connect_timeout: float, read_timeout: float
) -> aiohttp.ClientSession:
    """A keep-alive session for one configured server, shared by every model on it; call inside
    the event loop. Timeouts bound connecting and each wait for bytes, never a whole answer."""
    return aiohttp.ClientSession(
        base_url=base_url.rstrip("/") + "/",
        connector=aiohttp.TCPConnector(limit=max_connections, keepalive_timeout=60),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout),
        headers=dict(headers),
        json_serialize=lambda obj: msgspec.json.encode(obj).decode(),
        skip_auto_headers=("User-Agent",),
    )


async def probe(session: aiohttp.ClientSession, path: str, base_url: str) -> Health:
    """Reachable and answering: a GET of a cheap path with a short timeout."""
    try:
        async with session.get(path, timeout=aiohttp.ClientTimeout(total=3)) as resp:
            if resp.status < 400:
                return Health(ready=True)
            return Health(ready=False, detail=f"{base_url}/{path} answered {resp.status}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        return Health(ready=False, detail=f"{base_url} unreachable: {exc.__class__.__name__}")


async def sse_data(content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
    """The `data:` payloads of an SSE stream. Reads whatever has arrived and splits lines here:
    reading line by line through aiohttp costs two reads and a parser wake-up per event."""
    pending = b""
    async for block in content.iter_any():
        lines = (pending + block).split(b"\n")
        pending = lines.pop()
        for line in lines:
            if line.startswith(b"data:"):
                yield line[5:].strip()
    if pending.startswith(b"data:"):
        yield pending[5:].strip()


def upstream_error(name: str, status: int, raw: bytes, headers: Any) -> errors.SeekgateError:
    """An upstream's error answer as a gateway error, by HTTP status."""
    detail = error_message(raw)
    if status in (400, 413, 422):
        # Kept as the caller's code, so a client can split its prompt rather than give up.
        code = "context_length_exceeded" if _TOO_LONG.search(detail) or b'"context_length_exceeded"' in raw else None
        return errors.InvalidRequest(f"backend {name} rejected the request: {detail}", code=code)
    if status == 429:
        retry = headers.get("Retry-After")
        return errors.RateLimited(
            f"backend {name} is rate limiting: {detail}", headers={"Retry-After": retry} if retry else None
        )
    if status in (503, 529):
        return errors.UpstreamUnavailable(f"backend {name} is unavailable ({status}): {detail}")
    if status == 504:
        return errors.UpstreamTimeout(f"backend {name} timed out upstream ({status}): {detail}")
    return errors.UpstreamError(f"backend {name} answered {status}: {detail}")


_TOO_LONG = re.compile(
    r"maximum context length|context length exceeded|context window|exceeds the (?:\w+ ){0,2}context|too many tokens", re.IGNORECASE
)
"""How vLLM, llama.cpp's server, Ollama and OpenAI word a prompt the model cannot hold."""


def error_message(raw: bytes) -> str:
    """The message inside an error body (OpenAI's and Anthropic's shapes both nest it under
    `error`), or the start of the body when it is not JSON."""
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw[:300].decode(errors="replace").strip() or "(empty body)"
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict):
            return str(err.get("message") or err.get("detail") or err)[:300]
        return str(err)[:300]
    return str(body)[:300]


def transport_error(name: str, base_url: str, exc: BaseException) -> errors.SeekgateError:
    """A failure to talk to the server at all. Refused connections become UpstreamUnavailable,
    which the router retries and falls back from: nothing reached the model."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return errors.UpstreamTimeout(f"backend {name} at {base_url} did not answer in time ({exc.__class__.__name__})")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return errors.UpstreamError(f"backend {name} at {base_url}: the connection broke before the answer was complete")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return errors.UpstreamUnavailable(f"backend {name} at {base_url} is unreachable: {exc.os_error or exc}")
    return errors.UpstreamError(f"backend {name} at {base_url} failed: {exc.__class__.__name__}: {exc}")
