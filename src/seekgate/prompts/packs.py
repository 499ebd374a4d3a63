"""Versioned prompt packs: `<name>@v<N>.md` files with YAML front matter and a body that the
gateway injects as the first system message, ahead of the client's own.

    ---
    name: editor
    version: 1
    description: Copy editor for prose, comments and docs
    task_types: [editor]
    output_contract: Only the edited text
    ---
    You are a copy editor. ...

Shipped packs live in this package; a user folder adds to and overrides them. Files are re-read
when they change (checked at most once per `check_interval`), and a malformed file is reported
with its path and line and skipped, never taking the other packs down. In a folder, only files
named like a pack (`*@*.md`) are read, so a README or an editor's lock file is left alone.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
import yaml

from seekgate import errors

__all__ = ["PackError", "PackStore", "PromptPack", "parse_pack", "shipped_packs_dir"]

_FILE_NAME = re.compile(r"^(?P<name>[a-z0-9][a-z0-9_.-]*)@v(?P<version>[1-9][0-9]*)\.md$")
_REF = re.compile(r"^(?P<name>[^@\s]+)(?:@v(?P<version>[0-9]+))?$")
_REQUIRED = ("name", "version", "description", "task_types", "output_contract")
_FRONT_LINE = 2
"""File line of the front matter's first line (after the opening `---`)."""


class PromptPack(msgspec.Struct, frozen=True):
    name: str
    version: int
    description: str
    task_types: tuple[str, ...]
    """The task profiles this pack is written for."""
    output_contract: str
    """What the answer must look like, in one sentence (documentation for callers and reviewers)."""
    body: str
    """The system message the gateway injects."""
    path: str

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"


class PackError(Exception):
    """A pack file that cannot be used; `str()` is `path:line: message`, as editors and CI expect."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


def shipped_packs_dir() -> Path:
    return Path(str(resources.files("seekgate.prompts").joinpath("packs")))


def parse_pack(path: Path) -> PromptPack:
    """Read and validate one pack file; every failure is a PackError naming the path and line."""
    match = _FILE_NAME.match(path.name)
    if match is None:
        raise PackError(path, 1, "the file name must be <name>@v<N>.md in lower case, e.g. editor@v2.md")
    try:
        # utf-8-sig: a byte-order mark some editors add is not part of the opening `---`.
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise PackError(path, 1, f"cannot read the file: {exc}") from None
    if not lines or lines[0].strip() != "---":
        raise PackError(path, 1, "a pack starts with YAML front matter between two '---' lines")
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        raise PackError(path, 1, "the front matter has no closing '---' line")
    meta, key_lines = _front_matter(path, "\n".join(lines[1:end]))

    def at(key: str) -> int:
        return key_lines.get(key, 1)

    for key in _REQUIRED:
        if key not in meta:
            raise PackError(path, 1, f"front matter is missing `{key}` (required: {', '.join(_REQUIRED)})")
    unknown = sorted(set(meta) - set(_REQUIRED), key=lambda k: key_lines.get(k, 0))
    if unknown:
        raise PackError(path, at(unknown[0]), f"unknown key `{unknown[0]}`; allowed: {', '.join(_REQUIRED)}")
    for key in ("name", "description", "output_contract"):
        if not isinstance(meta[key], str) or not meta[key].strip():
            raise PackError(path, at(key), f"`{key}` must be a non-empty string, got {meta[key]!r}")
    version = meta["version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise PackError(path, at("version"), f"`version` must be a whole number from 1, got {version!r}")
    tasks = meta["task_types"]
    if not isinstance(tasks, list) or not tasks or not all(isinstance(t, str) and t.strip() for t in tasks):
        raise PackError(path, at("task_types"), "`task_types` must be a non-empty list of task names, e.g. [editor]")
    if meta["name"] != match["name"]:
        raise PackError(path, at("name"), f"`name` is {meta['name']!r} but the file is {path.name}; they must agree")
    if version != int(match["version"]):
        raise PackError(path, at("version"), f"`version` is {version} but the file is {path.name}; they must agree")
    body = "\n".join(lines[end + 1 :]).strip()
    if not body:
        raise PackError(path, end + 2, "the pack has no body: write the system prompt after the front matter")
    return PromptPack(
        name=meta["name"],
        version=version,
        description=meta["description"].strip(),
        task_types=tuple(t.strip() for t in tasks),
        output_contract=meta["output_contract"].strip(),
        body=body,
        path=str(path),
    )


def _front_matter(path: Path, text: str) -> tuple[dict[str, Any], dict[str, int]]:
    """The front matter as a mapping, with the file line of each key."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, {}
        if not isinstance(node, yaml.MappingNode):
            raise PackError(path, _FRONT_LINE + node.start_mark.line, "front matter must be a mapping of keys to values")
        key_lines: dict[str, int] = {}
        for key_node, _ in node.value:
            key = str(key_node.value)
            line = _FRONT_LINE + key_node.start_mark.line
            if key in key_lines:
                raise PackError(path, line, f"`{key}` is given twice (first on line {key_lines[key]})")
            key_lines[key] = line
        meta = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise PackError(path, *_yaml_error(exc)) from None
    finally:
        loader.dispose()
    return meta, key_lines


