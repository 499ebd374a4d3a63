"""The file layer of scalpel: every path inside one root, and read-only enforced here.

    ws = Workspace(root, writable=False)
    ws.resolve("src/app.py")       -> absolute Path inside root, or WorkspaceError
    ws.read(path, start_line, end_line), ws.list(path, pattern), ws.search(regex, path, glob)
    ws.write_all({"src/app.py": text})   WorkspaceError when the workspace is read-only

A path is taken relative to the root (an absolute path is accepted when it lies inside it) and
resolved with every symlink followed, so `..`, an absolute path elsewhere and a symlink whose
target is outside are all refused; so are NUL bytes and anything inside `.git/`. A symlink
inside the root that points inside it is fine. The model never gets a way to write around
this: an `intel` chore's workspace has no writable file layer at all.

Text is UTF-8, read and written byte for byte (CRLF stays CRLF). Binary files and files over
`max_bytes` are refused with a message meant for the model.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pathspec

from seekgate import errors

__all__ = ["READ_ONLY", "Match", "Workspace", "WorkspaceError"]

MAX_BYTES = 256 * 1024
MAX_SLICEABLE_BYTES = 8 * 1024 * 1024
"""A file over `max_bytes` can still be read a line range at a time, up to this size."""
MATCH_CHARS = 200
SKIP_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox"}
)
_NEW_FILE_MODE = 0o644
READ_ONLY = "this chore is read-only (intel mode); it cannot change files. Ask for an edit chore to change them"


class WorkspaceError(errors.InvalidRequest):
    """A path or file operation the workspace refuses; the message is shown to the model."""


class Match(msgspec.Struct, frozen=True):
    path: str
    """Root-relative, `/` separators."""
    line: int
    """1-based."""
    text: str
    """The matching line, cut to about 200 characters around the match."""


class Workspace:
    def __init__(self, root: Path | str, *, writable: bool, max_bytes: int = MAX_BYTES) -> None:
        try:
            self.root = Path(root).expanduser().resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise WorkspaceError(f"the workspace root {root} does not exist") from exc
        if not self.root.is_dir():
            raise WorkspaceError(f"the workspace root {root} is not a folder")
        self.writable = writable
        self.max_bytes = max_bytes

    # -- paths -----------------------------------------------------------------------------

    def resolve(self, path: str) -> Path:
        """The absolute, symlink-free path of `path` (root-relative, or absolute inside the root)."""
        if "\0" in path:
            raise WorkspaceError("a path cannot contain a NUL byte")
        raw = path.strip() or "."
        try:
            full = (self.root / raw).resolve(strict=False)  # an absolute `raw` replaces the root here
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
            raise WorkspaceError(f"{path}: cannot be resolved ({exc})") from exc
        if not full.is_relative_to(self.root):
            raise WorkspaceError(f"{path}: outside the workspace {self.root}; use a path relative to it")
        if ".git" in full.relative_to(self.root).parts:
            raise WorkspaceError(f"{path}: inside .git/, which scalpel never reads or writes")
        return full

    def relative(self, path: str) -> str:
        """`path` resolved, as a root-relative string with `/` separators ("." for the root)."""
        return self.resolve(path).relative_to(self.root).as_posix()

    # -- reading ---------------------------------------------------------------------------

    def read(self, path: str, start_line: int | None = None, end_line: int | None = None) -> str:
        """The text of a file, or lines start_line..end_line of it (1-based, inclusive)."""
        full = self._file(path)
        sliced = start_line is not None or end_line is not None
        size = full.stat().st_size
        if size > (MAX_SLICEABLE_BYTES if sliced else self.max_bytes):
            hint = "" if sliced else "; read a range of it with start_line/end_line, or search it"
            raise WorkspaceError(f"{path}: {size} bytes, over the {_size(self.max_bytes)} limit{hint}")
        text = _decode(path, _read_bytes(path, full))
        if not sliced:
            return text
        lines = text.split("\n")  # only "\n" ends a line, as for patches and for git (not \f, \v, U+2028)
        lines = [x + "\n" for x in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
        start = 1 if start_line is None else start_line
        end = max(len(lines), start) if end_line is None else end_line
        if start < 1 or end < start:
            raise WorkspaceError(f"{path}: bad line range {start_line}..{end_line}; lines are numbered from 1 and end >= start")
        if start > len(lines):
            raise WorkspaceError(f"{path}: has {len(lines)} lines; start_line {start} is past the end")
        out = "".join(lines[start - 1 : end])
        if len(out.encode()) > self.max_bytes:
            raise WorkspaceError(f"{path}: lines {start}..{end} are over the {_size(self.max_bytes)} limit; read fewer")
        return out

    def list(self, path: str = ".", pattern: str | None = None, limit: int = 500) -> list[str]:
        """Files and folders (with a trailing `/`) under `path`, root-relative and sorted.

        Skips .git, node_modules, __pycache__, .venv and the like, and whatever .gitignore
        ignores. `pattern` is a glob (`*`, `?`, `[..]`, `**`); without a `/` it matches the
        name, with one the path below `path` or below the root. At most `limit` entries: a list
        of exactly `limit` may have been cut short.
        """
        matches = _glob(pattern, self._rel_base(path))
        out: list[str] = []
        for rel, is_dir in self._entries(path):
            if matches(rel):
                out.append(rel + "/" if is_dir else rel)
                if len(out) >= limit:
                    break
        return out

    def search(self, regex: str, path: str = ".", glob: str | None = None, limit: int = 200) -> list[Match]:
        """Lines matching a Python regex in the text files under `path` (binaries and files over
        `max_bytes` are skipped), in path then line order."""
        try:
            pattern = re.compile(regex)
        except re.error as exc:
            raise WorkspaceError(f"invalid regex {regex!r}: {exc}") from exc
        matches = _glob(glob, self._rel_base(path))
        out: list[Match] = []
        for rel, is_dir in self._entries(path):
            if is_dir or not matches(rel):
                continue
            full = self.root / rel
            try:
                if full.stat().st_size > self.max_bytes:
                    continue
                data = full.read_bytes()
            except OSError:
                continue
            if b"\0" in data[:8192]:
                continue
            try:
                text = data.decode()
            except UnicodeDecodeError:
                continue
            for number, line in enumerate(text.split("\n"), 1):
                found = pattern.search(line)
                if found:
                    out.append(Match(rel, number, _excerpt(line.rstrip("\r"), found.start())))
                    if len(out) >= limit:
                        return out
        return out

    # -- writing ---------------------------------------------------------------------------

    def write_all(self, contents: dict[str, str]) -> None:
        """Write every file atomically (a temporary file in the same folder, then a rename),
        keeping each file's mode; new files and their folders are created. Every path is checked
        and every temporary file written before the first rename, so a refusal or a full disk
        leaves all files as they were."""
        if not self.writable:
            raise WorkspaceError(READ_ONLY)
        targets: list[tuple[Path, str]] = []
        for path, text in contents.items():
            full = self.resolve(path)
            if full == self.root or full.is_dir():
                raise WorkspaceError(f"{path}: is a folder, not a file")
            targets.append((full, text))
        staged: list[tuple[str, Path]] = []
        try:
            for full, text in targets:
                staged.append((_stage(full, text), full))
            for tmp, full in staged:
                os.replace(tmp, full)
        except OSError as exc:
            raise WorkspaceError(f"could not write {exc.filename or 'a file'}: {exc.strerror or exc}") from exc
        finally:
            for tmp, _ in staged:
                if os.path.exists(tmp):
                    os.unlink(tmp)

    # -- internals -------------------------------------------------------------------------

    def _file(self, path: str) -> Path:
        full = self.resolve(path)
        if full.is_dir():
            raise WorkspaceError(f"{path}: is a folder; list it instead")
        if not full.is_file():
            raise WorkspaceError(f"{path}: no such file")
        return full

    def _rel_base(self, path: str) -> str:
        rel = self.relative(path)
        return "" if rel == "." else rel + "/"

    def _entries(self, path: str) -> Iterator[tuple[str, bool]]:
        """(root-relative path, is a folder) under `path`, in sorted order of `path` + `/` for
        folders: walking children sorted that way yields the whole tree sorted."""
        base = self.resolve(path)
        if base.is_file():
            yield base.relative_to(self.root).as_posix(), False
            return
        if not base.is_dir():
            raise WorkspaceError(f"{path}: no such file or folder")
        specs: list[tuple[str, pathspec.PathSpec]] = []
        for ancestor in reversed(base.relative_to(self.root).parents):
            self._add_ignore(specs, self.root / ancestor, ancestor.as_posix())
        yield from self._walk(base, self._rel_base(path), specs)

    def _walk(self, folder: Path, rel: str, specs: list[tuple[str, pathspec.PathSpec]]) -> Iterator[tuple[str, bool]]:
        specs = list(specs)
        self._add_ignore(specs, folder, rel.rstrip("/") or ".")
        children: list[tuple[str, str, bool, bool]] = []  # (sort key, name, is_dir, descend)
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            descend = True
            if entry.is_symlink():
                try:
                    target = Path(entry.path).resolve(strict=True)
                except (OSError, RuntimeError):
                    continue
                if not target.is_relative_to(self.root) or ".git" in target.relative_to(self.root).parts:
                    continue
                is_dir, descend = target.is_dir(), False  # listed, never walked: no loops
            else:
                is_dir = entry.is_dir(follow_symlinks=False)
            if is_dir and entry.name in SKIP_DIRS:
                continue
            if any(spec.match_file(rel[len(b) :] + entry.name + ("/" if is_dir else "")) for b, spec in specs):
                continue
            children.append((entry.name + ("/" if is_dir else ""), entry.name, is_dir, descend))
        for _, name, is_dir, descend in sorted(children):
            yield rel + name, is_dir
            if is_dir and descend:
                yield from self._walk(folder / name, rel + name + "/", specs)

    @staticmethod
    def _add_ignore(specs: list[tuple[str, pathspec.PathSpec]], folder: Path, rel: str) -> None:
        ignore = folder / ".gitignore"
        if ignore.is_file():
            lines = ignore.read_text(errors="replace").splitlines()
            specs.append(("" if rel == "." else rel + "/", pathspec.GitIgnoreSpec.from_lines(lines)))


def _read_bytes(path: str, full: Path) -> bytes:
    try:
        return full.read_bytes()
    except OSError as exc:
        raise WorkspaceError(f"{path}: cannot be read ({exc.strerror or exc})") from exc


def _decode(path: str, data: bytes) -> str:
    if b"\0" in data[:8192]:
        raise WorkspaceError(f"{path}: a binary file, not text; scalpel reads and edits text files only")
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise WorkspaceError(
            f"{path}: not UTF-8 text (a bad byte at offset {exc.start}); scalpel reads and edits UTF-8 text only"
        ) from exc


def _stage(full: Path, text: str) -> str:
    """A temporary file next to `full` holding `text`, with `full`'s mode (or 0644 when new)."""
    mode = full.stat().st_mode & 0o7777 if full.exists() else _NEW_FILE_MODE
    full.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=full.parent, prefix=f".{full.name}.", suffix=".scalpel")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def _size(n: int) -> str:
    return f"{n // 1024} KiB" if n >= 1024 and n % 1024 == 0 else f"{n} byte"


