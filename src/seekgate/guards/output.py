"""Checks on the answer while it streams: placeholders restored, secrets the model wrote
redacted, dangerous shell commands flagged or stopped.

Streaming keeps flowing: each piece is released at once except the shortest tail that cannot be
decided yet, which is the longest of
  - a tail that could still become a placeholder (`[GITHUB_TO`),
  - a tail that could be a secret in progress (the last token, an open private-key block, an
    unfinished `password = ...` line) (secrets.secret_hold),
  - the rest of a line that began a command that may turn dangerous (commands.command_hold).
Ordinary prose is held for one partial word at most.

Tool-call arguments get their own guard per call (placeholders restored JSON-escaped, commands
checked: a Bash tool call is exactly where `rm -rf ~` would run).
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from seekgate import errors
from seekgate.guards.commands import command_hold, find_commands
from seekgate.guards.secrets import find_secrets, has_secret_trigger
from seekgate.guards.types import Action, Finding
from seekgate.guards.vault import StreamRestorer, Vault, apply
from seekgate.settings import GuardProfile

__all__ = ["OutputGuard", "blocked_error"]


def blocked_error(finding: Finding) -> errors.OutputBlocked:
    return errors.OutputBlocked(
        f"the answer was stopped before a dangerous shell command ({finding.type}); "
        "the guard profile of this task blocks such commands",
        code="dangerous_command",
    )


class OutputGuard:
    def __init__(self, profile: GuardProfile, vault: Vault, record: Callable[[Finding], None], *, json_string: bool = False) -> None:
        self._restorer = StreamRestorer(vault, json_string=json_string)
        self._secrets = profile.output_secrets
        self._commands = profile.output_commands
        self._record = record
        self._buf = ""
        self._base = 0
        """Where `_buf` starts in the restored text."""
        self.blocked: Finding | None = None

    def feed(self, piece: str) -> str:
        """The text that can go to the client now. After it, check `blocked`."""
        if self.blocked is not None:
            return ""
        self._buf += self._restorer.feed(piece)
        return self._release(final=False)

    def finish(self) -> str:
        if self.blocked is not None:
            return ""
        self._buf += self._restorer.finish()
        return self._release(final=True)

    def _release(self, final: bool) -> str:
        buf = self._buf
        cut = len(buf)
        if not final and buf:
            holds = (
                has_secret_trigger(buf) if self._secrets != "off" else None,
                command_hold(buf) if self._commands != "off" else None,
            )
            cut = min([cut, *(h for h in holds if h is not None)])
        ready, self._buf = buf[:cut], buf[cut:]
        if not ready:
            return ""
        base, self._base = self._base, self._base + cut
        if self._commands != "off":
            for f in find_commands(ready):
                action = Action.BLOCK if self._commands == "block" else Action.FLAG
                self._record(_with(f, action))
                if action is Action.BLOCK:
                    self.blocked = f
                    ready, self._buf = ready[: f.start], ""
                    break
        if self._secrets != "off" and ready:
            found = [f for f in find_secrets(ready) if not self._restored(base + f.start, base + f.end)]
            action = Action.MASK if self._secrets == "redact" else Action.FLAG
            for f in found:
                self._record(_with(f, action))
            if action is Action.MASK and found:
                ready = apply(ready, [_with(f, action) for f in found], None)
        return ready

    def _restored(self, start: int, end: int) -> bool:
        """Is this span (in restored-text offsets) one of the values the vault gave back?"""
        return any(s < end and start < e for s, e in self._restorer.spans)


def _with(f: Finding, action: Action) -> Finding:
    return msgspec.structs.replace(f, action=action)
