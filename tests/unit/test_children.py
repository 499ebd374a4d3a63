"""Child processes: output collected, and on timeout or cancel killed with everything they started."""

import asyncio
import os
import sys
from pathlib import Path

import pytest

from seekgate.children import ChildTimeout, run_child

# A child that starts a grandchild (which records its pid) and then waits for it.
SPAWNS = (
    "import subprocess, sys, pathlib; "
    "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
    "pathlib.Path('grandchild.pid').write_text(str(p.pid)); p.wait()"
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie that its (killed) parent can no longer reap still answers; it is not running
    return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"


async def wait_for_file(path: Path) -> int:
    while not path.exists() or not path.read_text():
        await asyncio.sleep(0.05)
    return int(path.read_text())


def test_output_and_exit_status_are_returned(tmp_path: Path):
    done = asyncio.run(run_child([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"], cwd=tmp_path))
    assert (done.returncode, done.stdout, done.stderr) == (3, b"out\n", b"err\n")
    merged = asyncio.run(run_child("echo a; echo b >&2", cwd=tmp_path, merge_stderr=True))
    assert (merged.stdout, merged.stderr) == (b"a\nb\n", b"")


def test_a_timeout_kills_the_child_and_what_it_started(tmp_path: Path):
    async def scenario() -> int:
        task = asyncio.create_task(run_child([sys.executable, "-c", SPAWNS], cwd=tmp_path, timeout_s=30))
        pid = await wait_for_file(tmp_path / "grandchild.pid")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return pid

    assert not alive(asyncio.run(scenario()))

    async def timed_out() -> None:
        await run_child([sys.executable, "-c", SPAWNS], cwd=tmp_path, timeout_s=5)

    (tmp_path / "grandchild.pid").unlink()
    with pytest.raises(ChildTimeout, match="timed out after 5 s"):
        asyncio.run(timed_out())
    assert not alive(int((tmp_path / "grandchild.pid").read_text()))


def test_a_missing_program_is_an_os_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        asyncio.run(run_child(["no-such-program-xyz"], cwd=tmp_path))
