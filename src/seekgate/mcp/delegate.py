"""The scalpel loop: the local model does a chore through tools handed to it per mode
(toolkit.py: intel reads, edit also patches; there is no whole-file write tool).

Every turn asks for exactly one tool call (tool_choice required, no parallel calls). On the
embedded engine, and on servers in grammar or json_schema tool mode, the call is generated under
a grammar built from the tool schemas, so it is valid by construction. Calls from elsewhere (a
native-tools endpoint, a call wrapped in prose) are checked here: a bad one gets a precise error
back as its result, and three in a row end the chore. The loop is bounded by steps and a time
budget, and keeps the prompt inside a small model's window (results and history are capped).

The loop is a plain coroutine: cancelling it stops generation at once (the backends cancel
their work on CancelledError), and an edit in flight is rolled back before the cancel unwinds
(patches.py restores every file first), so no file is ever left half-edited. Edits that
completed earlier in the chore stay: each is whole, and listed in the result had it finished.

The model is reached through a Chat (chat.py): the gateway in-process, or any OpenAI-compatible
server.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec

from seekgate import errors
from seekgate.core.types import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    Message,
    Role,
    Sampling,
    TextPart,
    ToolCall,
    ToolChoice,
)
from seekgate.mcp.chat import Chat
from seekgate.mcp.patches import FileDiff, apply_patch
from seekgate.mcp.toolkit import (
    APPLY_PATCH,
    FINISH,
    FORMATS,
    LIST_FILES,
    MODES,
    READ_FILE,
    SEARCH,
    Format,
    InvalidCall,
    Mode,
    check_arguments,
    system_prompt,
    tools_for,
)
from seekgate.mcp.workspace import Workspace, WorkspaceError

__all__ = ["ChoreResult", "Progress", "run_chore"]

Progress = Callable[[int, str], None]
"""Called after each step with the step number and a one-line note."""
MAX_INVALID_IN_A_ROW = 3
RESULT_CHARS = 6_000
"""A tool result longer than this is cut (with a note saying how to read the rest)."""
HISTORY_CHARS = 10_000
"""Older tool results are elided once the conversation is longer than this: SmolLM2 has 4096 tokens."""
INLINE_CHARS = 4_000
"""Listed files are put in the first message whole while they fit in this; the rest by name."""
LIST_LIMIT = 200
SEARCH_LIMIT = 100
TEMPERATURE = 0.2
REQUIRED = ToolChoice(mode="required")


@dataclass(kw_only=True)
class ChoreResult:
    ok: bool
    answer: str
    changed: list[FileDiff] = field(default_factory=list)
    steps: int = 0
    """Model turns taken."""
    tool_calls: int = 0
    """Valid calls run, finish included."""
    invalid_calls: int = 0
    error: str | None = None
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data, for a tool result or a job's row."""
        return {
            "ok": self.ok,
            "answer": self.answer,
            "changed": [{"path": d.path, "diff": d.diff} for d in self.changed],
            "steps": self.steps,
            "tool_calls": self.tool_calls,
            "invalid_calls": self.invalid_calls,
            "error": self.error,
            "elapsed_s": round(self.elapsed_s, 3),
        }


class _Stop(Exception):
    """The chore ends without success; the message is the result's error."""


def _is_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _clip(text: str, limit: int, hint: str = "") -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... cut: {len(text) - limit} more characters{'; ' + hint if hint else ''}]"


def _message(role: Role, text: str, **kwargs: Any) -> Message:
    return Message(role=role, content=(TextPart(text),), **kwargs)


