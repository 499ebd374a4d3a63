"""The review queue over HTTP: the client's poll (`GET /v1/reviews/{id}`) and the reviewers'
admin API (`/admin/reviews`: list, show, approve with an optional edit, reject)."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from seekgate import errors
from seekgate.api.admin import endpoint
from seekgate.api.http import decode, read_body
from seekgate.reviews.store import Review, ReviewStore
from seekgate.settings import AdminSettings

__all__ = ["routes"]


class _Approve(msgspec.Struct, forbid_unknown_fields=True):
    answer: str | None = None


class _Reject(msgspec.Struct, forbid_unknown_fields=True):
    reason: str


def _public(review: Review) -> dict[str, Any]:
    out: dict[str, Any] = {"id": review.id, "object": "review", "status": review.status, "created": int(review.created),
                           "task": review.task, "model": review.model}  # fmt: skip
    if review.status == "approved":
        usage = review.usage
        out["completion"] = {
            "id": review.id,
            "object": "chat.completion",
            "created": int(review.decided or review.created),
            "model": review.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": review.answer}, "finish_reason": "stop", "logprobs": None}],
            "usage": {**usage, "total_tokens": usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0)},
        }
    if review.status == "rejected":
        out["reason"] = review.reason
    return out


def routes(store: ReviewStore, admin: AdminSettings, max_body: int) -> list[Route]:
    async def poll(request: Request) -> Response:
        return JSONResponse(_public(await store.get(request.path_params["id"])))

    async def list_reviews(request: Request) -> Response:
        status = request.query_params.get("status")
        if status not in (None, "pending", "approved", "rejected"):
            raise errors.InvalidRequest("status must be pending, approved or rejected", param="status")
        limit = request.query_params.get("limit", "100")
        if not limit.isdigit() or not 0 < int(limit) <= 1000:
            raise errors.InvalidRequest("limit must be a whole number from 1 to 1000", param="limit")
        reviews = await store.list(status, int(limit))
        return JSONResponse({"object": "list", "data": [msgspec.to_builtins(r) for r in reviews]})

    async def show(request: Request) -> Response:
        return JSONResponse(msgspec.to_builtins(await store.get(request.path_params["id"])))

    async def approve(request: Request) -> Response:
        raw = await read_body(request, max_body)
        body = decode(raw, msgspec.json.Decoder(_Approve)) if raw.strip() else _Approve()
        return JSONResponse(msgspec.to_builtins(await store.approve(request.path_params["id"], body.answer)))

    async def reject(request: Request) -> Response:
        body = decode(await read_body(request, max_body), msgspec.json.Decoder(_Reject))
        if not body.reason.strip():
            raise errors.InvalidRequest("reason: say why the answer is rejected", param="reason")
        return JSONResponse(msgspec.to_builtins(await store.reject(request.path_params["id"], body.reason)))

    return [
        Route("/v1/reviews/{id}", endpoint(poll, None), methods=["GET"]),
        Route("/admin/reviews", endpoint(list_reviews, admin), methods=["GET"]),
        Route("/admin/reviews/{id}", endpoint(show, admin), methods=["GET"]),
        Route("/admin/reviews/{id}/approve", endpoint(approve, admin), methods=["POST"]),
        Route("/admin/reviews/{id}/reject", endpoint(reject, admin), methods=["POST"]),
    ]
