"""Unified diffs as data: files, hunks and lines with their numbers in the old and new version.

Parsing is `unidiff`'s; this module gives its result a small frozen shape the rest of the review
reads (which file, renamed from where, binary or not, which new-file lines a comment may name)
and gets the diff from git. Lines are split on "\\n" only: `str.splitlines()` also splits on form
feeds and other separators that source files contain, which would break hunks apart.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

import msgspec
import unidiff
from unidiff.errors import UnidiffParseError

from seekgate.children import run_child

__all__ = ["DiffError", "DiffLine", "FileDiff", "Hunk", "git_diff", "parse_diff"]

Status = Literal["added", "modified", "deleted", "renamed"]


class DiffError(Exception):
    """The input is not a diff this tool can read, or git could not produce one."""


class DiffLine(msgspec.Struct, frozen=True):
    kind: Literal["+", "-", " "]
    old: int | None
    """The line's number in the old version; None for an added line."""
    new: int | None
    """The line's number in the new version; None for a removed line."""
    text: str
    """Without its line end."""
    no_newline: bool = False
    """The file ends here without a final newline."""


class Hunk(msgspec.Struct, frozen=True, dict=True):
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    header: str
    """The text after the second `@@`: git's guess at the enclosing function or class."""
    lines: tuple[DiffLine, ...]

    @cached_property
    def shown(self) -> frozenset[int]:
        """New-file lines this hunk shows (added and context): the lines a comment may name."""
        return frozenset(line.new for line in self.lines if line.new is not None)

    @cached_property
    def added(self) -> frozenset[int]:
        return frozenset(line.new for line in self.lines if line.kind == "+" and line.new is not None)


class FileDiff(msgspec.Struct, frozen=True, dict=True):
    path: str
    """The path in the new version; for a deleted file, the path it had."""
    old_path: str | None
    """The path in the old version; None for an added file."""
    status: Status
    binary: bool
    hunks: tuple[Hunk, ...]
    link: Literal["symlink", "submodule"] | None = None
    """A symbolic link (its "content" is the target) or a submodule (a commit id), not a file."""

    @cached_property
    def shown(self) -> frozenset[int]:
        return frozenset().union(*(h.shown for h in self.hunks)) if self.status != "deleted" else frozenset()

    @cached_property
    def added(self) -> frozenset[int]:
        return frozenset().union(*(h.added for h in self.hunks))


def parse_diff(text: str) -> tuple[FileDiff, ...]:
    """Every file of a unified diff (git's, with renames and binary markers, or plain `diff -u`).

    Empty input is an empty diff; anything else that holds no file diff raises DiffError."""
    if not text.strip():
        return ()
    lines = [line + "\n" for line in text.split("\n")]
    if lines[-1] == "\n":
        lines.pop()
    try:
        patch = unidiff.PatchSet(lines)
    except UnidiffParseError as exc:
        raise DiffError(f"not a unified diff this tool can read: {exc}") from None
    if not patch:
        raise DiffError("the input holds no file diff (expected `diff --git` or `---`/`+++` headers and `@@` hunks)")
    return tuple(_file(f) for f in patch)


def _file(f: unidiff.PatchedFile) -> FileDiff:
    status: Status = (
        "added" if f.is_added_file else "deleted" if f.is_removed_file else "renamed" if f.is_rename else "modified"
    )
    old_path = None if status == "added" else _name(f.source_file)
    path = _name(f.source_file) if status == "deleted" else _name(f.target_file)
    link = "symlink" if f.is_symlink else "submodule" if f.is_submodule else None
    return FileDiff(path=path, old_path=old_path, status=status, binary=f.is_binary_file, hunks=tuple(_hunk(h) for h in f), link=link)


def _name(name: str) -> str:
    """A path as the file system has it: git's C-style quoting undone (`"b/\\303\\244.py"` is
    `b/ä.py`; git quotes names with non-ASCII bytes, quotes or control characters), then its
    `a/` and `b/` prefixes off (plain `diff -u` has none)."""
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = _unquote(name[1:-1])
    return name[2:] if name[:2] in ("a/", "b/") else name


_ESCAPES = {"a": 7, "b": 8, "t": 9, "n": 10, "v": 11, "f": 12, "r": 13, '"': 34, "\\": 92}


def _unquote(text: str) -> str:
    out = bytearray()
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            digits = text[i + 1 : i + 4]
            if len(digits) == 3 and all(d in "01234567" for d in digits):
                out.append(int(digits, 8))
                i += 4
                continue
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
                continue
        out += c.encode()
        i += 1
    return out.decode("utf-8", errors="replace")


def _hunk(h: unidiff.Hunk) -> Hunk:
    out: list[DiffLine] = []
    for line in h:
        if line.line_type == "\\":  # "\ No newline at end of file" belongs to the line before
            if out:
                out[-1] = msgspec.structs.replace(out[-1], no_newline=True)
            continue
        kind = line.line_type if line.line_type in ("+", "-") else " "
        out.append(DiffLine(kind=kind, old=line.source_line_no, new=line.target_line_no, text=line.value.rstrip("\n").removesuffix("\r")))
    return Hunk(
        old_start=h.source_start,
        old_count=h.source_length,
        new_start=h.target_start,
        new_count=h.target_length,
        header=h.section_header.strip(),
        lines=tuple(out),
    )


async def git_diff(repo: Path, base: str, head: str = "HEAD") -> str:
    """`git diff BASE...HEAD`: the changes on HEAD since it left BASE, as a pull request shows them."""
    argv = ["git", "-C", str(repo), "diff", "--no-color", "--no-ext-diff", "--no-textconv", "--find-renames", f"{base}...{head}"]
    try:
        done = await run_child(argv, cwd=repo)
    except FileNotFoundError:
        raise DiffError("git is not installed (needed for --base)") from None
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        raise DiffError(f"git diff {base}...{head} in {repo} failed: {detail[-1] if detail else f'exit {done.returncode}'}")
    return done.stdout.decode("utf-8", errors="replace")