async def run_chore(
    chat: Chat,
    ws: Workspace,
    task: str,
    *,
    mode: Mode,
    paths: Sequence[str] = (),
    context: str | None = None,
    fmt: Format = "text",
    max_steps: int = 12,
    max_tokens: int = 512,
    deadline_s: float = 300.0,
    verify: str | None = None,
    progress: Progress | None = None,
    result_chars: int = RESULT_CHARS,
    history_chars: int = HISTORY_CHARS,
) -> ChoreResult:
    """Run one chore to its end: finish, the step limit, the time budget, three invalid calls
    in a row, or a model call that fails. Never returns half an edit; raises only on bad
    arguments (InvalidRequest) and on cancellation."""
    if mode not in MODES:
        raise errors.InvalidRequest(f"unknown mode {mode!r}; allowed: {', '.join(MODES)}", param="mode")
    if fmt not in FORMATS:
        raise errors.InvalidRequest(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}", param="format")
    if mode == "edit" and not ws.writable:
        raise errors.InvalidRequest("edit mode needs a writable workspace; this one is read-only", param="mode")
    if max_steps < 1 or max_tokens < 1 or deadline_s <= 0:
        raise errors.InvalidRequest("max_steps, max_tokens and deadline_s must be positive", param="max_steps")
    chore = _Chore(chat, ws, mode, fmt, max_steps, max_tokens, deadline_s, verify, progress, result_chars, history_chars)
    return await chore.run(task, paths, context)


