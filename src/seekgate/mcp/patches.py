"""Edits as patches: parsed, computed in memory, checked, written atomically, verified, and
rolled back on any failure. Never a whole-file rewrite, never a silent no-op.

    result = await apply_patch(ws, patch, verify="ruff check .", timeout_s=120)
    result.ok, result.changed (FileDiff(path, diff) per changed file), result.error

A patch is either a unified diff (`--- a/x`, `+++ b/x`, `@@ -l,n +l,n @@` hunks; `--- /dev/null`
creates a file) or search/replace blocks, the path on the line before each block:

    path/to/file.py
    <<<<<<< SEARCH
    old lines
    =======
    new lines
    >>>>>>> REPLACE

A hunk is placed by its content, not its line numbers (models get those wrong): the exact
lines nearest the stated line, else the same lines ignoring trailing whitespace. A SEARCH must
match exactly once; an empty SEARCH creates a missing file. Before anything is written, every
targeted file must really change, and a file in a language the context chunker parses must
still parse if it did before. Then all files are written; `verify` (a shell command run in the
root) must exit 0; any failure restores every file and removes created ones.

Problems with the patch come back as `EditResult(ok=False, error=...)`, worded for the model;
nothing is raised for them. A cancelled task still restores the files before it unwinds.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import tree_sitter as ts

from seekgate.children import ChildTimeout, run_child
from seekgate.context.chunking import language_of
from seekgate.context.chunking.code import GRAMMARS, LANGUAGES
from seekgate.mcp.workspace import READ_ONLY, Workspace, WorkspaceError

__all__ = ["EditResult", "FileDiff", "apply_patch"]

VERIFY_TAIL_CHARS = 2000
FORMATS = (
    "Send a unified diff (--- a/path, +++ b/path, @@ hunks) or SEARCH/REPLACE blocks:\n"
    "path/to/file\n<<<<<<< SEARCH\nexact current lines\n=======\nnew lines\n>>>>>>> REPLACE"
)


class FileDiff(msgspec.Struct, frozen=True):
    path: str
    """Root-relative, `/` separators."""
    diff: str
    """A unified diff with a/ and b/ paths (/dev/null for a created file)."""


class EditResult(msgspec.Struct):
    ok: bool
    changed: list[FileDiff] = msgspec.field(default_factory=list)
    """Exactly the files changed on disk; empty whenever ok is False (everything was restored)."""
    error: str | None = None


class PatchError(Exception):
    """A patch that cannot be applied; the message is for the model."""


async def apply_patch(ws: Workspace, patch: str, *, verify: str | None = None, timeout_s: float = 120) -> EditResult:
    if not ws.writable:
        return EditResult(False, error=READ_ONLY)
    try:
        plan = await asyncio.to_thread(_plan, ws, patch)
    except (PatchError, WorkspaceError) as exc:
        return EditResult(False, error=str(exc))
    lock = threading.Lock()  # a rollback waits for a write still running in its thread
    try:
        await asyncio.to_thread(_write, ws, plan, lock)
        failure = await _verify(verify, ws.root, timeout_s) if verify else None
    except WorkspaceError as exc:
        failure = str(exc)
    except BaseException:
        _restore(ws, plan, lock)  # cancelled or crashed: blocking, so the files are back before we unwind
        raise
    if failure is None:
        return EditResult(True, changed=plan.diffs)
    try:
        await asyncio.to_thread(_restore, ws, plan, lock)
    except (OSError, WorkspaceError) as exc:
        return EditResult(False, error=f"{failure}\nRESTORING THE ORIGINAL FILES FAILED, so some may hold the edit: {exc}")
    return EditResult(False, error=f"{failure}\nEvery file was restored to what it was before the edit.")


# -- parsing -------------------------------------------------------------------------------


@dataclass
class _Hunk:
    path: str
    label: str
    body: list[tuple[str, str]]
    """(tag, line with its newline): " " context, "-" removed, "+" added."""
    start: int | None
    """The stated old start line (1-based; for a pure insertion, the line to insert after)."""
    creates: bool = False

    @property
    def old(self) -> list[str]:
        return [line for tag, line in self.body if tag != "+"]


@dataclass
class _Block:
    path: str
    label: str
    search: str
    replace: str


_SEARCH = re.compile(r"<{5,9} ?SEARCH\s*")
_DIVIDER = re.compile(r"={5,9}\s*")
_REPLACE = re.compile(r">{5,9} ?REPLACE\s*")
_HUNK = re.compile(r"@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")


def _parse(patch: str) -> list[_Hunk | _Block]:
    lines = patch.replace("\r\n", "\n").split("\n")
    if any(_SEARCH.fullmatch(line) for line in lines):
        return list(_parse_blocks(lines))
    edits = list(_parse_diff(lines))
    if not edits:
        raise PatchError(f"no edit found in the patch. {FORMATS}")
    return edits


def _parse_blocks(lines: list[str]) -> list[_Block]:
    blocks: list[_Block] = []
    i = 0
    while i < len(lines):
        if not _SEARCH.fullmatch(lines[i]):
            i += 1
            continue
        label = f"SEARCH/REPLACE block {len(blocks) + 1}"
        path = _path_before(lines, i, blocks[-1].path if blocks else None)
        if path is None:
            raise PatchError(f"{label} has no file path: put the path on its own line just before <<<<<<< SEARCH")
        divider = next((j for j in range(i + 1, len(lines)) if _DIVIDER.fullmatch(lines[j])), None)
        end = next((j for j in range(divider + 1, len(lines)) if _REPLACE.fullmatch(lines[j])), None) if divider else None
        if divider is None or end is None:
            raise PatchError(f"{label} for {path} is not closed: it needs a ======= line and then >>>>>>> REPLACE")
        search, replace = lines[i + 1 : divider], lines[divider + 1 : end]
        blocks.append(_Block(path, label, "".join(x + "\n" for x in search), "".join(x + "\n" for x in replace)))
        i = end + 1
    return blocks


def _path_before(lines: list[str], at: int, previous: str | None) -> str | None:
    """The file path on the nearest line above a SEARCH marker, past blank lines and fences; a
    block right after another one edits the same file."""
    for line in reversed(lines[:at]):
        text = line.strip()
        if not text or text.startswith(("```", "~~~")):
            continue
        if _REPLACE.fullmatch(text):
            return previous
        quoted = re.search(r"`([^`\s]+)`", text)  # "In `src/app.py`:"
        return quoted.group(1) if quoted else text.strip("*").lstrip("#").strip().removesuffix(":").strip("*").strip() or None
    return previous


def _parse_diff(lines: list[str]) -> list[_Hunk]:
    hunks: list[_Hunk] = []
    target: tuple[str, bool] | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        if _file_header(lines, i):
            old, new = _header_path(line[4:]), _header_path(lines[i + 1][4:])
            if new is None:
                raise PatchError(f"the patch deletes {old}; scalpel does not delete files")
            target = (new, old is None)
            i += 2
            continue
        if not line.startswith("@@"):
            i += 1  # diff --git, index, mode lines, fences, prose
            continue
        if target is None:
            raise PatchError(f"a hunk ({line}) comes before any file header; start each file with --- a/path and +++ b/path")
        header = _HUNK.match(line)  # "@@ ... @@" without numbers is allowed: the context places it
        start = int(header.group(1)) if header else None
        body, bare, i = _hunk_body(lines, i + 1)
        while body and bare and bare[-1] == len(body) - 1:  # blank lines after a hunk are spacing, not context
            body.pop()
            bare.pop()
        if not any(tag != " " for tag, _ in body):
            raise PatchError(f"{target[0]}: hunk {line!r} has no + or - lines")
        hunks.append(_Hunk(target[0], f"the hunk {line.strip()!r}", body, start, creates=target[1]))
    return hunks


def _file_header(lines: list[str], i: int) -> bool:
    return lines[i].startswith("--- ") and i + 1 < len(lines) and lines[i + 1].startswith("+++ ")


def _hunk_body(lines: list[str], i: int) -> tuple[list[tuple[str, str]], list[int], int]:
    """A hunk's lines up to the next hunk, file header or other text; line counts in the header
    are ignored (models get them wrong). A bare empty line is an empty context line."""
    body: list[tuple[str, str]] = []
    bare: list[int] = []
    while i < len(lines):
        line = lines[i]
        if line.startswith(("@@", "diff --git")) or _file_header(lines, i):
            break
        if line.startswith("\\"):  # "\ No newline at end of file"
            if body:
                body[-1] = (body[-1][0], body[-1][1].removesuffix("\n"))
        elif line == "":
            bare.append(len(body))
            body.append((" ", "\n"))
        elif line[0] in " +-":
            body.append((line[0], line[1:] + "\n"))
        else:
            break
        i += 1
    return body, bare, i


def _header_path(text: str) -> str | None:
    path = text.split("\t", 1)[0].strip().strip('"')
    return None if path == "/dev/null" else path


# -- applying in memory --------------------------------------------------------------------


@dataclass
class _Plan:
    originals: dict[str, str | None]
    """Root-relative path -> its content before the edit (None: the edit creates it)."""
    updated: dict[str, str]
    created_dirs: list[Path] = field(default_factory=list)
    diffs: list[FileDiff] = field(default_factory=list)


def _plan(ws: Workspace, patch: str) -> _Plan:
    edits = _parse(patch)
    plan = _Plan({}, {})
    texts: dict[str, str | None] = {}
    offsets: dict[str, int] = {}
    for edit in edits:
        path = _target(ws, edit)
        if path not in plan.originals:
            full = ws.resolve(path)
            plan.originals[path] = ws.read(path) if full.exists() else None
            texts[path] = _normal(plan.originals[path])
            if not full.exists():
                plan.created_dirs += [p for p in full.parents if p.is_relative_to(ws.root) and not p.exists()]
        if isinstance(edit, _Block):
            texts[path] = _replace(path, texts[path], edit)
            continue
        if edit.creates and plan.originals[path]:
            raise PatchError(f"{path}: already exists; the patch creates it from /dev/null, so patch the existing file instead")
        if not edit.creates and plan.originals[path] is None:
            raise PatchError(f"{path}: no such file; to create a file, diff it from --- /dev/null")
        texts[path], offsets[path] = _apply_hunk(path, texts[path], edit, offsets.get(path, 0))
    for path, original in plan.originals.items():
        text = texts[path]
        assert text is not None
        if original is not None and "\r\n" in original:
            text = text.replace("\n", "\r\n")
        if text == original:
            raise PatchError(f"the edit changed nothing in {path}: its new content is the same as the old")
        _check_syntax(path, _normal(original), _normal(text))
        plan.updated[path] = text
        plan.diffs.append(FileDiff(path, _diff(path, _normal(original), _normal(text))))
    return plan


def _target(ws: Workspace, edit: _Hunk | _Block) -> str:
    path = edit.path
    if isinstance(edit, _Hunk) and path[:2] in ("a/", "b/"):
        literal = (ws.root / path).exists() and not (ws.root / path[2:]).exists()
        path = path if literal else path[2:]  # git's a/ and b/ prefixes, unless the file really is under a/
    return ws.relative(path)


def _normal(text: str | None) -> str | None:
    return None if text is None else text.replace("\r\n", "\n")


def _replace(path: str, text: str | None, block: _Block) -> str:
    if not block.search.strip():
        if not text:
            return block.replace
        raise PatchError(f"{path}: {block.label} has an empty SEARCH, but the file exists; quote the lines to change in SEARCH")
    if text is None:
        raise PatchError(f"{path}: no such file; to create it, use an empty SEARCH section")
    found = _occurrences(text, block.search)
    if len(found) == 1:
        return text.replace(block.search, block.replace, 1)
    if not found:  # the same lines, ignoring trailing whitespace
        lines, old = _split(text), _split(block.search)
        found = _line_matches(lines, old, _loose)
        if len(found) == 1:
            return "".join(_terminated(lines[: found[0]] + _split(block.replace) + lines[found[0] + len(old) :]))
        if not found:
            raise PatchError(f"{path}: the SEARCH text of {block.label} is not in the file. {_hint(lines, old)}")
        found = [i + 1 for i in found]
    raise PatchError(
        f"{path}: the SEARCH text of {block.label} is ambiguous: it matches {len(found)} places (lines "
        f"{', '.join(map(str, found[:10]))}); add surrounding lines so it matches exactly once"
    )


def _occurrences(text: str, search: str) -> list[int]:
    """1-based line numbers where `search` starts."""
    out, at = [], text.find(search)
    while at != -1:
        out.append(text.count("\n", 0, at) + 1)
        at = text.find(search, at + 1)
    return out


def _hint(lines: list[str], old: list[str]) -> str:
    first = next((x.strip() for x in old if x.strip()), "")
    near = [n for n, line in enumerate(lines, 1) if first and line.strip() == first]
    if near:
        return (
            f"Its first line {first!r} is at line {', '.join(map(str, near[:5]))} (ignoring indentation), but the lines "
            "as a whole differ; read the file again and copy them exactly, indentation included"
        )
    return "Read the file again and copy the lines to change exactly, indentation included"


def _apply_hunk(path: str, text: str | None, hunk: _Hunk, offset: int) -> tuple[str, int]:
    lines = _split(text or "")
    old = hunk.old
    if not old:
        if hunk.start is None and lines:
            raise PatchError(f"{path}: {hunk.label} has no context lines and no line number; add context lines")
        at = min(max((hunk.start or 0) + offset, 0), len(lines))
    else:
        hint = (hunk.start or 1) - 1 + offset
        found = _line_matches(lines, old, str.__eq__) or _line_matches(lines, old, _loose)
        if not found:
            shown = "".join("    " + x.rstrip("\n") + "\n" for x in old[:3])
            raise PatchError(
                f"{path}: {hunk.label} does not match the file; these lines were not found:\n{shown}"
                "Read the file again and copy the context and - lines exactly"
            )
        at = min(found, key=lambda i: (abs(i - hint), i))
    new: list[str] = []
    k = at
    for tag, line in hunk.body:
        if tag == "+":
            new.append(line)
        else:
            if tag == " ":
                new.append(lines[k])  # the file's own context line, trailing whitespace and all
            k += 1
    lines[at : at + len(old)] = new
    return "".join(_terminated(lines)), offset + len(new) - len(old)


def _split(text: str) -> list[str]:
    """Lines with their "\\n"; the last one without it when the text does not end in one."""
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])


def _terminated(lines: list[str]) -> list[str]:
    """Every line but the last ends in a newline (an edit may have put lines after an unterminated one)."""
    return [x if x.endswith("\n") or i == len(lines) - 1 else x + "\n" for i, x in enumerate(lines)]


def _loose(a: str, b: str) -> bool:
    return a.rstrip() == b.rstrip()


def _line_matches(lines: list[str], old: list[str], same: Callable[[str, str], bool]) -> list[int]:
    return [i for i in range(len(lines) - len(old) + 1) if all(same(lines[i + k], old[k]) for k in range(len(old)))]


def _check_syntax(path: str, old: str | None, new: str | None) -> None:
    language = language_of(path)
    if language not in LANGUAGES or new is None:
        return
    broken = _syntax_error(language, new)
    if broken is not None and (old is None or _syntax_error(language, old) is None):
        raise PatchError(
            f"{path}: the edit breaks the {language} syntax ({broken}), so it was not applied; "
            "fix the patch (indentation, brackets, quotes) and send it again"
        )


def _syntax_error(language: str, text: str) -> str | None:
    """Where tree-sitter finds the first syntax error ("a missing `)` at line 6", "an error
    between lines 1 and 6"), or None when the text parses cleanly."""
    node = ts.Parser(ts.Language(GRAMMARS[language].load())).parse(text.encode()).root_node
    if not node.has_error:
        return None
    while True:
        if node.is_missing:
            return f"a missing {node.type!r} at line {node.start_point[0] + 1}"
        child = next((c for c in node.children if c.has_error or c.is_missing), None)
        if child is None:  # the innermost ERROR: its span is all tree-sitter can say
            first, last = node.start_point[0] + 1, node.end_point[0] + 1
            return f"an error at line {first}" if first == last else f"an error between lines {first} and {last}"
        node = child


def _diff(path: str, old: str | None, new: str | None) -> str:
    out = []
    for line in difflib.unified_diff(
        _split(old or ""), _split(new or ""), "/dev/null" if old is None else f"a/{path}", f"b/{path}", lineterm="\n"
    ):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


# -- writing, verifying, restoring ---------------------------------------------------------


def _write(ws: Workspace, plan: _Plan, lock: threading.Lock) -> None:
    with lock:
        ws.write_all(plan.updated)
        for path, text in plan.updated.items():
            if ws.resolve(path).read_bytes() != text.encode():
                raise WorkspaceError(f"{path}: after writing, the file does not hold the new content")


def _restore(ws: Workspace, plan: _Plan, lock: threading.Lock) -> None:
    with lock:
        ws.write_all({p: text for p, text in plan.originals.items() if text is not None})
        for path, text in plan.originals.items():
            if text is None:
                with contextlib.suppress(FileNotFoundError):
                    ws.resolve(path).unlink()
        for folder in sorted(plan.created_dirs, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):  # not empty: something else was put there meanwhile
                folder.rmdir()


async def _verify(command: str, root: Path, timeout_s: float) -> str | None:
    """None when `command` exits 0 in `root`; otherwise why not, with the tail of its output."""
    try:
        done = await run_child(command, cwd=root, timeout_s=timeout_s, merge_stderr=True)
    except OSError as exc:
        return f"the verify command could not be started: {exc}"
    except ChildTimeout:
        return f"the verify command timed out after {timeout_s:g} s: {command}"
    if done.returncode == 0:
        return None
    tail = done.stdout.decode(errors="replace")[-VERIFY_TAIL_CHARS:]
    return f"the verify command failed (exit {done.returncode}): {command}\n{tail}".rstrip()

