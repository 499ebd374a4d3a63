"""Child processes run without blocking the event loop, and never left behind.

Each child gets its own process group, so that a kill also takes whatever it started (a test
runner's workers, a linter's daemons). On timeout the group is killed and reaped; when the
awaiting task is cancelled (the client went away) the same happens before the cancellation
goes on. Used by scalpel's verify command, the review's linters and `git diff`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence
from pathlib import Path

import msgspec

__all__ = ["ChildTimeout", "Finished", "run_child"]


class ChildTimeout(Exception):
    """The child ran past its time and was killed with its process group."""


class Finished(msgspec.Struct, frozen=True):
    returncode: int
    """Negative: killed by that signal."""
    stdout: bytes
    stderr: bytes
    """Empty when stderr was merged into stdout."""


async def run_child(
    argv: Sequence[str] | str, *, cwd: Path, timeout_s: float | None = None, merge_stderr: bool = False
) -> Finished:
    """Run `argv` (a program and its arguments; a string runs through the shell) in `cwd`, with
    no stdin. Raises OSError when it cannot start, ChildTimeout past `timeout_s`."""
    streams = {
        "cwd": cwd,
        "stdin": asyncio.subprocess.DEVNULL,
        "stdout": asyncio.subprocess.PIPE,
        "stderr": asyncio.subprocess.STDOUT if merge_stderr else asyncio.subprocess.PIPE,
        "start_new_session": True,
    }
    if isinstance(argv, str):
        proc = await asyncio.create_subprocess_shell(argv, **streams)  # type: ignore[arg-type]
    else:
        proc = await asyncio.create_subprocess_exec(*argv, **streams)  # type: ignore[arg-type]
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        await _kill(proc)
        raise ChildTimeout(f"timed out after {timeout_s:g} s and was killed") from None
    except BaseException:
        await _kill(proc)
        raise
    return Finished(returncode=proc.returncode or 0, stdout=stdout or b"", stderr=stderr or b"")


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()  # reaped before unwinding; SIGKILL makes this immediate
