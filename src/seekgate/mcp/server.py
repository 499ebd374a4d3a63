"""The scalpel MCP server: three tools over the official `mcp` SDK's low-level server.

    scalpel(task, mode, paths?, context?, format?, background?)   a chore, or a job id at once
    scalpel_status(job_id)                                        a job's state, progress, result
    scalpel_cancel(job_id)                                        stop a job within a second

One `Scalpel` holds what the tools do, apart from any transport: the workspace root, how model
turns are made (`Chat`), the limits from `[scalpel]`, and the background jobs. `build_server`
wraps it in an MCP server; `serve_stdio` runs that on stdin/stdout (`seekgate mcp`), and
`McpHttp` is the streamable-HTTP endpoint the gateway mounts at /mcp.

Results are JSON text, also sent as structured content: a chore's result (ok, answer, changed
files with their diffs, steps, tool_calls, invalid_calls, error, elapsed_s), or a job's status.
A chore that ran and failed is a result with ok false. A call that is refused before anything
runs (bad arguments, a path outside the workspace, an unknown job) is an MCP tool error
(isError) whose text says why; the server keeps serving either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import mcp_types as types
import msgspec
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from seekgate import __version__, errors
from seekgate.api.http import api_key
from seekgate.core.service import Gateway
from seekgate.guards.stage import Caller
from seekgate.mcp.chat import Chat, EndpointChat, endpoint_chat, gateway_chat
from seekgate.mcp.delegate import ChoreResult, Progress, run_chore
from seekgate.mcp.jobs import Jobs
from seekgate.mcp.toolkit import FORMATS, MODES
from seekgate.mcp.workspace import Workspace
from seekgate.settings import ConfigError, ScalpelSettings, Settings, resolve_secret
from seekgate.telemetry.record import Telemetry

__all__ = ["McpHttp", "Scalpel", "ToolRefused", "build_server", "make_scalpel", "serve_stdio"]

log = logging.getLogger("seekgate.mcp")

NAME = "seekgate-scalpel"
INSTRUCTIONS = (
    "scalpel hands code chores to a local model working inside one project folder: summaries, "
    "look-ups and extractions (mode intel, read-only) and small edits (mode edit, applied as "
    "atomic patches, verified, rolled back on failure). Give a precise task and the paths that matter."
)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class ToolRefused(errors.InvalidRequest):
    """A tool call refused before anything ran; its message is the tool error's text."""


class _ChoreArgs(msgspec.Struct, forbid_unknown_fields=True):
    task: str
    mode: str
    paths: list[str] = []
    context: str | None = None
    format: str = "text"
    background: bool = False


class _JobArgs(msgspec.Struct, forbid_unknown_fields=True):
    job_id: str


