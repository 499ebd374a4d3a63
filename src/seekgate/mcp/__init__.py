"""scalpel: an MCP tool through which a primary agent (Claude Code, any MCP client) delegates
code chores to the local model, safely.

    server.py     the MCP server (official `mcp` SDK): tools scalpel, scalpel_status,
                  scalpel_cancel; stdio (`seekgate mcp`) and streamable HTTP (the gateway, /mcp)
    delegate.py   the loop: the local model works through tools handed to it per mode, with
                  tool calls made valid by constrained decoding, bounded steps and a time budget
    toolkit.py    the tools per mode, the system prompt, and the check of a call's arguments
    chat.py       how a chore reaches a model: the gateway in-process, or an OpenAI-compatible URL
    workspace.py  every path inside one root; read-only enforced here, not in a prompt
    patches.py    edits are unified diffs or search/replace blocks, applied atomically, verified,
                  rolled back on failure; an edit that changes nothing is a failure
    jobs.py       background jobs: a job id at once, progress, cancel within a second, and
                  unfinished jobs whose process is gone are reported as aborted

Contracts between the modules (keep them; add to them if needed):

    workspace.Workspace(root: Path, *, writable: bool)
        .root, .writable
        .resolve(path: str) -> Path                 # WorkspaceError on escape (.., symlink, absolute outside)
        .read(path, start_line=None, end_line=None) -> str
        .list(path=".", pattern=None, limit=500) -> list[str]           # root-relative, sorted
        .search(regex, path=".", glob=None, limit=200) -> list[Match]   # Match(path, line, text)
        .write_all(contents: dict[str, str]) -> None   # atomic per file; WorkspaceError when read-only
    workspace.WorkspaceError(Exception)              # its message is shown to the model / caller

    patches.apply_patch(ws, patch: str, *, verify: str | None = None, timeout_s: float = 120) -> EditResult
        EditResult(ok: bool, changed: list[FileDiff], error: str | None)   FileDiff(path, diff)
        # parses unified diffs or search/replace blocks; all-or-nothing; parse check for the
        # languages the context chunker knows; `verify` is a shell command run in the root;
        # any failure restores every file; no change at all -> ok=False

    chat.Chat = Callable[[ChatRequest], Awaitable[ChatResponse]]   (core types)
    delegate.run_chore(chat, ws, task, *, mode, paths=(), context=None, fmt="text",
                       max_steps, max_tokens, deadline_s, verify=None, progress=None) -> ChoreResult
        ChoreResult(ok, answer, changed: list[FileDiff], steps, tool_calls, invalid_calls, error, elapsed_s)

    jobs.Jobs(store_path: Path)  .start(params: dict, work: Callable[[Progress], Awaitable[ChoreResult]]) -> job_id
                                 .status(job_id) -> dict   .cancel(job_id) -> dict   .aclose()
"""
