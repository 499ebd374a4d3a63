"""Comments checked against the diff: a review never names a line the diff does not show.

A comment's file is matched to a file of the diff (exactly, or by a unique path suffix when the
model wrote `b/src/x.py` or `x.py`); its line must be one the diff shows in that file. A line
just outside a hunk moves to the nearest shown line when that is at most `window` lines away
(the model miscounted by a line or two); anything else is dropped. Both outcomes are counted.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping

import msgspec

from seekgate.review.prompt import MAX_BODY_CHARS, RawComment
from seekgate.review.types import SEVERITIES, Comment

__all__ = ["Anchored", "anchor", "tidy"]

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


class Anchored(msgspec.Struct, frozen=True):
    comments: tuple[Comment, ...]
    reanchored: int
    dropped: dict[str, int]
    """Why comments were dropped, and how many each: "unknown file", "line outside the diff",
    "empty", "duplicate", "over max_comments"."""


def anchor(raw: Iterable[RawComment], shown: Mapping[str, frozenset[int]], *, window: int, limit: int) -> Anchored:
    """`raw` comments placed on the diff's lines (`shown`: per file, the new-file lines the diff
    shows), duplicates removed, the `limit` most severe kept (in the order given within a severity)."""
    dropped: Counter[str] = Counter()
    kept: list[Comment] = []
    seen: set[tuple[str, int, str]] = set()
    reanchored = 0
    for item in raw:
        body = tidy(item.body)
        if not body:
            dropped["empty"] += 1
            continue
        path = _match_path(item.path, shown)
        if path is None:
            dropped["unknown file"] += 1
            continue
        line = _nearest(item.line, shown[path], window)
        if line is None:
            dropped["line outside the diff"] += 1
            continue
        severity = item.severity if item.severity in SEVERITIES else "warning"
        comment = Comment(
            path=path, line=line, severity=severity, body=body, reanchored_from=item.line if line != item.line else None
        )
        key = (path, line, comment.fingerprint)
        if key in seen:
            dropped["duplicate"] += 1
            continue
        seen.add(key)
        reanchored += line != item.line
        kept.append(comment)
    kept.sort(key=lambda c: SEVERITIES.index(c.severity))  # stable: the model's order within a severity
    if len(kept) > limit:
        dropped["over max_comments"] += len(kept) - limit
        reanchored -= sum(c.reanchored_from is not None for c in kept[limit:])
        kept = kept[:limit]
    return Anchored(comments=tuple(kept), reanchored=reanchored, dropped=dict(dropped))


def tidy(body: str) -> str:
    """The body without a small model's loops (a sentence said again and again) and without the
    broken-off end of a body the length limit cut."""
    body = body.strip()
    cut = len(body) >= MAX_BODY_CHARS
    body = body[:MAX_BODY_CHARS]
    sentences = _SENTENCE.split(body)
    if cut and len(sentences) > 1:
        sentences = sentences[:-1]
    kept = [s for i, s in enumerate(sentences) if s not in sentences[:i]]
    return " ".join(kept).strip()


def _match_path(path: str, shown: Mapping[str, frozenset[int]]) -> str | None:
    path = path.strip().strip("`").removeprefix("./")
    if path in shown:
        return path
    if path[:2] in ("a/", "b/") and path[2:] in shown:
        return path[2:]
    suffix = [p for p in shown if p.endswith("/" + path) or path.endswith("/" + p)]
    return suffix[0] if len(suffix) == 1 else None


def _nearest(line: int, lines: frozenset[int], window: int) -> int | None:
    if line in lines:
        return line
    if not lines or window <= 0:
        return None
    best = min(lines, key=lambda n: (abs(n - line), n))
    return best if abs(best - line) <= window else None