class Scalpel:
    """The tools' behaviour. `chat_for(api_key)` gives the model turns for a caller's key."""

    def __init__(
        self,
        config: ScalpelSettings,
        root: Path,
        jobs_path: Path,
        chat_for: Callable[[str | None], Chat],
        *,
        default_key: str | None = None,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.config = config
        self.root = root
        self.default_key = default_key
        """The key stdio chores run under (scalpel.api_key); HTTP callers bring their own."""
        self._jobs_path = jobs_path
        self._chat_for = chat_for
        self._on_close = on_close
        self._jobs: Jobs | None = None

    def start(self) -> None:
        """Open the jobs store; jobs a previous run left unfinished are marked aborted."""
        self._jobs = Jobs(self._jobs_path, max_running=self.config.max_jobs)

    async def aclose(self) -> None:
        """Stop every running job (recorded as aborted) and close the model connection."""
        if self._jobs is not None:
            await self._jobs.aclose()
            self._jobs = None
        if self._on_close is not None:
            await self._on_close()

    @property
    def jobs(self) -> Jobs:
        if self._jobs is None:
            raise errors.Overloaded("scalpel is not running: the server is starting or shutting down")
        return self._jobs

    async def scalpel(
        self, arguments: dict[str, Any], *, api_key: str | None, progress: Progress | None = None
    ) -> dict[str, Any]:
        args = _convert(arguments, _ChoreArgs, "scalpel")
        if not args.task.strip():
            raise ToolRefused("scalpel: task is empty; say what the chore is", param="task")
        if args.mode not in MODES:
            raise ToolRefused(f"scalpel: unknown mode {args.mode!r}; allowed: {', '.join(MODES)}", param="mode")
        if args.format not in FORMATS:
            raise ToolRefused(f"scalpel: unknown format {args.format!r}; allowed: {', '.join(FORMATS)}", param="format")
        if self.root == Path(self.root.anchor):  # a server started in / (a service manager's default)
            raise ToolRefused(
                f"the workspace is the filesystem root {self.root}: set scalpel.workspace (or SEEKGATE_SCALPEL_WORKSPACE) "
                "to the project folder, or start the server in it"
            )
        ws = Workspace(self.root, writable=args.mode == "edit")
        paths = [ws.relative(path) for path in args.paths]  # refuses `..`, symlink and absolute escapes
        chat = self._chat_for(api_key)
        config = self.config

        async def work(progress: Progress | None) -> ChoreResult:
            return await run_chore(
                chat, ws, args.task, mode=args.mode, paths=paths, context=args.context, fmt=args.format,  # type: ignore[arg-type]
                max_steps=config.max_steps, max_tokens=config.max_tokens, deadline_s=config.timeout_ms / 1000,
                verify=config.verify or None, progress=progress,
            )  # fmt: skip

        if args.background:
            params = {"task": args.task, "mode": args.mode, "paths": paths, "context": args.context, "format": args.format}
            job_id = await self.jobs.start(params, work)
            status = await self.jobs.status(job_id)
            return {"job_id": job_id, "state": status["state"]}
        result = await work(progress)
        return result.to_dict()

    async def status(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return await self.jobs.status(_convert(arguments, _JobArgs, "scalpel_status").job_id)

    async def cancel(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return await self.jobs.cancel(_convert(arguments, _JobArgs, "scalpel_cancel").job_id)


_T = TypeVar("_T")


def _convert(arguments: dict[str, Any], kind: type[_T], tool: str) -> _T:
    try:
        return msgspec.convert(arguments, kind)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).rpartition(" - at `$.")
        if not message:
            message, where = str(exc), ""
        field = where.rstrip("`")
        if message.startswith("Object contains unknown field"):
            field = message.split("`")[1]
            message = f"no such argument; the arguments are: {', '.join(kind.__struct_fields__)}"  # type: ignore[attr-defined]
        elif message.startswith("Object missing required field"):
            field = message.split("`")[1]
            message = "required"
        raise ToolRefused(f"{tool}: {field + ': ' if field else ''}{message}", param=field or None) from None


def make_scalpel(settings: Settings, gateway: Gateway | None = None, telemetry: Telemetry | None = None) -> Scalpel:
    """The tools for these settings: model turns go to scalpel.endpoint when it is set, else
    through `gateway` in-process (its task profile, guards, routing, pins and metrics)."""
    config = settings.scalpel
    root = _workspace_root(config)
    jobs_path = settings.server.data_path / "seekgate.db"
    default_key = resolve_secret(config.api_key)
    if config.endpoint:
        endpoint: EndpointChat = endpoint_chat(
            config.endpoint, config.model, timeout_s=config.timeout_ms / 1000, tool_mode=config.endpoint_tool_mode
        )
        return Scalpel(config, root, jobs_path, lambda key: endpoint, default_key=default_key, on_close=endpoint.aclose)
    if gateway is None:
        raise ValueError("make_scalpel needs the gateway when scalpel.endpoint is not set")

    def chat_for(key: str | None) -> Chat:
        return gateway_chat(gateway, task=config.task, model=config.model, api_key=key, telemetry=telemetry)

    return Scalpel(config, root, jobs_path, chat_for, default_key=default_key)


def _workspace_root(config: ScalpelSettings) -> Path:
    root = Path(config.workspace or os.getcwd()).expanduser().resolve()
    if not root.is_dir():
        raise ConfigError(
            f"scalpel.workspace (or SEEKGATE_SCALPEL_WORKSPACE): {config.workspace!r} is not a folder; "
            "give the project folder every scalpel path resolves inside"
        )
    return root


# -- the MCP server --------------------------------------------------------------------------


def _tools(scalpel: Scalpel) -> list[types.Tool]:
    verify = f" After each edit `{scalpel.config.verify}` must pass, or the edit is rolled back." if scalpel.config.verify else ""
    return [
        types.Tool(
            name="scalpel",
            description=(
                "Delegate a code chore to the local model, working in the project at "
                f"{scalpel.root}. mode intel: read-only (read, list, search files), for summaries, "
                "look-ups and extractions. mode edit: may also change files, only through patches "
                f"applied all-or-nothing.{verify} Paths are relative to the project; nothing outside it "
                "is reachable. Returns JSON: ok, answer, changed (path, diff), steps, tool_calls, "
                "invalid_calls, error, elapsed_s. background: true returns a job_id at once."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "task": {"type": "string", "description": "What to do, precisely: the question, or the change."},
                    "mode": {"type": "string", "enum": list(MODES), "description": "intel: read-only; edit: may change files."},
                    "paths": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Files that matter, relative to the project; they are shown to the model up front.",
                    },
                    "context": {"type": "string", "description": "Anything else the model should know."},
                    "format": {"type": "string", "enum": list(FORMATS), "default": "text", "description": "The answer's format."},
                    "background": {"type": "boolean", "default": False, "description": "Return a job_id at once."},
                },
                "required": ["task", "mode"],
                "additionalProperties": False,
            },
            annotations=types.ToolAnnotations(title="Delegate a code chore", destructive_hint=False, open_world_hint=False),
        ),
        _job_tool(
            "scalpel_status",
            "The state of a background scalpel job (queued, running, done, failed, cancelled, aborted), its progress and, once it ended, its result.",
            types.ToolAnnotations(title="Scalpel job status", read_only_hint=True, open_world_hint=False),
        ),
        _job_tool(
            "scalpel_cancel",
            "Stop a background scalpel job within a second; an edit in flight is rolled back, never left half-applied.",
            types.ToolAnnotations(title="Cancel a scalpel job", destructive_hint=False, open_world_hint=False),
        ),
    ]