def _excerpt(line: str, at: int) -> str:
    if len(line) <= MATCH_CHARS:
        return line
    start = max(0, min(at - MATCH_CHARS // 4, len(line) - MATCH_CHARS))
    return ("…" if start else "") + line[start : start + MATCH_CHARS] + ("…" if start + MATCH_CHARS < len(line) else "")


def _glob(pattern: str | None, base: str) -> Callable[[str], bool]:
    """A test of root-relative paths: `pattern` without `/` matches the name; with one, the path
    below `base` or below the root. `*` and `?` stay within one folder, `**` crosses folders."""
    if not pattern:
        return lambda rel: True
    pattern = pattern.strip().removeprefix("./").lstrip("/")
    regex = re.compile(_translate(pattern.rstrip("/")))
    if "/" not in pattern.rstrip("/"):
        return lambda rel: regex.fullmatch(rel.rsplit("/", 1)[-1]) is not None
    return lambda rel: (
        regex.fullmatch(rel) is not None or (rel.startswith(base) and regex.fullmatch(rel[len(base) :]) is not None)
    )


def _translate(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (end := pattern.find("]", i + 2)) != -1:  # `[]..]` holds a literal `]`
            body = pattern[i + 1 : end].replace("\\", "\\\\")
            body = "^" + body[1:] if body.startswith("!") else "\\" + body if body.startswith("^") else body
            out.append("[" + body + "]")
            i = end + 1
            continue
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)
