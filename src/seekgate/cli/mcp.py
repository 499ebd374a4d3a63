"""`seekgate mcp`: the scalpel MCP server over stdio, for Claude Code and other MCP clients.

The client starts this command and speaks MCP on its stdin and stdout, so nothing else may
write there: logs go to stderr, and while the server runs the SDK points fd 1 at stderr too.
Model turns run through a gateway built in this process (create_app's object graph, its
lifespan run here), or, with scalpel.endpoint (SURR_SCALPEL_ENDPOINT), against that server,
with no gateway and no model loaded here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from seekgate.asgi import prepare_process
from seekgate.cli.common import settings_from_args
from seekgate.settings import ConfigError, Settings

if TYPE_CHECKING:
    from seekgate.mcp.server import Scalpel

__all__ = ["add_parser", "run"]

log = logging.getLogger("seekgate.mcp")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("mcp", help="serve the scalpel MCP tool over stdio (claude mcp add scalpel -- seekgate mcp)")
    p.add_argument("--workspace", metavar="DIR", help="the project folder chores work in (scalpel.workspace; default: here)")
    p.add_argument("--endpoint", metavar="URL", help="an OpenAI-compatible chat-completions URL to use (scalpel.endpoint)")
    p.add_argument("--model", help="a model alias, or the endpoint's model name (scalpel.model)")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="server.log_level (logs go to stderr)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    flags = {
        "scalpel.workspace": args.workspace,
        "scalpel.endpoint": args.endpoint,
        "scalpel.model": args.model,
        "server.log_level": args.log_level,
    }
    settings = settings_from_args(args, {k: v for k, v in flags.items() if v is not None})
    if not settings.scalpel.enabled:
        raise ConfigError("scalpel is disabled (scalpel.enabled = false, or SURR_SCALPEL_ENABLED=false); enable it to serve it")
    prepare_process(settings)  # its handler writes to stderr
    asyncio.run(serve(settings))
    return 0


async def serve(settings: Settings) -> None:
    from seekgate.mcp.server import build_server, make_scalpel, serve_stdio

    if settings.scalpel.endpoint:
        scalpel = make_scalpel(settings)
        log.info("scalpel over stdio: workspace %s, model turns at %s", scalpel.root, settings.scalpel.endpoint)
        await serve_stdio(build_server(scalpel), _running(scalpel))
        return
    from seekgate.app import create_local_app

    app = create_local_app(settings)
    scalpel = app.state.scalpel
    log.info("scalpel over stdio: workspace %s, model turns through the gateway in-process", scalpel.root)
    await serve_stdio(build_server(scalpel), app.router.lifespan_context(app))


@contextlib.asynccontextmanager
async def _running(scalpel: Scalpel) -> AsyncIterator[None]:
    scalpel.start()
    try:
        yield
    finally:
        await scalpel.aclose()
