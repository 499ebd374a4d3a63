"""Streams tool calls out of constrained text as it is generated: the call's name as soon as it
is complete, then its arguments piece by piece, never waiting for the whole answer.

The grammar fixes the shape, `{"name": "N", "arguments": {...}}` (optionally several in a JSON
array), so a small scanner that tracks strings and nesting depth is enough."""

from __future__ import annotations

import re

from seekgate.core.types import ToolCallDelta
from seekgate.tools.emulate import new_call_id

__all__ = ["ToolCallStream"]

_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:\s*')


class ToolCallStream:
    """Feed text; get prose (when the answer is not a call) or tool-call deltas."""

    def __init__(self) -> None:
        self.mode: str | None = None  # None until the first non-space character: "prose" or "calls"
        self._buffer = ""
        self._index = -1
        self._in_args = False
        self._depth = 0
        self._in_string = False
        self._escape = False

    def feed(self, text: str) -> tuple[str, list[ToolCallDelta]]:
        if self.mode is None:
            self._buffer += text
            head = self._buffer.lstrip()
            if not head:
                return "", []
            self.mode = "calls" if head[0] in "{[" else "prose"
            text, self._buffer = self._buffer, ""
            if self.mode == "prose":
                return text, []
        if self.mode == "prose":
            return text, []
        return "", self._calls(text)

    def _calls(self, text: str) -> list[ToolCallDelta]:
        deltas: list[ToolCallDelta] = []
        for ch in text:
            if not self._in_args:
                self._buffer += ch
                match = _HEAD.search(self._buffer)
                if match:
                    self._index += 1
                    deltas.append(ToolCallDelta(index=self._index, id=new_call_id(), name=match.group(1)))
                    self._buffer = ""
                    self._in_args, self._depth, self._in_string, self._escape = True, 0, False, False
                continue
            done = self._scan(ch)
            if deltas and deltas[-1].index == self._index and deltas[-1].id is None:
                deltas[-1] = ToolCallDelta(index=self._index, arguments=deltas[-1].arguments + ch)
            else:
                deltas.append(ToolCallDelta(index=self._index, arguments=ch))
            if done:
                self._in_args = False
        return deltas

    def _scan(self, ch: str) -> bool:
        """Advance over one character of the arguments value; True when it just ended."""
        if self._in_string:
            if self._escape:
                self._escape = False
            elif ch == "\\":
                self._escape = True
            elif ch == '"':
                self._in_string = False
            return False
        if ch == '"':
            self._in_string = True
        elif ch in "{[":
            self._depth += 1
        elif ch in "}]":
            self._depth -= 1
            return self._depth == 0
        return False
