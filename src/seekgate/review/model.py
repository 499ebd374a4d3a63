"""The review's model calls: the gateway's chat-completions endpoint under the ci task.

The review is a client of the gateway like any other, so the task profile's route, guards
(secrets in a diff are redacted before a model sees them), pins, cache and metrics all apply.
The gateway is a running one (review.gateway) or one built in this process and called over ASGI,
without a socket: the same request path either way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec

from seekgate.settings import ReviewSettings, Settings, resolve_secret

__all__ = ["Answer", "ModelCallFailed", "PromptTooLong", "ReviewModel", "open_gateway"]

IN_PROCESS = "http://seekgate.in-process"
RETRIES = 3
"""Tries after a 429 (a rate limit) or a 503 with Retry-After (the engine's queue is full)."""
MAX_WAIT_S = 30.0


class ModelCallFailed(Exception):
    """The gateway refused the call or could not be reached; the message says which and why."""


class PromptTooLong(ModelCallFailed):
    """The model's context window cannot hold the call: split it and ask again."""


class Answer(msgspec.Struct, frozen=True):
    text: str
    model: str
    """The model alias that answered (x-seekgate-model), or the answer's `model` field."""
    cache: str | None = None
    """x-seekgate-cache: hit, miss, bypass or off."""
    cut: bool = False
    """The answer stopped at max_tokens: the comments written in full are kept, the last is lost."""


class ReviewModel:
    def __init__(self, http: httpx.AsyncClient, review: ReviewSettings) -> None:
        self._http = http
        self._review = review
        key = resolve_secret(review.api_key)
        self._headers = {
            "X-Task-Type": review.task,
            "X-Prompt-Pack": review.pack,
            "X-Risk-Level": "low",
            **({"Authorization": f"Bearer {key}"} if key else {}),
        }

    async def ask(self, prompt: str, schema: dict[str, Any]) -> Answer:
        body = {
            "model": self._review.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": self._review.max_tokens,
            "response_format": {"type": "json_schema", "json_schema": {"name": "review", "schema": schema}},
        }
        url = f"{self._http.base_url}/v1/chat/completions"
        where = "the in-process gateway" if str(self._http.base_url) == IN_PROCESS else f"the gateway at {self._http.base_url}"
        for attempt in range(RETRIES + 1):
            try:
                resp = await self._http.post("/v1/chat/completions", json=body, headers=self._headers, timeout=self._review.timeout_s)
            except httpx.TimeoutException:
                raise ModelCallFailed(f"{where} did not answer within review.timeout_s = {self._review.timeout_s:g} s") from None
            except httpx.HTTPError as exc:
                raise ModelCallFailed(f"cannot reach {where} ({url}): {exc}") from None
            wait = _retry_after(resp)
            if wait is None or attempt == RETRIES:
                break
            await asyncio.sleep(wait)
        if resp.status_code != 200:
            message, code = _error_of(resp)
            kind = PromptTooLong if code == "context_length_exceeded" else ModelCallFailed
            raise kind(f"{where} answered {resp.status_code}: {message}")
        try:
            data = resp.json()
            choice = data["choices"][0]
            text = choice["message"].get("content") or ""
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise ModelCallFailed(f"{where} sent an answer that is not a chat completion: {resp.text[:200]!r}") from None
        if choice.get("finish_reason") == "content_filter":
            guards = resp.headers.get("x-seekgate-guards", "")
            raise ModelCallFailed(f"{where} withheld the answer (its output guards{': ' + guards if guards else ''})")
        return Answer(
            text=text,
            cut=choice.get("finish_reason") == "length",
            model=resp.headers.get("x-seekgate-model") or str(data.get("model", "")),
            cache=resp.headers.get("x-seekgate-cache"),
        )


def _retry_after(resp: httpx.Response) -> float | None:
    """Seconds to wait before asking again, when the gateway says it is busy and for how long."""
    if resp.status_code not in (429, 503):
        return None
    try:
        wait = float(resp.headers.get("retry-after", ""))
    except ValueError:
        return None
    return min(max(wait, 0.0), MAX_WAIT_S)


def _error_of(resp: httpx.Response) -> tuple[str, str | None]:
    try:
        error = resp.json()["error"]
        return str(error.get("message") or error), error.get("code")
    except (ValueError, KeyError, TypeError, AttributeError):
        return resp.text[:300] or resp.reason_phrase, None


@contextlib.asynccontextmanager
async def open_gateway(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for review.gateway, or for a gateway built here and started for the
    duration (its lifespan: models load on first use and unload at the end)."""
    if settings.review.gateway:
        async with httpx.AsyncClient(base_url=settings.review.gateway.rstrip("/")) as http:
            yield http
        return
    from seekgate.app import create_local_app

    app = create_local_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=IN_PROCESS) as http,
    ):
        yield http