def _job_tool(name: str, description: str, annotations: types.ToolAnnotations) -> types.Tool:
    """A tool that takes only the id of a background job."""
    job_id = {"type": "string", "description": "The job id scalpel returned for a background chore."}
    schema = {"type": "object", "properties": {"job_id": job_id}, "required": ["job_id"], "additionalProperties": False}
    return types.Tool(name=name, description=description, input_schema=schema, annotations=annotations)


def build_server(scalpel: Scalpel) -> Server[Any]:
    """An MCP server offering the three tools. Over HTTP each chore runs under the caller's
    API key (Authorization: Bearer, or x-api-key); over stdio under scalpel.api_key."""
    tools = _tools(scalpel)

    async def list_tools(ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        arguments = dict(params.arguments or {})
        try:
            if params.name == "scalpel":
                key = api_key(ctx.request) if isinstance(ctx.request, Request) else scalpel.default_key
                async with _progress_reports(ctx, scalpel.config.max_steps) as progress:
                    result = await scalpel.scalpel(arguments, api_key=key, progress=progress)
            elif params.name == "scalpel_status":
                result = await scalpel.status(arguments)
            elif params.name == "scalpel_cancel":
                result = await scalpel.cancel(arguments)
            else:
                raise ToolRefused(f"unknown tool {params.name!r}; the tools are: {', '.join(t.name for t in tools)}")
        except errors.SeekgateError as exc:
            log.info("scalpel tool %s refused: %s", params.name, exc.message)
            return types.CallToolResult(content=[types.TextContent(text=exc.message)], is_error=True)
        text = json.dumps(result, indent=2, ensure_ascii=False)
        return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=result)

    return Server(NAME, version=__version__, instructions=INSTRUCTIONS, on_list_tools=list_tools, on_call_tool=call_tool)


@contextlib.asynccontextmanager
async def _progress_reports(ctx: ServerRequestContext[Any], total: int) -> AsyncIterator[Progress]:
    """A Progress callback that sends MCP progress notifications (a no-op unless the caller
    asked for them); every report is sent before the result is."""
    sent: set[asyncio.Task[None]] = set()

    def progress(step: int, note: str) -> None:
        task = asyncio.ensure_future(ctx.session.report_progress(step, total, note))
        sent.add(task)
        task.add_done_callback(sent.discard)

    try:
        yield progress
    finally:
        for outcome in await asyncio.gather(*sent, return_exceptions=True):
            if isinstance(outcome, Exception):  # best effort: a lost progress note is no failure
                log.debug("scalpel progress not sent: %s", outcome)


async def serve_stdio(server: Server[Any], around: contextlib.AbstractAsyncContextManager[Any] | None = None) -> None:
    """Serve `server` on stdin/stdout until the client closes stdin. The SDK points fd 1 at stderr
    while it serves, so a stray print (or a native library's output) cannot corrupt the protocol;
    `around` (the gateway's lifespan) is entered once that holds, and left before the streams close."""
    async with stdio_server() as (read_stream, write_stream), around or contextlib.nullcontext():
        await server.run(read_stream, write_stream, server.create_initialization_options())


class McpHttp:
    """The streamable-HTTP endpoint, stateless (any worker process can answer any request): an
    ASGI app for a route, with `running()` in the app's lifespan. A caller whose key the guards
    refuse gets 401 before any MCP processing."""

    def __init__(
        self,
        scalpel: Scalpel,
        *,
        host: str,
        authenticate: Callable[[str | None], Awaitable[Caller]],
        max_body_bytes: int,
    ) -> None:
        self._security = None
        if host in LOOPBACK:  # a web page must not reach a loopback server through DNS rebinding
            self._security = TransportSecuritySettings(
                allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
                allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
            )
        self._server = build_server(scalpel)
        self._authenticate = authenticate
        self._max_body_bytes = max_body_bytes
        self._manager: StreamableHTTPSessionManager | None = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        # A session manager runs once; a fresh one per lifespan lets an app start again.
        manager = StreamableHTTPSessionManager(
            app=self._server, stateless=True, security_settings=self._security, max_request_body_size=self._max_body_bytes
        )
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            if self._manager is None:
                raise errors.Overloaded("the MCP endpoint is not running: the server is starting or shutting down")
            await self._authenticate(api_key(Request(scope)))
        except errors.SeekgateError as exc:
            body = {"error": {"message": exc.message, "type": exc.kind, "code": exc.code}}
            await JSONResponse(body, status_code=exc.status, headers=exc.headers)(scope, receive, send)
            return
        await self._manager.handle_request(scope, receive, send)