class _Chore:
    def __init__(
        self,
        chat: Chat,
        ws: Workspace,
        mode: Mode,
        fmt: Format,
        max_steps: int,
        max_tokens: int,
        deadline_s: float,
        verify: str | None,
        progress: Progress | None,
        result_chars: int,
        history_chars: int,
    ) -> None:
        self.chat, self.ws, self.mode, self.fmt = chat, ws, mode, fmt
        self.max_steps, self.max_tokens, self.deadline_s = max_steps, max_tokens, deadline_s
        self.verify, self.progress = verify, progress
        self.result_chars, self.history_chars = result_chars, history_chars
        self.tools = tools_for(mode)
        self.by_name = {t.name: t for t in self.tools}
        self.started = time.monotonic()
        self.messages: list[Message] = []
        self.changed: list[FileDiff] = []
        self.steps = self.tool_calls = self.invalid_calls = self.invalid_streak = 0
        self.trail: list[str] = []
        self.last_result = ""
        self.last_call: tuple[str, str] | None = None
        self.warned_unchanged = False

    async def run(self, task: str, paths: Sequence[str], context: str | None) -> ChoreResult:
        try:
            self.messages = [
                _message(Role.SYSTEM, system_prompt(self.mode, self.fmt)),
                await self._first_message(task, paths, context),
            ]
            for step in range(1, self.max_steps + 1):
                self.steps = step
                done = await self._step(await self._ask())
                if done is not None:
                    return done
            raise _Stop(f"step limit: {self.max_steps} model turns ran out before the model called finish")
        except _Stop as stop:
            return self._result(False, self._learned(), str(stop))

    def _result(self, ok: bool, answer: str, error: str | None = None) -> ChoreResult:
        return ChoreResult(
            ok=ok, answer=answer, changed=list(self.changed), steps=self.steps, tool_calls=self.tool_calls,
            invalid_calls=self.invalid_calls, error=error, elapsed_s=time.monotonic() - self.started,
        )  # fmt: skip

    def _remaining(self) -> float:
        left = self.started + self.deadline_s - time.monotonic()
        if left <= 0:
            raise _Stop(self._out_of_time())
        return left

    def _out_of_time(self) -> str:
        return f"time budget: {self.deadline_s:g}s ran out at step {self.steps} before the model called finish"

    def _learned(self) -> str:
        """What a chore that stopped early found out, for the caller to use."""
        if not self.trail:
            return ""
        lines = [
            "The chore stopped before it finished. What was done:",
            *(f"{i}. {note}" for i, note in enumerate(self.trail, 1)),
        ]
        if self.last_result:
            lines += ["", "Last tool result:", _clip(self.last_result, 1_500)]
        return "\n".join(lines)

    def _note(self, note: str) -> None:
        self.trail.append(note)
        if self.progress is not None:
            self.progress(self.steps, note)

    async def _first_message(self, task: str, paths: Sequence[str], context: str | None) -> Message:
        parts = [f"Task: {task.strip()}"]
        if context:
            parts.append("Context:\n" + _clip(context.strip(), INLINE_CHARS))
        if paths:
            room = INLINE_CHARS
            listed = ["Files:"]
            for path in paths:
                try:
                    text = await asyncio.to_thread(self.ws.read, path)
                except WorkspaceError as exc:
                    listed.append(f"- {path}: cannot be read: {exc}")
                    continue
                if len(text) <= room:
                    room -= len(text)
                    listed.append(f"--- {path} ---\n{text}")
                else:
                    listed.append(f"- {path} ({len(text)} characters; read it with read_file)")
            parts.append("\n".join(listed))
        return _message(Role.USER, "\n\n".join(parts))

    async def _ask(self) -> ChatResponse:
        request = ChatRequest(
            model="auto", messages=tuple(self._fitted()), sampling=Sampling(max_tokens=self.max_tokens, temperature=TEMPERATURE),
            tools=self.tools, tool_choice=REQUIRED, parallel_tool_calls=False,
        )  # fmt: skip
        try:
            async with asyncio.timeout(self._remaining()):
                return await self.chat(request)
        except TimeoutError:
            raise _Stop(self._out_of_time()) from None
        except errors.SeekgateError as exc:
            raise _Stop(f"the model call at step {self.steps} failed: {exc.message}") from None

    def _fitted(self) -> list[Message]:
        """The conversation within history_chars: the oldest tool results are elided first; the
        instructions, the task and the latest result always stay."""
        out = list(self.messages)
        total = sum(len(m.text) + sum(len(c.arguments) for c in m.tool_calls) for m in out)
        for i in range(2, len(out) - 1):
            if total <= self.history_chars:
                break
            m = out[i]
            if m.role in (Role.TOOL, Role.USER) and len(m.text) > 200:
                total -= len(m.text)
                out[i] = msgspec.structs.replace(
                    m, content=(TextPart("[earlier result elided to save room; call the tool again if needed]"),)
                )
        return out

    async def _step(self, response: ChatResponse) -> ChoreResult | None:
        try:
            call, args = self._pick(response)
        except InvalidCall as exc:
            self._refuse(response, str(exc))
            return None
        self.invalid_streak = 0
        self.tool_calls += 1
        echo = Message(role=Role.ASSISTANT, tool_calls=(call,))
        if call.name == FINISH.name:
            if self.mode == "edit" and not self.changed:
                if self.warned_unchanged:
                    self._note("finish without a change")
                    return self._result(
                        False, args["answer"], "no file changed: the model finished without a successful apply_patch"
                    )
                self.warned_unchanged = True
                text = "Error: no file changed yet. This is an edit chore: make the change with apply_patch, then call finish."
                self.messages += [echo, _message(Role.TOOL, text, tool_call_id=call.id)]
                self._note("finish refused: no file changed yet")
                return None
            self._note("finish")
            return self._result(True, args["answer"])
        result, note = await self._run_tool(call.name, args)
        if self.last_call == (call.name, call.arguments):
            result = "Note: you made this same call just before; use its result, try something else, or call finish.\n" + result
        self.last_call = (call.name, call.arguments)
        self.last_result = result
        self.messages += [
            echo,
            _message(Role.TOOL, _clip(result, self.result_chars, _CUT_HINT.get(call.name, "")), tool_call_id=call.id),
        ]
        self._note(note)
        return None

    def _pick(self, response: ChatResponse) -> tuple[ToolCall, dict[str, Any]]:
        if not response.tool_calls:
            if response.finish_reason is FinishReason.LENGTH:
                raise InvalidCall(
                    f"the answer was cut at max_tokens ({self.max_tokens}) before a tool call was complete; make the call shorter"
                )
            raise InvalidCall('you answered in prose; every turn must be exactly one tool call, {"name": TOOL, "arguments": {...}}')
        call = response.tool_calls[0]  # parallel calls are off; a server that sends more gets its first run
        spec = self.by_name.get(call.name)
        if spec is None:
            why = " (this chore is read-only)" if call.name == APPLY_PATCH.name else ""
            raise InvalidCall(f"unknown tool {call.name!r}{why}; the tools are: {', '.join(self.by_name)}")
        args = check_arguments(spec, call.arguments)
        if call.name == FINISH.name and self.fmt == "json":
            try:
                json.loads(args["answer"])
            except ValueError as exc:
                raise InvalidCall(f"finish: the answer must be JSON text (format json): {exc}") from None
        return call, args

    def _refuse(self, response: ChatResponse, problem: str) -> None:
        self.invalid_calls += 1
        self.invalid_streak += 1
        text = f"Error: {problem}"
        if response.tool_calls:
            call = response.tool_calls[0]
            if not _is_object(call.arguments):  # servers that parse the history's calls would refuse it
                call = msgspec.structs.replace(call, arguments="{}")
            self.messages += [Message(role=Role.ASSISTANT, tool_calls=(call,)), _message(Role.TOOL, text, tool_call_id=call.id)]
        else:
            if response.text.strip():
                self.messages.append(_message(Role.ASSISTANT, _clip(response.text, 1_000)))
            self.messages.append(_message(Role.USER, text))
        self._note(f"invalid call: {_clip(problem, 160)}")
        if self.invalid_streak >= MAX_INVALID_IN_A_ROW:
            raise _Stop(f"the model made {MAX_INVALID_IN_A_ROW} invalid tool calls in a row; the last: {problem}")

    async def _run_tool(self, name: str, args: dict[str, Any]) -> tuple[str, str]:
        """The tool's result for the model, and a note for progress."""
        if name == APPLY_PATCH.name:
            return await self._patch(args["patch"])
        try:
            async with asyncio.timeout(self._remaining()):
                return await asyncio.to_thread(_READERS[name], self.ws, args)
        except TimeoutError:
            raise _Stop(self._out_of_time()) from None
        except WorkspaceError as exc:
            return f"Error: {exc}", f"{name} failed: {exc}"

    async def _patch(self, patch: str) -> tuple[str, str]:
        # Awaited directly, not shielded: cancelled, apply_patch restores every file before it
        # unwinds (a verify command is killed), so a cancel is quick and leaves no half-applied edit.
        timeout = min(120.0, max(5.0, self._remaining()))
        result = await apply_patch(self.ws, patch, verify=self.verify, timeout_s=timeout)
        if not result.ok:
            return (
                f"Error: the patch was not applied, nothing changed: {result.error}",
                f"apply_patch failed: {_clip(result.error or '', 160)}",
            )
        self.changed.extend(result.changed)
        names = ", ".join(d.path for d in result.changed)
        return f"Applied. Changed: {names}\n\n" + "\n".join(d.diff for d in result.changed), f"apply_patch changed {names}"


