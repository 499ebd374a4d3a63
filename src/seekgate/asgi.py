"""Running the gateway under an ASGI server: process set-up shared by `seekgate serve` and its
worker processes, and the app factory those workers import.

`seekgate serve --workers N` starts N processes that each build their own app. The parent
passes what it was given (config file, --set overrides, flags) in SEEKGATE_SERVE_ARGS, and each
worker reads its settings from it along the same path as the parent, so every worker runs the
same configuration.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
from typing import Any

from starlette.applications import Starlette

from seekgate.settings import Settings

__all__ = ["SERVE_ARGS_ENV", "app_from_env", "prepare_process", "serve_args_env", "settle_heap"]

SERVE_ARGS_ENV = "SEEKGATE_SERVE_ARGS"
"""JSON: {"config": path or null, "set": ["KEY=VALUE", ...], "flags": {"server.port": 8080, ...}}.
(No "__" in the name, so the settings loader does not read it as a config key.)"""


def serve_args_env(config: str | None, overrides: list[str], flags: dict[str, Any]) -> str:
    """What a worker needs to rebuild the parent's settings; a config path is made absolute."""
    return json.dumps({"config": os.path.abspath(config) if config else None, "set": list(overrides), "flags": flags})


def prepare_process(settings: Settings) -> None:
    """Logging for the process: JSON lines or text (telemetry.log_format), uvicorn's too."""
    from seekgate.telemetry.logs import configure_logging

    configure_logging(settings.server.log_level, settings.telemetry.log_format)


def settle_heap() -> None:
    """Call once the app is built. Everything built so far lives as long as the process: move it
    out of the collector's way, and collect less often, since a request allocates many
    short-lived objects (measured: about 10% of the gateway's CPU went to collections, and the
    p99 tail with it)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def app_from_env() -> Starlette:
    """The app factory of a worker process (uvicorn --factory seekgate.asgi:app_from_env)."""
    from seekgate.app import create_app
    from seekgate.cli.common import settings_from_args

    raw = os.environ.get(SERVE_ARGS_ENV)
    if raw is None:
        raise RuntimeError(f"{SERVE_ARGS_ENV} is not set: workers are started by `seekgate serve --workers N`")
    given = json.loads(raw)
    settings = settings_from_args(argparse.Namespace(config=given["config"], set=given["set"]), given["flags"])
    prepare_process(settings)
    logging.getLogger("seekgate").info("worker %d serving", os.getpid())
    app = create_app(settings)
    settle_heap()
    return app