def _yaml_error(exc: yaml.YAMLError) -> tuple[int, str]:
    problem = getattr(exc, "problem", None) or str(exc)
    mark = getattr(exc, "problem_mark", None)
    context = getattr(exc, "context", None) or ""
    context_mark = getattr(exc, "context_mark", None)
    line = _FRONT_LINE + mark.line if mark is not None else 1
    # An unclosed bracket or quote is noticed lines later; the line to fix is where it opens.
    if context_mark is not None and ("flow" in context or "quoted" in context):
        opened = _FRONT_LINE + context_mark.line
        return opened, f"front matter is not valid YAML: {context.removeprefix('while ')} opened here is not closed ({problem} on line {line})"
    return line, f"front matter is not valid YAML: {problem}"


class PackStore:
    """Every pack in `dirs`; later folders override earlier ones for the same name@vN.

    `get` runs per request, so a re-scan (one listing and a stat per file) happens at most once
    per `check_interval` seconds, and only files whose mtime or size changed are parsed again.
    """

    def __init__(self, dirs: Sequence[Path], *, check_interval: float = 1.0) -> None:
        self._dirs = [Path(d) for d in dirs]
        self._interval = check_interval
        self._checked = float("-inf")
        self._seen: dict[Path, tuple[int, int]] = {}
        self._parsed: dict[Path, PromptPack | PackError] = {}
        self._dir_problems: list[str] = []
        self._packs: dict[tuple[str, int], PromptPack] = {}
        self._refresh()

    def all(self) -> list[PromptPack]:
        """Every loaded pack, by name then version."""
        self._refresh()
        return [self._packs[k] for k in sorted(self._packs)]

    def problems(self) -> list[str]:
        """`path:line: message` for each file that failed to load (and folders that cannot be read)."""
        self._refresh()
        return self._dir_problems + [str(v) for _, v in sorted(self._parsed.items()) if isinstance(v, PackError)]

    def get(self, ref: str, *, param: str = "X-Prompt-Pack") -> PromptPack:
        """`name@vN`, or a bare `name` for its highest version; anything else is InvalidRequest."""
        self._refresh()
        match = _REF.match(ref.strip())
        if match is None:
            raise self._unknown(f"{ref!r} is not a prompt pack reference (use name or name@vN)", None, param)
        name, version = match["name"], match["version"]
        versions = sorted(v for (n, v) in self._packs if n == name)
        if version is None and versions:
            return self._packs[(name, versions[-1])]
        if version is not None and int(version) in versions:
            return self._packs[(name, int(version))]
        if versions:
            listed = ", ".join(f"{name}@v{v}" for v in versions)
            raise self._unknown(f"prompt pack {name!r} has no version {version}; it has {listed}", name, param)
        raise self._unknown(f"unknown prompt pack {ref!r}", name, param)

    def _unknown(self, message: str, name: str | None, param: str) -> errors.InvalidRequest:
        available = ", ".join(self._packs[k].ref for k in sorted(self._packs)) or "none"
        broken = [str(v) for p, v in sorted(self._parsed.items()) if isinstance(v, PackError) and p.name.startswith(f"{name}@")]
        detail = f"; available: {available}" + "".join(f"; not loaded: {b}" for b in broken)
        return errors.InvalidRequest(message + detail, param=param, code="unknown_prompt_pack")

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self._interval:
            return
        self._checked = now
        stamps: dict[Path, tuple[int, int]] = {}
        dir_problems: list[str] = []
        for folder in self._dirs:
            try:
                with os.scandir(folder) as entries:
                    names = sorted(e.name for e in entries if _looks_like_pack(e.name))
            except (FileNotFoundError, NotADirectoryError):  # an absent user folder is fine
                continue
            except OSError as exc:
                dir_problems.append(f"{folder}: cannot list the folder: {exc.strerror or exc}")
                continue
            for name in names:
                path = folder / name
                try:
                    st = path.stat()
                except FileNotFoundError:  # removed between the listing and now
                    continue
                stamps[path] = (st.st_mtime_ns, st.st_size)
        self._dir_problems = dir_problems
        if stamps == self._seen:
            return
        parsed: dict[Path, PromptPack | PackError] = {}
        for path, stamp in stamps.items():
            old = self._parsed.get(path)
            if old is not None and self._seen.get(path) == stamp:
                parsed[path] = old
                continue
            try:
                parsed[path] = parse_pack(path)
            except PackError as exc:
                parsed[path] = exc
        packs: dict[tuple[str, int], PromptPack] = {}
        for item in parsed.values():  # in folder order, so later folders override earlier ones
            if isinstance(item, PromptPack):
                packs[(item.name, item.version)] = item
        self._seen, self._parsed, self._packs = stamps, parsed, packs


def _looks_like_pack(file_name: str) -> bool:
    return file_name.endswith(".md") and "@" in file_name and not file_name.startswith(".")
