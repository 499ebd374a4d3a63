"""Versioned prompt packs: `<name>@v<N>.md` files with YAML front matter and a body that the
gateway injects as the first system message.

Shipped packs live in this package; a user folder adds to and overrides them. Files are
re-read when they change (checked at most once per `check_interval`), and a malformed file is
reported with its path and line and skipped, never taking the other packs down.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import msgspec
import yaml

from seekgate import errors

__all__ = ["PackError", "PackStore", "PromptPack", "parse_pack", "shipped_packs_dir"]

_FILE_NAME = re.compile(r"^(?P<name>[a-z0-9][a-z0-9_.-]*)@v(?P<version>[1-9][0-9]*)\.md$")
_REQUIRED = ("name", "version", "description", "task_types", "output_contract")


class PromptPack(msgspec.Struct, frozen=True):
    name: str
    version: int
    description: str
    task_types: tuple[str, ...]
    output_contract: str
    body: str
    path: str

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"


class PackError(Exception):
    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line


def shipped_packs_dir() -> Path:
    return Path(str(resources.files("seekgate.prompts").joinpath("packs")))


def parse_pack(path: Path) -> PromptPack:
    match = _FILE_NAME.match(path.name)
    if match is None:
        raise PackError(path, 1, "the file name must be <name>@v<N>.md, e.g. editor@v2.md")
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != "---":
        raise PackError(path, 1, "a pack starts with YAML front matter between two '---' lines")
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        raise PackError(path, 1, "the front matter has no closing '---' line")
    try:
        meta = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        # Point at where the broken construct starts (an unclosed bracket, say), else at the problem.
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        line = 2 + mark.line if mark is not None else 1
        raise PackError(path, line, f"front matter is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(meta, dict):
        raise PackError(path, 2, "front matter must be a mapping of keys to values")

    def line_of(key: str) -> int:
        return next((i + 1 for i in range(1, end) if lines[i].lstrip().startswith(f"{key}:")), 1)

    for key in _REQUIRED:
        if key not in meta:
            raise PackError(path, 1, f"front matter is missing `{key}` (required: {', '.join(_REQUIRED)})")
    for key in ("name", "description", "output_contract"):
        if not isinstance(meta[key], str) or not meta[key].strip():
            raise PackError(path, line_of(key), f"`{key}` must be a non-empty string")
    if not isinstance(meta["version"], int) or isinstance(meta["version"], bool) or meta["version"] < 1:
        raise PackError(path, line_of("version"), "`version` must be a whole number from 1")
    tasks = meta["task_types"]
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) and t for t in tasks):
        raise PackError(path, line_of("task_types"), "`task_types` must be a non-empty list of task names")
    if meta["name"] != match["name"] or meta["version"] != int(match["version"]):
        raise PackError(path, line_of("name"), f"front matter says {meta['name']}@v{meta['version']} but the file is {path.name}")
    unknown = sorted(set(meta) - set(_REQUIRED))
    if unknown:
        raise PackError(path, line_of(unknown[0]), f"unknown key `{unknown[0]}`; allowed: {', '.join(_REQUIRED)}")
    body = "\n".join(lines[end + 1 :]).strip()
    if not body:
        raise PackError(path, end + 2, "the pack has no body: write the system prompt after the front matter")
    return PromptPack(
        name=meta["name"],
        version=meta["version"],
        description=meta["description"].strip(),
        task_types=tuple(tasks),
        output_contract=meta["output_contract"].strip(),
        body=body,
        path=str(path),
    )


class PackStore:
    """Every pack in `dirs` (later folders override earlier ones for the same name@vN)."""

    def __init__(self, dirs: Sequence[Path], *, check_interval: float = 1.0) -> None:
        self._dirs = list(dirs)
        self._interval = check_interval
        self._checked = float("-inf")
        self._seen: dict[Path, tuple[int, int]] = {}
        self._parsed: dict[Path, PromptPack | PackError] = {}
        self._packs: dict[tuple[str, int], PromptPack] = {}
        self._refresh()

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self._interval:
            return
        self._checked = now
        files: list[Path] = []
        for folder in self._dirs:
            try:
                files += sorted(p for p in folder.iterdir() if p.suffix == ".md")
            except (FileNotFoundError, NotADirectoryError):
                continue
        stamps = {}
        for path in files:
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            stamps[path] = (st.st_mtime_ns, st.st_size)
        if stamps == self._seen:
            return
        for path, stamp in stamps.items():
            if self._seen.get(path) != stamp:
                try:
                    self._parsed[path] = parse_pack(path)
                except PackError as exc:
                    self._parsed[path] = exc
                except (OSError, UnicodeDecodeError) as exc:
                    self._parsed[path] = PackError(path, 1, f"cannot read: {exc}")
        self._parsed = {p: v for p, v in self._parsed.items() if p in stamps}
        self._seen = stamps
        packs: dict[tuple[str, int], PromptPack] = {}
        for path in stamps:  # in folder order, so later folders override
            parsed = self._parsed[path]
            if isinstance(parsed, PromptPack):
                packs[(parsed.name, parsed.version)] = parsed
        self._packs = packs

    def all(self) -> list[PromptPack]:
        self._refresh()
        return [self._packs[k] for k in sorted(self._packs)]

    def problems(self) -> list[str]:
        self._refresh()
        return [str(v) for v in self._parsed.values() if isinstance(v, PackError)]

    def get(self, ref: str, *, param: str = "X-Prompt-Pack") -> PromptPack:
        """`name@vN`, or a bare `name` for its highest version."""
        self._refresh()
        name, sep, version = ref.partition("@v")
        if sep and version.isdigit():
            pack = self._packs.get((name, int(version)))
        elif not sep:
            versions = [v for (n, v) in self._packs if n == name]
            pack = self._packs.get((name, max(versions))) if versions else None
        else:
            pack = None
        if pack is None:
            known = ", ".join(p.ref for p in self.all()) or "none"
            raise errors.InvalidRequest(f"unknown prompt pack {ref!r}; available: {known}", param=param, code="unknown_prompt_pack")
        return pack
