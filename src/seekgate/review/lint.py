"""Run the configured linters on the files a diff touches and collect their findings.

Linters are deterministic, so their findings are reported apart from the model's comments (see
types.LintFinding). Every linter must print one finding a line as `path:line[:column]: message`,
the "gcc/unix" format that ruff (concise), flake8, mypy, eslint (-f unix) and shellcheck (-f gcc)
share, so one parser serves them all and adding a linter is configuration, not code.

A linter that cannot run (not installed, timed out, crashed) is reported in `LintReport.not_run`
rather than raised: a review still has the model's comments and the other linters' findings.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import re
import shutil
import sys
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path

import msgspec
import pathspec

from seekgate.children import ChildTimeout, run_child
from seekgate.review.types import LintFinding
from seekgate.settings import ReviewLinter

__all__ = ["FILES_PLACEHOLDER", "LintReport", "run_linters"]

FILES_PLACEHOLDER = "{files}"
"""A command argument exactly this is replaced by the files to check; without one they are appended."""

_STDERR_TAIL_LINES = 10
_STDERR_TAIL_CHARS = 1000

# Non-greedy path: the first `:<digits>:` ends it, so a ':' inside a path survives unless a
# number follows it, which is rare enough not to warrant per-linter formats.
_FINDING = re.compile(r"^(?P<path>.+?):(?P<line>\d+)(?::(?P<col>\d+))?:\s*(?P<msg>.*)$")
# `F401 ...` (ruff, flake8), optionally followed by ruff's `[*]` "fixable" marker.
_LEADING_CODE = re.compile(r"^(?P<code>[A-Z][A-Z0-9]*[0-9])(?:\s+\[\*\])?\s+(?P<msg>.*)$")
# `... [name-defined]` (mypy), `... [SC2086]` (shellcheck), `... [Error/no-unused-vars]` (eslint).
_TRAILING_CODE = re.compile(r"^(?P<msg>.*\S)\s+\[(?P<code>[A-Za-z][\w./-]*)\]$")


class LintReport(msgspec.Struct, frozen=True):
    """What the linters found on the diff's files, and which of them could not run."""

    findings: tuple[LintFinding, ...]
    """On files the diff touches, sorted by path, line, column."""
    not_run: dict[str, str]
    """Linter name -> why it did not run or its result is unusable (not found, timed out, crashed)."""
    ran: tuple[str, ...]
    """Linters that ran to completion, in configuration order."""


class _NotRun(Exception):
    """A linter could not produce findings; the message says why, for LintReport.not_run."""


async def run_linters(
    linters: Mapping[str, ReviewLinter],
    root: Path,
    changed: Mapping[str, frozenset[int]],
    *,
    timeout_s: float = 300,
) -> LintReport:
    """Run each enabled linter on the changed files under `root` that match its patterns.

    `changed` maps root-relative paths of the new version to the line numbers the diff adds; a
    finding on one of those lines is `in_diff`. A linter with no matching files does not run.
    """
    jobs: dict[str, asyncio.Task[list[LintFinding] | str]] = {}
    # A TaskGroup cancels the other linters (killing their processes) if one fails unexpectedly
    # or the caller is cancelled; gather would leave them running.
    async with asyncio.TaskGroup() as group:
        for name, linter in linters.items():
            if not linter.enabled:
                continue
            files = _files_for(linter, root, changed)
            if files:
                jobs[name] = group.create_task(_outcome(_run_one(name, linter, files, root, changed, timeout_s)))
    findings: list[LintFinding] = []
    not_run: dict[str, str] = {}
    ran: list[str] = []
    for name, job in jobs.items():
        outcome = job.result()
        if isinstance(outcome, str):
            not_run[name] = outcome
        else:
            findings.extend(outcome)
            ran.append(name)
    findings.sort(key=lambda f: (f.path, f.line, f.column or 0, f.linter, f.code, f.message))
    return LintReport(findings=tuple(findings), not_run=not_run, ran=tuple(ran))


def _files_for(linter: ReviewLinter, root: Path, changed: Mapping[str, frozenset[int]]) -> list[str]:
    spec = pathspec.GitIgnoreSpec.from_lines(linter.patterns) if linter.patterns else None
    real_root = root.resolve()
    files = []
    for path in sorted(changed):
        if spec is not None and not spec.match_file(path):
            continue
        target = (root / path).resolve()
        # A diff's path is data from the pull request: never hand a linter a file outside root.
        if target.is_file() and target.is_relative_to(real_root):
            files.append(path)
    return files