def _read_file(ws: Workspace, args: dict[str, Any]) -> tuple[str, str]:
    path, start, end = args["path"], args.get("start_line"), args.get("end_line")
    text = ws.read(path, start, end)
    where = f"{path} lines {start or 1}-{end or 'end'}" if start or end else path
    return f"{where}:\n{text}", f"read_file {where}"


def _list_files(ws: Workspace, args: dict[str, Any]) -> tuple[str, str]:
    path, pattern = args.get("path") or ".", args.get("pattern")
    found = ws.list(path, pattern, limit=LIST_LIMIT)
    more = f"\n[first {LIST_LIMIT} shown; narrow with path or pattern]" if len(found) >= LIST_LIMIT else ""
    return ("\n".join(found) or "(no files)") + more, f"list_files {path}{' ' + pattern if pattern else ''}: {len(found)} entries"


def _search(ws: Workspace, args: dict[str, Any]) -> tuple[str, str]:
    regex, path, glob = args["regex"], args.get("path") or ".", args.get("glob")
    found = ws.search(regex, path, glob, limit=SEARCH_LIMIT)
    more = f"\n[first {SEARCH_LIMIT} shown; narrow with path or glob]" if len(found) >= SEARCH_LIMIT else ""
    lines = "\n".join(f"{m.path}:{m.line}: {m.text}" for m in found)
    return (lines or "(no matches)") + more, f"search {regex!r}: {len(found)} matches"


_READERS: dict[str, Callable[[Workspace, dict[str, Any]], tuple[str, str]]] = {
    READ_FILE.name: _read_file,
    LIST_FILES.name: _list_files,
    SEARCH.name: _search,
}
_CUT_HINT = {
    READ_FILE.name: "read a narrower range with start_line and end_line",
    SEARCH.name: "narrow the search with path or glob",
}
