"""POST /v1/embeddings: the context layer's embedder, in OpenAI's shape (float or base64);
GET /v1/context: the indexes held, and how many retrievals and citation checks there were."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable, Mapping

import msgspec
import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from seekgate import errors
from seekgate.api.http import api_key, decode, handled, read_body, until_disconnected
from seekgate.api.openai import wire
from seekgate.api.openai.translate import error_body
from seekgate.context.service import ContextService

__all__ = ["MAX_INPUTS", "routes"]

MAX_INPUTS = 2048
_decoder = msgspec.json.Decoder(wire.EmbeddingsRequest)


def _error(exc: errors.SeekgateError) -> Response:
    return Response(msgspec.json.encode(error_body(exc)), status_code=exc.status, media_type="application/json", headers=exc.headers or None)


def routes(
    service: ContextService, max_body: int, counters: Callable[[], Mapping[str, int]], authenticate: Callable[[str | None], Awaitable[object]]
) -> list[Route]:
    async def embeddings(request: Request) -> Response:
        await authenticate(api_key(request))
        body = decode(await read_body(request, max_body), _decoder)
        texts = [body.input] if isinstance(body.input, str) else body.input
        if not texts:
            raise errors.InvalidRequest("input is empty; send a string or a list of strings", param="input")
        if not all(isinstance(t, str) for t in texts):
            raise errors.Unsupported("token-id input is not supported; send text", param="input")
        if len(texts) > MAX_INPUTS:
            raise errors.InvalidRequest(f"input has {len(texts)} items; at most {MAX_INPUTS} per request", param="input")
        embedder = await asyncio.to_thread(lambda: service.embedder)
        if body.model and body.model != embedder.name:
            raise errors.ModelNotFound(body.model, [embedder.name])
        if body.dimensions is not None and body.dimensions != embedder.dim:
            raise errors.Unsupported(f"{embedder.name} makes {embedder.dim}-dimension vectors; dimensions must be {embedder.dim} or left out", param="dimensions")
        vectors: np.ndarray = await until_disconnected(request, asyncio.to_thread(embedder.embed, texts))  # type: ignore[arg-type]
        data = [
            {"object": "embedding", "index": i,
             "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode() if body.encoding_format == "base64" else v.tolist()}
            for i, v in enumerate(vectors)
        ]  # fmt: skip
        tokens = sum(max(1, len(t) // 4) for t in texts)  # type: ignore[arg-type]
        out = {"object": "list", "data": data, "model": embedder.name, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        return Response(msgspec.json.encode(out), media_type="application/json")

    async def indexes(request: Request) -> Response:
        """The indexes and their snapshots, and the context stage's counters."""
        snapshots = await asyncio.to_thread(lambda: service.store.snapshots())
        body = {
            "object": "list",
            "data": [{"repo": s.repo, "commit": s.commit, "files": s.files, "created": s.created, "root": s.root} for s in snapshots],
            "embedder": service.settings.embedder,
            "store": service.settings.store,
            "counters": dict(counters()),
        }
        return Response(msgspec.json.encode(body), media_type="application/json")

    return [
        Route("/v1/embeddings", handled(embeddings, _error), methods=["POST"]),
        Route("/v1/context", handled(indexes, _error), methods=["GET"]),
    ]
