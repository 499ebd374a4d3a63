"""GET /v1/prompts: the prompt packs and their versions, and any file that failed to load."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from seekgate import errors
from seekgate.api.openai.routes import openai_error_response
from seekgate.prompts.packs import PackStore, PromptPack

__all__ = ["routes"]


def _summary(pack: PromptPack) -> dict[str, object]:
    return {
        "ref": pack.ref,
        "name": pack.name,
        "version": pack.version,
        "description": pack.description,
        "task_types": list(pack.task_types),
        "output_contract": pack.output_contract,
        "path": pack.path,
    }


def routes(store: PackStore) -> list[Route]:
    async def list_packs(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [_summary(p) for p in store.all()], "problems": store.problems()})

    async def one_pack(request: Request) -> Response:
        try:
            pack = store.get(request.path_params["ref"], param="ref")
        except errors.InvalidRequest as exc:
            return openai_error_response(errors.NotFound(exc.message, param="ref", code=exc.code))
        return JSONResponse(_summary(pack) | {"body": pack.body})

    return [Route("/v1/prompts", list_packs, methods=["GET"]), Route("/v1/prompts/{ref}", one_pack, methods=["GET"])]
