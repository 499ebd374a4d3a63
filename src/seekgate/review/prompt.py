"""What the model sees and what it may answer: hunks packed into calls, and the reply read back.

Each call gets whole hunks, in diff order, as many as fit the budget; a hunk too big for one call
is cut into parts of whole lines. Every line is shown with its number in the new version of the
file, so the model names lines the diff shows instead of counting. The answer is constrained by a
JSON schema that lists, per file, exactly those line numbers: on a backend that enforces schemas
(the embedded engine, vLLM, Ollama) a comment cannot name a line outside the diff at all; other
answers are checked afterwards (anchor.py). Replies that are not JSON are read as the ci@v1 list
format (`- path:line [severity] text`), so a backend that ignores the schema still works.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from seekgate.review.diff import FileDiff, Hunk
from seekgate.review.types import SEVERITIES

__all__ = ["INSTRUCTIONS", "Batch", "Piece", "RawComment", "estimate_tokens", "parse_reply", "plan_batches", "reply_schema"]

INSTRUCTIONS = (
    "Review these changes. Each line starts with its number in the new version of the file, then "
    '"+" for an added line, "-" for a removed line (removed lines have no number) or a space for '
    "unchanged context. Comment on the added or changed code only, naming the number shown beside "
    'the line. Answer with JSON: {"comments": [{"path", "line", "severity", "body"}]}, at most '
    '%d comments, or {"comments": []} when the changes look good.'
)
MAX_BODY_CHARS = 600
"""A comment longer than this is cut: the grammar makes a rambling model close its string."""


def estimate_tokens(text: str) -> int:
    """Tokens, estimated on the high side for code (about three characters a token): the budget
    is a ceiling, and a call over it is refused by the model rather than cut."""
    return math.ceil(len(text) / 3)


class Piece(msgspec.Struct, frozen=True):
    """A hunk, or a part of one too big for a call, of one file."""

    file: FileDiff
    hunk: Hunk
    part: tuple[int, int] | None = None
    """(i, n) when this is the i-th of n parts of the hunk."""

    def render(self) -> str:
        head = f"File: {self.file.path}"
        if self.file.status == "renamed":
            head += f" (renamed from {self.file.old_path})"
        elif self.file.status == "added":
            head += " (new file)"
        hunk = self.hunk
        where = f"@@ -{hunk.old_start},{hunk.old_count} +{hunk.new_start},{hunk.new_count} @@ {hunk.header}".rstrip()
        if self.part is not None:
            where += f"  (part {self.part[0]} of {self.part[1]})"
        return "\n".join([head, where, *(_render_line(line.new, line.kind, line.text) for line in hunk.lines)])


def _render_line(number: int | None, kind: str, text: str) -> str:
    return f"{number if number is not None else '':>6} {kind} {text}"


class Batch(msgspec.Struct, frozen=True):
    """The hunks one model call reviews."""

    pieces: tuple[Piece, ...]

    def prompt(self, max_comments: int) -> str:
        return INSTRUCTIONS % max_comments + "\n\n" + "\n\n".join(p.render() for p in self.pieces)

    def shown(self) -> dict[str, frozenset[int]]:
        """Per file, the new-file lines this call shows."""
        out: dict[str, set[int]] = {}
        for piece in self.pieces:
            out.setdefault(piece.file.path, set()).update(piece.hunk.shown)
        return {path: frozenset(lines) for path, lines in out.items()}

    def halves(self) -> tuple[Batch, Batch] | None:
        """The same work as two calls (after the model refused this one as too long)."""
        if len(self.pieces) > 1:
            mid = len(self.pieces) // 2
            return Batch(self.pieces[:mid]), Batch(self.pieces[mid:])
        piece = self.pieces[0]
        if len(piece.hunk.lines) < 2:
            return None
        first, second = _split(piece.hunk, len(piece.hunk.lines) // 2)
        return Batch((Piece(piece.file, first),)), Batch((Piece(piece.file, second),))


def plan_batches(files: Iterable[FileDiff], budget_tokens: int) -> list[Batch]:
    """Hunks in diff order, packed into calls of at most `budget_tokens` (estimated) each."""
    batches: list[Batch] = []
    current: list[Piece] = []
    used = 0
    for piece in _pieces(files, budget_tokens):
        cost = estimate_tokens(piece.render()) + 1
        if current and used + cost > budget_tokens:
            batches.append(Batch(tuple(current)))
            current, used = [], 0
        current.append(piece)
        used += cost
    if current:
        batches.append(Batch(tuple(current)))
    return batches


def _pieces(files: Iterable[FileDiff], budget_tokens: int) -> Iterable[Piece]:
    for file in files:
        for hunk in file.hunks:
            whole = Piece(file, hunk)
            if estimate_tokens(whole.render()) <= budget_tokens:
                yield whole
                continue
            parts = _cut(file, hunk, budget_tokens)
            for i, part in enumerate(parts, 1):
                yield Piece(file, part, (i, len(parts)))


def _cut(file: FileDiff, hunk: Hunk, budget_tokens: int) -> list[Hunk]:
    """A hunk as consecutive parts that each fit (a single line longer than the budget is its own
    part: the model refuses it and the review reports that part as not reviewed)."""
    head = estimate_tokens(Piece(file, msgspec.structs.replace(hunk, lines=())).render()) + 8
    parts: list[Hunk] = []
    rest = hunk
    while rest.lines:
        used, n = head, 0
        for line in rest.lines:
            used += estimate_tokens(_render_line(line.new, line.kind, line.text)) + 1
            if n and used > budget_tokens:
                break
            n += 1
        if n == len(rest.lines):
            parts.append(rest)
            break
        first, rest = _split(rest, n)
        parts.append(first)
    return parts


def _split(hunk: Hunk, at: int) -> tuple[Hunk, Hunk]:
    def part(lines: Sequence[Any]) -> Hunk:
        old = [line.old for line in lines if line.old is not None]
        new = [line.new for line in lines if line.new is not None]
        return msgspec.structs.replace(
            hunk,
            old_start=old[0] if old else hunk.old_start,
            old_count=len(old),
            new_start=new[0] if new else hunk.new_start,
            new_count=len(new),
            lines=tuple(lines),
        )

    return part(hunk.lines[:at]), part(hunk.lines[at:])


def reply_schema(batch: Batch, max_comments: int) -> dict[str, Any]:
    """The JSON schema of an answer: per file of the call, only the lines the call shows."""
    variants = [
        {
            "type": "object",
            "properties": {
                "path": {"const": path},
                "line": {"enum": sorted(lines)},
                "severity": {"enum": list(SEVERITIES)},
                "body": {"type": "string", "minLength": 1, "maxLength": MAX_BODY_CHARS},
            },
            "required": ["path", "line", "severity", "body"],
            "additionalProperties": False,
        }
        for path, lines in batch.shown().items()
        if lines
    ]
    if not variants:  # only removed lines, nothing a comment can name
        return {"type": "object", "properties": {"comments": {"type": "array", "maxItems": 0}}, "required": ["comments"]}
    item: dict[str, Any] = variants[0] if len(variants) == 1 else {"anyOf": variants}
    return {
        "type": "object",
        "properties": {"comments": {"type": "array", "items": item, "maxItems": max_comments}},
        "required": ["comments"],
        "additionalProperties": False,
    }


class RawComment(msgspec.Struct, frozen=True):
    """A comment as the model wrote it, before it is checked against the diff."""

    path: str
    line: int
    severity: str
    body: str


_LIST_ITEM = re.compile(
    r"^\s*(?:[-*]|\d+[.)])?\s*`?(?P<path>[^\s:`]+):(?P<line>\d+)`?\s*\[?(?P<severity>error|warning|suggestion)\]?\s*[:\-–]?\s*(?P<body>.+)$",
    re.IGNORECASE,
)


def parse_reply(text: str) -> list[RawComment]:
    """The comments in an answer: the JSON the schema asks for, else ci@v1's list lines. An answer
    with neither (prose, "looks good") has none."""
    data = _json_object(text)
    if data is not None:
        items = data.get("comments")
        return [c for c in (_from_json(item) for item in items) if c is not None] if isinstance(items, list) else []
    salvaged = _complete_items(text)
    if salvaged:  # an answer cut at max_tokens: the comments written in full still count
        return [c for c in (_from_json(item) for item in salvaged) if c is not None]
    out = []
    for line in text.splitlines():
        m = _LIST_ITEM.match(line)
        if m:
            out.append(RawComment(m["path"], int(m["line"]), m["severity"].lower(), m["body"].strip()))
    return out


def _json_object(text: str) -> dict[str, Any] | None:
    text = text.strip()
    fenced = re.search(r"```(?:json)?\s*(\{.*\})\s*```", text, re.DOTALL)
    if fenced:
        text = fenced.group(1)
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _complete_items(text: str) -> list[Any]:
    """The objects of the `comments` array that are whole, in JSON cut off part-way."""
    start = re.search(r'"comments"\s*:\s*\[', text)
    if start is None:
        return []
    decoder, items, i = json.JSONDecoder(), [], start.end()
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        try:
            item, i = decoder.raw_decode(text, i)
        except ValueError:
            return items
        items.append(item)


def _from_json(item: Any) -> RawComment | None:
    if not isinstance(item, dict):
        return None
    path, line, severity, body = item.get("path"), item.get("line"), item.get("severity", "warning"), item.get("body")
    if isinstance(line, str) and line.strip().isdigit():
        line = int(line)
    if not isinstance(path, str) or not isinstance(line, int) or isinstance(line, bool) or not isinstance(body, str):
        return None
    return RawComment(path, line, str(severity).lower(), body.strip())
