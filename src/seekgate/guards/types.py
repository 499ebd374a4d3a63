"""What every guard speaks: a finding is a span of text, what was found there, and what the
guard profile decided to do about it.

Detectors are plain functions `detect(text) -> list[Finding]` with `action` left at FLAG; the
profile (guards/profiles.py) decides the action. Offsets are Python string indices (code
points), `end` exclusive, so `text[f.start:f.end]` is the matched value.
"""

from __future__ import annotations

import bisect
import enum
from collections.abc import Callable, Iterable

import msgspec

__all__ = ["Action", "Detector", "Finding", "Kind", "without_overlaps"]


class Kind(enum.StrEnum):
    SECRET = "secret"
    PII = "pii"
    COMMAND = "command"
    INJECTION = "injection"


class Action(enum.StrEnum):
    REDACT = "redact"
    """Replace with a placeholder held in the request's vault; restored in the answer."""
    MASK = "mask"
    """Replace with a placeholder that is never restored."""
    FLAG = "flag"
    """Leave the text; report the finding (headers, logs, metrics)."""
    STRIP = "strip"
    """Remove the text (injection screening of context and tool results)."""
    BLOCK = "block"
    """Refuse: a request gets 403, a stream ends with an error event."""


class Finding(msgspec.Struct, frozen=True, order=True):
    start: int
    end: int
    kind: Kind
    type: str
    """The detector, e.g. aws_access_key_id, email, pipe_to_shell, role_override."""
    action: Action = Action.FLAG


Detector = Callable[[str], list[Finding]]


def without_overlaps(ranked: Iterable[tuple[int, Finding]]) -> list[Finding]:
    """Of (rank, finding) pairs, the findings that win overlaps, sorted by position: a lower
    rank wins, then the earlier start. The kept spans are disjoint, so only the nearest one starting before a candidate ends
    can overlap it: one bisection per candidate instead of a scan of everything kept."""
    starts: list[int] = []
    kept: list[Finding] = []
    for _, f in sorted(ranked, key=lambda pair: (pair[0], pair[1].start)):
        i = bisect.bisect_left(starts, f.end)
        if not i or kept[i - 1].end <= f.start:
            starts.insert(i, f.start)
            kept.insert(i, f)
    return kept
