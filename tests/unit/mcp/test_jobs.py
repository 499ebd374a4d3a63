"""Background jobs: an id at once, progress, cancel within a second, aborted after a restart."""

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from seekgate import errors
from seekgate.mcp.delegate import ChoreResult, Progress
from seekgate.mcp.jobs import JobNotFound, Jobs, owner_alive, process_owner


async def until(jobs: Jobs, job_id: str, *states: str, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = await jobs.status(job_id)
        if status["state"] in states:
            return status
        assert time.monotonic() < deadline, f"job stayed {status['state']}"
        await asyncio.sleep(0.01)


def test_start_returns_at_once_and_status_follows_the_job_to_its_result(tmp_path: Path):
    async def main() -> None:
        jobs = Jobs(tmp_path / "seekgate.db", progress_every_s=0)
        gate = asyncio.Event()

        async def work(progress: Progress) -> ChoreResult:
            progress(1, "read_file a.py")
            await gate.wait()
            progress(2, "finish")
            return ChoreResult(ok=True, answer="42", steps=2, tool_calls=2)

        job_id = await jobs.start({"task": "count", "mode": "intel"}, work)  # at once: the work waits on `gate`
        running = await until(jobs, job_id, "running")
        assert running["params"] == {"task": "count", "mode": "intel"} and running["result"] is None
        while (await jobs.status(job_id))["progress"]["step"] != 1:
            await asyncio.sleep(0.01)
        gate.set()
        done = await until(jobs, job_id, "done")
        assert done["result"]["answer"] == "42" and done["result"]["ok"] is True and done["error"] is None
        assert done["progress"] == {"step": 2, "note": "finish"}
        assert done["updated"] >= done["created"]
        await jobs.aclose()
        reopened = Jobs(tmp_path / "seekgate.db")
        assert (await reopened.status(job_id))["state"] == "done"  # it was on disk, not only in memory
        await reopened.aclose()

    asyncio.run(main())


def test_a_chore_that_fails_or_raises_is_failed(tmp_path: Path):
    async def main() -> None:
        jobs = Jobs(tmp_path / "seekgate.db")

        async def unfinished(progress: Progress) -> ChoreResult:
            return ChoreResult(ok=False, answer="looked at a.py", error="step limit: 12 model turns ran out")

        async def broken(progress: Progress) -> ChoreResult:
            raise errors.UpstreamUnavailable("backend x is unavailable")

        first = await until(jobs, await jobs.start({}, unfinished), "failed")
        assert first["error"] == "step limit: 12 model turns ran out" and first["result"]["answer"] == "looked at a.py"
        second = await until(jobs, await jobs.start({}, broken), "failed")
        assert second["error"] == "backend x is unavailable" and second["result"] is None
        await jobs.aclose()

    asyncio.run(main())


def test_cancel_stops_a_job_within_a_second_and_is_idempotent(tmp_path: Path):
    stopped: list[bool] = []

    async def forever(progress: Progress) -> ChoreResult:
        progress(1, "thinking")
        try:
            await asyncio.sleep(3600)
        finally:
            stopped.append(True)
        raise AssertionError("not reached")

    async def main() -> None:
        jobs = Jobs(tmp_path / "seekgate.db")
        job_id = await jobs.start({"task": "t"}, forever)
        while (await until(jobs, job_id, "running"))["progress"]["step"] != 1:
            await asyncio.sleep(0.01)
        status = await jobs.cancel(job_id)
        # "cancelled", not "running": the job ended within cancel's own one-second wait
        assert status["state"] == "cancelled" and status["error"] == "cancelled by request" and stopped == [True]
        again = await jobs.cancel(job_id)
        assert again["state"] == "cancelled" and again["updated"] == status["updated"]
        await jobs.aclose()

    asyncio.run(main())


def test_a_job_cancelled_before_it_ever_ran_is_cancelled(tmp_path: Path):
    ran: list[bool] = []

    async def work(progress: Progress) -> ChoreResult:
        ran.append(True)
        return ChoreResult(ok=True, answer="no")

    async def main() -> None:
        jobs = Jobs(tmp_path / "seekgate.db")
        job_id = await jobs.start({}, work)
        assert (await jobs.cancel(job_id))["state"] == "cancelled"  # its task had not taken a step yet
        late = await jobs.start({}, work)
        await jobs.aclose()
        reopened = Jobs(tmp_path / "seekgate.db")
        assert (await reopened.status(late))["error"] == "the server shut down while the job ran; it did not finish"
        await reopened.aclose()
        assert ran == []

    asyncio.run(main())


def test_cancelling_a_finished_job_reports_how_it_ended(tmp_path: Path):
    async def quick(progress: Progress) -> ChoreResult:
        return ChoreResult(ok=True, answer="done")

    async def main() -> None:
        jobs = Jobs(tmp_path / "seekgate.db")
        job_id = await jobs.start({}, quick)
        await until(jobs, job_id, "done")
        assert (await jobs.cancel(job_id))["state"] == "done"
        await jobs.aclose()

    asyncio.run(main())


def test_jobs_past_the_limit_wait_queued_and_can_be_cancelled_there(tmp_path: Path):
    async def forever(progress: Progress) -> ChoreResult:
        await asyncio.sleep(3600)
        raise AssertionError("not reached")

    async def main() -> None:
        jobs = Jobs(tmp_path / "seekgate.db", max_running=1)
        first = await jobs.start({}, forever)
        second = await jobs.start({}, forever)
        await until(jobs, first, "running")
        assert (await jobs.status(second))["state"] == "queued"
        assert (await jobs.cancel(second))["state"] == "cancelled"
        await jobs.aclose()
        reopened = Jobs(tmp_path / "seekgate.db")
        assert (await reopened.status(first))["state"] == "aborted"  # stopped by the shutdown
        await reopened.aclose()

    asyncio.run(main())


# Another process holding one running and one queued job in the same store, until it is killed.
_OWNER = """
import asyncio, sys
from pathlib import Path
from seekgate.mcp.jobs import Jobs

async def main():
    jobs = Jobs(Path(sys.argv[1]), max_running=1)
    async def forever(progress):
        await asyncio.sleep(3600)
    running = await jobs.start({"task": "t"}, forever)
    while (await jobs.status(running))["state"] != "running":
        await asyncio.sleep(0.01)
    queued = await jobs.start({"task": "u"}, forever)
    print(running, queued, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_a_store_shared_with_a_live_process_leaves_its_jobs_and_they_read_aborted_once_it_dies(tmp_path: Path):
    db = tmp_path / "seekgate.db"
    owner = subprocess.Popen([sys.executable, "-c", _OWNER, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        running, queued = owner.stdout.readline().split()

        async def while_alive() -> None:
            other = Jobs(db)  # a second session on the same data_dir
            assert [(await other.status(j))["state"] for j in (running, queued)] == ["running", "queued"]
            await other.aclose()

        asyncio.run(while_alive())
    finally:
        owner.kill()
        owner.wait()

    async def after_death() -> None:
        seen = Jobs(db)  # what a new process finds: the old one died without a word
        for job_id in (running, queued):
            status = await seen.status(job_id)
            assert status["state"] == "aborted" and status["error"] == "the server restarted while the job ran; it did not finish"
        assert (await seen.status(running))["params"] == {"task": "t"}
        await seen.aclose()

    asyncio.run(after_death())


def test_the_owner_of_a_job_is_this_process_and_a_dead_or_reused_pid_is_not(tmp_path: Path):
    me = process_owner()
    assert me.split(":")[-2] == str(os.getpid()) and owner_alive(me)
    host, pid, start = me.rsplit(":", 2)
    assert not owner_alive(f"{host}:{pid}:{int(start or 0) + 1}")  # the pid, reused by a later process
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    gone = process_owner(child.pid)
    child.wait()
    assert not owner_alive(gone)
    assert owner_alive(f"another-host:{pid}:{start}")  # cannot be told from here: left alone
    assert not owner_alive("")  # rows written before owners were recorded


def test_jobs_left_running_when_the_loop_stops_are_recorded_aborted(tmp_path: Path):
    async def forever(progress: Progress) -> ChoreResult:
        await asyncio.sleep(3600)
        raise AssertionError("not reached")

    async def left() -> str:
        jobs = Jobs(tmp_path / "seekgate.db")
        job_id = await jobs.start({}, forever)
        await until(jobs, job_id, "running")
        return job_id  # no aclose: asyncio.run cancels the job's task on the way out

    job_id = asyncio.run(left())

    async def after() -> None:
        jobs = Jobs(tmp_path / "seekgate.db")
        status = await jobs.status(job_id)
        assert status["state"] == "aborted" and "shut down" in status["error"]
        await jobs.aclose()

    asyncio.run(after())


def test_an_unknown_job_id_is_a_clear_key_error(tmp_path: Path):
    async def main() -> None:
        jobs = Jobs(tmp_path / "seekgate.db")
        with pytest.raises(KeyError) as info:
            await jobs.status("job_nope")
        assert isinstance(info.value, JobNotFound) and isinstance(info.value, errors.NotFound)
        assert str(info.value) == "no scalpel job 'job_nope'; job ids come from scalpel with background: true"
        with pytest.raises(JobNotFound):
            await jobs.cancel("job_nope")
        await jobs.aclose()

    asyncio.run(main())


def test_a_store_from_before_owners_were_recorded_gains_the_column_and_its_unfinished_jobs_read_aborted(tmp_path: Path):
    import sqlite3

    db = tmp_path / "seekgate.db"
    with sqlite3.connect(db) as old:
        old.execute(
            "CREATE TABLE scalpel_jobs (id TEXT PRIMARY KEY, created REAL NOT NULL, params TEXT NOT NULL, state TEXT NOT NULL,"
            " progress TEXT NOT NULL, result TEXT, error TEXT, updated REAL NOT NULL)"
        )
        old.execute("INSERT INTO scalpel_jobs VALUES ('job_old', 1, '{}', 'running', '{\"step\": 2, \"note\": \"x\"}', NULL, NULL, 1)")

    async def main() -> dict[str, Any]:
        jobs = Jobs(db)
        try:
            return await jobs.status("job_old")
        finally:
            await jobs.aclose()

    assert asyncio.run(main())["state"] == "aborted"
