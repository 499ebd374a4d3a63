"""The admin API's key check, shared by every /admin route.

The key comes from the environment variable that `admin.api_key` names; callers send it as
`Authorization: Bearer KEY` or `X-Admin-Key: KEY`. With no key configured the admin API is off.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from seekgate import errors
from seekgate.api.http import decode, handled, read_body
from seekgate.api.openai.routes import openai_error_response
from seekgate.backends.registry import Registry
from seekgate.settings import AdminSettings, resolve_secret

__all__ = ["endpoint", "model_routes", "require_admin"]

Handler = Callable[[Request], Awaitable[Response]]


def endpoint(fn: Handler, admin: AdminSettings | None) -> Handler:
    """Render seekgate errors in OpenAI's shape; with `admin`, demand the admin key first."""

    async def guarded(request: Request) -> Response:
        if admin is not None:
            require_admin(request, admin)
        return await fn(request)

    return handled(guarded, openai_error_response)


def require_admin(request: Request, admin: AdminSettings) -> None:
    expected = resolve_secret(admin.api_key)
    if not expected:
        raise errors.PermissionDenied(f"the admin API is off: set the environment variable {admin.api_key!s} to a key and restart")
    auth = request.headers.get("authorization", "")
    given = auth[7:].strip() if auth.lower().startswith("bearer ") else request.headers.get("x-admin-key", "")
    if not given:
        raise errors.AuthenticationFailed("the admin API needs a key: send Authorization: Bearer KEY or X-Admin-Key: KEY")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise errors.PermissionDenied("wrong admin key")


class _PinBody(msgspec.Struct, forbid_unknown_fields=True):
    version: str


class _SwapBody(msgspec.Struct, forbid_unknown_fields=True):
    path: str


def model_routes(registry: Registry, admin: AdminSettings, max_body: int) -> list[Route]:
    """Pins, rollback and hot-swap: /admin/models..."""

    async def list_models(request: Request) -> Response:
        # In-process engines that hold a model say which weights; server backends have none.
        loaded = {
            e.alias: str(e.backend.weights)  # type: ignore[attr-defined]
            for e in registry.models.values()
            if getattr(e.backend, "engine", None) is not None
        }
        return JSONResponse({"pins": registry.pins.state(), "loaded": loaded})

    async def pin(request: Request) -> Response:
        family = request.path_params["family"]
        body = decode(await read_body(request, max_body), msgspec.json.Decoder(_PinBody))
        previous, current = await asyncio.to_thread(registry.pins.pin, family, body.version)
        return JSONResponse({"family": family, "previous": previous, "current": current})

    async def rollback(request: Request) -> Response:
        family = request.path_params["family"]
        previous, current = await asyncio.to_thread(registry.pins.rollback, family)
        return JSONResponse({"family": family, "previous": previous, "current": current})

    async def swap(request: Request) -> Response:
        entry = registry.get(request.path_params["alias"])
        body = decode(await read_body(request, max_body), msgspec.json.Decoder(_SwapBody))
        swap_to = getattr(entry.backend, "swap", None)
        if swap_to is None:
            raise errors.InvalidRequest(f"{entry.alias} runs on {entry.backend_type}; only embedded llamacpp models hot-swap")
        path = Path(body.path).expanduser()
        if not path.is_file():
            raise errors.InvalidRequest(f"no file at {path}", param="path")
        previous, current = await swap_to(path)
        return JSONResponse({"alias": entry.alias, "previous": str(previous) if previous else None, "current": str(current)})

    return [
        Route("/admin/models", endpoint(list_models, admin), methods=["GET"]),
        Route("/admin/models/{family}/pin", endpoint(pin, admin), methods=["POST"]),
        Route("/admin/models/{family}/rollback", endpoint(rollback, admin), methods=["POST"]),
        Route("/admin/models/{alias}/swap", endpoint(swap, admin), methods=["POST"]),
    ]