def _command(linter: ReviewLinter, files: Sequence[str]) -> tuple[str, list[str]]:
    """The program to start and its arguments, with the files put in."""
    # `./-x.py`: a file named like an option must not be read as one.
    args = [f"./{f}" if f.startswith("-") else f for f in files]
    program, *rest = linter.command
    if FILES_PLACEHOLDER not in rest:
        return program, [*rest, *args]
    return program, [a for arg in rest for a in (args if arg == FILES_PLACEHOLDER else [arg])]


def _which(program: str, root: Path) -> str | None:
    if os.sep in program:
        return shutil.which(str(root / program))
    # The interpreter's directory: a virtualenv's tools are found even when it is not activated.
    return shutil.which(program) or shutil.which(program, path=os.path.dirname(sys.executable))


async def _outcome(run: Coroutine[None, None, list[LintFinding]]) -> list[LintFinding] | str:
    """The linter's findings on changed files, or why it has none to give."""
    # Caught here, not in run_linters: an exception leaving a task would cancel the TaskGroup.
    try:
        return await run
    except _NotRun as exc:
        return str(exc)


async def _run_one(
    name: str,
    linter: ReviewLinter,
    files: Sequence[str],
    root: Path,
    changed: Mapping[str, frozenset[int]],
    timeout_s: float,
) -> list[LintFinding]:
    if not linter.command:
        raise _NotRun(f"{name}: the command is empty")
    program, args = _command(linter, files)
    executable = _which(program, root)
    if executable is None:
        raise _NotRun(f"{program}: executable not found on PATH")
    try:
        done = await run_child([executable, *args], cwd=root, timeout_s=timeout_s)
    except OSError as exc:
        raise _NotRun(f"{program}: could not be started: {exc}") from exc
    except ChildTimeout:
        raise _NotRun(f"{program}: timed out after {timeout_s:g} s and was killed") from None
    stdout, stderr = done.stdout, done.stderr
    parsed = [f for line in stdout.decode(errors="replace").splitlines() if (f := _parse(name, line, root)) is not None]
    code = done.returncode
    # Linters exit non-zero when they find something; only silence plus complaints on stderr (a
    # bad option, a broken config), or death by a signal, means there are no results to trust.
    err = stderr.decode(errors="replace").strip()
    if code < 0 or (code != 0 and not parsed and err):
        tail = "\n".join(err.splitlines()[-_STDERR_TAIL_LINES:])[-_STDERR_TAIL_CHARS:]
        raise _NotRun(f"{program}: crashed (exit {code})" + (f": {tail}" if tail else ""))
    # The linter may report on files the diff does not touch (mypy follows imports): not ours.
    return [msgspec.structs.replace(f, in_diff=f.line in changed[f.path]) for f in parsed if f.path in changed]


def _parse(linter: str, line: str, root: Path) -> LintFinding | None:
    """One `path:line[:column]: message` line as a finding, or None for any other output line.

    The rule code is taken from the front of the message (`F401 ...`) or, failing that, from a
    trailing `[code]` (mypy's `[name-defined]`, shellcheck's `[SC2086]`), which is then removed
    from the message. Severity words (`error:`, `warning:`) stay in the message.
    """
    match = _FINDING.match(line.strip())
    if match is None:
        return None
    path = _relative(match["path"].strip(), root)
    if path is None:
        return None
    message, code = match["msg"].strip(), ""
    if (coded := _LEADING_CODE.match(message) or _TRAILING_CODE.match(message)) is not None:
        message, code = coded["msg"], coded["code"]
    column = int(match["col"]) if match["col"] is not None else None
    return LintFinding(linter=linter, path=path, line=int(match["line"]), column=column, code=code, message=message)


def _relative(path: str, root: Path) -> str | None:
    """The root-relative POSIX form of a path a linter printed; None when it is outside root."""
    if os.path.isabs(path):
        # The linter sees its cwd resolved (symlinks followed); `root` may be spelt either way.
        for base in (root.absolute(), root.resolve()):
            with contextlib.suppress(ValueError):
                path = Path(path).relative_to(base).as_posix()
                break
        else:
            return None
    normal = posixpath.normpath(path)
    return None if normal == ".." or normal.startswith("../") else normal
