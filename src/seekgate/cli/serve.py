"""`seekgate serve`: the gateway over HTTP, in one process or several."""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
from typing import Any

from seekgate.asgi import SERVE_ARGS_ENV, prepare_process, serve_args_env, settle_heap
from seekgate.cli.common import settings_from_args
from seekgate.settings import ConfigError, Settings

__all__ = ["add_parser", "run"]

log = logging.getLogger("seekgate")

WORKERS_HELP = (
    "worker processes (default 1). Each is a whole gateway: it loads its own copy of every embedded model it "
    'serves, and keeps its own in-process rate limits (use guards.rate_limits = "redis"), circuit breakers '
    "and SLO windows. Metrics are summed over the workers (PROMETHEUS_MULTIPROC_DIR, a fresh temporary "
    "directory unless set)."
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the gateway (default http://127.0.0.1:8080)")
    p.add_argument("--host", help="address to bind (server.host)")
    p.add_argument("--port", type=int, help="port to bind (server.port)")
    p.add_argument("--model", help="default model alias (server.default_model)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="server.log_level")
    p.add_argument("--workers", type=int, default=1, metavar="N", help=WORKERS_HELP)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: give 1 or more worker processes")
    flags = {
        "server.host": args.host,
        "server.port": args.port,
        "server.default_model": args.model,
        "server.log_level": args.log_level,
    }
    flags = {k: v for k, v in flags.items() if v is not None}
    settings = settings_from_args(args, flags)
    prepare_process(settings)
    log.info("configuration from: %s", " < ".join(settings.sources))
    log.info(
        "serving on http://%s:%d (default model %s, %d worker%s); API docs at /docs",
        settings.server.host,
        settings.server.port,
        settings.server.default_model,
        args.workers,
        "" if args.workers == 1 else "s",
    )
    if args.workers > 1:
        return _run_workers(args, settings, flags)
    import uvicorn

    from seekgate.app import create_app

    app = create_app(settings)
    settle_heap()
    uvicorn.run(app, **_uvicorn_options(settings))
    return 0


def _uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.server.host,
        "port": settings.server.port,
        "loop": "uvloop",
        "http": "httptools",
        "log_level": settings.server.log_level,
        "access_log": False,
        "log_config": None,  # uvicorn's records go to the process's handler (JSON lines by default)
        "timeout_graceful_shutdown": 10,
    }


def _run_workers(args: argparse.Namespace, settings: Settings, flags: dict[str, Any]) -> int:
    """N processes on one socket, each building the app from the same arguments (seekgate.asgi)."""
    import uvicorn

    from seekgate.telemetry.metrics import MULTIPROC_ENV, clear_multiprocess_dir

    # Set before any worker starts: prometheus_client picks its multiprocess mode at import.
    own_dir = None
    metrics_dir = os.environ.get(MULTIPROC_ENV)
    if not metrics_dir:
        metrics_dir = own_dir = tempfile.mkdtemp(prefix="seekgate-metrics-")
        os.environ[MULTIPROC_ENV] = metrics_dir
    clear_multiprocess_dir(metrics_dir)
    log.info("metrics of the %d workers are summed in %s", args.workers, metrics_dir)
    os.environ[SERVE_ARGS_ENV] = serve_args_env(args.config, args.set, flags)
    try:
        uvicorn.run("seekgate.asgi:app_from_env", factory=True, workers=args.workers, **_uvicorn_options(settings))
    finally:
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)
    return 0
