"""Streams tool calls out of constrained text as it is generated: the call's name as soon as it
is complete, then its arguments piece by piece, never waiting for the whole answer.

The grammar fixes the shape, `{"name": "N", "arguments": {...}}` (optionally several in a JSON
array), so a small scanner that tracks strings and nesting depth is enough. Prose that a JSON
schema wrapped in `{"content": "..."}` (see `emulate.ENVELOPE`) is unwrapped and unescaped as it
arrives, so the client sees plain text deltas."""

from __future__ import annotations

import re

from seekgate.core.types import ToolCallDelta
from seekgate.tools.emulate import new_call_id

__all__ = ["ToolCallStream"]

_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:\s*')
_ENVELOPE = re.compile(r'^\s*\{\s*"content"\s*:\s*"')
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "\\": "\\", "/": "/"}


class ToolCallStream:
    """Feed text; get prose (when the answer is not a call) or tool-call deltas."""

    def __init__(self) -> None:
        self.mode: str | None = None
        """None until the answer shows what it is: "prose", "calls", or "envelope" (wrapped prose)."""
        self._unescape = _JsonString()
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
        if self.mode == "envelope":
            return self._unescape.feed(text), []
        return self._calls(text)

    def _calls(self, text: str) -> tuple[str, list[ToolCallDelta]]:
        deltas: list[ToolCallDelta] = []
        for at, ch in enumerate(text):
            if not self._in_args:
                self._buffer += ch
                if self._index < 0 and _ENVELOPE.match(self._buffer):
                    self.mode, self._buffer = "envelope", ""  # prose in a JSON string, not a call
                    return self._unescape.feed(text[at + 1 :]), deltas
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
        return "", deltas

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


class _JsonString:
    """Decodes the inside of a JSON string as it arrives, up to its closing quote."""

    def __init__(self) -> None:
        self._escape = False
        self._hex: str | None = None
        self._high: int | None = None
        self.done = False

    def feed(self, text: str) -> str:
        out: list[str] = []
        for ch in text:
            if self.done:
                break
            if self._hex is not None:
                self._hex += ch
                if len(self._hex) == 4:
                    out.append(self._codepoint(int(self._hex, 16)))
                    self._hex = None
            elif self._escape:
                self._escape = False
                if ch == "u":
                    self._hex = ""
                else:
                    out.append(_ESCAPES.get(ch, ch))
            elif ch == "\\":
                self._escape = True
            elif ch == '"':
                self.done = True
            else:
                out.append(ch)
        return "".join(out)

    def _codepoint(self, code: int) -> str:
        if 0xD800 <= code < 0xDC00:  # the first half of a surrogate pair: wait for the second
            self._high = code
            return ""
        if 0xDC00 <= code < 0xE000 and self._high is not None:
            code, self._high = 0x10000 + ((self._high - 0xD800) << 10) + (code - 0xDC00), None
        return chr(code)
