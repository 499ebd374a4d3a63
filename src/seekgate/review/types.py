"""What a review produces: comments anchored to new-file lines, and linter findings.

The model's comments and the linters' findings stay apart (a linter is deterministic and gates;
the model advises), but both point at a file of the pull request's new version and a line in it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal

import msgspec

__all__ = ["SEVERITIES", "Comment", "LintFinding", "Severity"]

Severity = Literal["error", "warning", "suggestion"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "suggestion")
"""Most severe first: an exit policy "fail on warning" also fails on errors."""

_SPACE = re.compile(r"\s+")


class Comment(msgspec.Struct, frozen=True, kw_only=True):
    """One review comment from the model, on a line of the new version of a file."""

    path: str
    """The file's path in the new version (after a rename, the new name)."""
    line: int
    """A 1-based line number in the new version, always one the diff shows."""
    severity: Severity
    body: str
    reanchored_from: int | None = None
    """The line the model named when it was outside the diff and the comment moved to the
    nearest line the diff shows; None when the model's line was used as given."""

    @property
    def fingerprint(self) -> str:
        """Stable across runs while path, severity and wording stay, even if the line moves: how
        a re-run recognises a comment it has already posted."""
        text = _SPACE.sub(" ", self.body.strip().lower())
        return hashlib.sha256(f"{self.path}\0{self.severity}\0{text}".encode()).hexdigest()[:16]


class LintFinding(msgspec.Struct, frozen=True, kw_only=True):
    """One finding of a configured linter (ruff, mypy, eslint ...), on a file the diff touches."""

    linter: str
    """The linter's name in review.linters."""
    path: str
    line: int
    column: int | None = None
    code: str = ""
    """The rule, when the linter names one (`F401`)."""
    message: str
    in_diff: bool = False
    """The line is one the diff adds or changes: new in this pull request, not inherited."""
