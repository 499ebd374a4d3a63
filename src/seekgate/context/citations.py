"""Citation checking: every `path:line` or `path:start-end` in an answer, checked against the
indexed snapshot the context came from. A made-up file or a line past the end is flagged."""

from __future__ import annotations

import re
from collections.abc import Callable

import msgspec

__all__ = ["Citation", "check_citations", "find_citations"]

# A file name with an extension (a letter first: not a version number), then :N or :N-M (also
# GitHub's #LN-LM).
_CITE = re.compile(
    r"(?<![\w/.@-])(?P<path>(?:\.{0,2}/)?(?:[\w@+-][\w.@+-]*/)*[\w@+-][\w.@+-]*\.[A-Za-z][A-Za-z0-9_]*)"
    r"(?::(?P<start>\d+)(?:\s*[-–]\s*(?P<end>\d+))?|#L(?P<gstart>\d+)(?:-L?(?P<gend>\d+))?)"
)


class Citation(msgspec.Struct, frozen=True):
    path: str
    start: int
    end: int
    problem: str = ""
    """Empty when the citation holds; else what is wrong with it."""

    @property
    def ref(self) -> str:
        return f"{self.path}:{self.start}" + (f"-{self.end}" if self.end != self.start else "")


def find_citations(text: str) -> list[Citation]:
    """The citations in `text`, in order, each once."""
    seen: dict[tuple[str, int, int], Citation] = {}
    for m in _CITE.finditer(text):
        start = int(m.group("start") or m.group("gstart"))
        end_text = m.group("end") or m.group("gend")
        end = int(end_text) if end_text else start
        path = m.group("path").removeprefix("./")
        seen.setdefault((path, start, end), Citation(path, start, end))
    return list(seen.values())


def check_citations(text: str, lines_of: Callable[[str], int | None]) -> list[Citation]:
    """Check each citation; `lines_of(path)` gives a file's line count, None when the snapshot
    has no such file."""
    checked = []
    for c in find_citations(text):
        lines = lines_of(c.path)
        if lines is None:
            problem = "unknown path"
        elif c.start < 1 or c.end < c.start:
            problem = "invalid line range"
        elif c.end > lines:
            problem = f"line {c.end} is past the end ({lines} lines)"
        else:
            problem = ""
        checked.append(msgspec.structs.replace(c, problem=problem))
    return checked
