"""Background scalpel jobs: an id at once, progress while it runs, cancel within a second, and
after a restart, jobs that were queued or running are reported as aborted, not lost.

    queued -> running -> done | failed | cancelled
    queued | running  -> aborted        (the server stopped or restarted while it ran)

Several processes may share one store (two `seekgate mcp` sessions, or `serve` beside `mcp`):
each row records the process that owns the job (host, pid and the pid's start time, so a reused
pid is not mistaken for it), and only jobs whose owner is gone are marked aborted, when a store
opens and when such a job's status is read. Rows owned on another host are left as they are:
this host cannot tell whether their process lives.

A job that returns a result with ok=False is `failed`, with its result kept; one that raises is
`failed` with the error only.

Rows live in SQLite (table scalpel_jobs, beside the other tables in the gateway's seekgate.db;
WAL, each write committed before it returns). Reads and writes run on a thread, so the event
loop never waits on the disk; only construction (the schema and the restart sweep, once, at
start-up) runs inline. Progress is kept in memory as it comes and written at most every
`progress_every_s`, so a chatty loop costs no disk time; status() of a live job shows the
in-memory progress.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec

from seekgate import errors
from seekgate.mcp.delegate import ChoreResult, Progress

__all__ = ["CANCEL_WAIT_S", "JobNotFound", "JobState", "Jobs", "Work", "owner_alive", "process_owner"]

log = logging.getLogger("seekgate.mcp")

JobState = Literal["queued", "running", "done", "failed", "cancelled", "aborted"]
Work = Callable[[Progress], Awaitable[ChoreResult]]
CANCEL_WAIT_S = 1.0
RESTARTED = "the server restarted while the job ran; it did not finish"
SHUT_DOWN = "the server shut down while the job ran; it did not finish"
CANCELLED = "cancelled by request"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scalpel_jobs (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled', 'aborted')),
    progress TEXT NOT NULL,
    result TEXT,
    error TEXT,
    updated REAL NOT NULL,
    owner TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS scalpel_jobs_state ON scalpel_jobs (state);
"""
_COLUMNS = "id, created, params, state, progress, result, error, updated"
_UNFINISHED = "state IN ('queued', 'running')"


def process_owner(pid: int | None = None) -> str:
    """`host:pid:start` of a process (this one by default): what a job row records as its owner."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux); "" where /proc has none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]  # field 22; the name before ")" may hold spaces


def owner_alive(owner: str) -> bool:
    """Whether the process that recorded `owner` still runs (True when it cannot be told)."""
    parts = owner.split(":")
    if len(parts) < 3 or not parts[-2].isdigit():
        return False  # rows from before owners were recorded: their process is long gone
    host, pid, start = ":".join(parts[:-2]), int(parts[-2]), parts[-1]
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    return _start_time(pid) == start


class JobNotFound(errors.NotFound, KeyError):
    """No job has this id (a KeyError too, for callers that look jobs up like a mapping)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"no scalpel job {job_id!r}; job ids come from scalpel with background: true", param="job_id", code="job_not_found"
        )

    def __str__(self) -> str:
        return self.message


@dataclass
class _Live:
    """A job of this process, while its task runs."""

    progress: dict[str, Any] = field(default_factory=lambda: {"step": 0, "note": "queued"})
    task: asyncio.Task[None] | None = None
    ending: JobState = "aborted"
    """What a cancel of its task means: `cancelled` when cancel() asked; otherwise the server is
    stopping (aclose, or the event loop shutting down)."""
    started: bool = False
    """Its task began: a task cancelled before its first step never runs its own handlers."""
    flushed: float = 0.0
    flushing: asyncio.Task[None] | None = None


class Jobs:
    def __init__(
        self, store_path: Path, *, max_running: int = 2, progress_every_s: float = 0.5, shutdown_wait_s: float = 5.0
    ) -> None:
        store_path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(store_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        if "owner" not in {row[1] for row in self._db.execute("PRAGMA table_info(scalpel_jobs)")}:
            self._db.execute("ALTER TABLE scalpel_jobs ADD COLUMN owner TEXT NOT NULL DEFAULT ''")
        self._owner = process_owner()
        self._lock = threading.Lock()
        self._open = True
        self._live: dict[str, _Live] = {}
        self._slots = asyncio.Semaphore(max_running)
        self._every = progress_every_s
        self._shutdown_wait_s = shutdown_wait_s
        self._abort_orphans(self._run(f"SELECT id, owner FROM scalpel_jobs WHERE {_UNFINISHED}"))

    def _abort_orphans(self, rows: list[tuple[Any, ...]]) -> None:
        """Mark aborted the unfinished jobs, among `rows` of (id, owner), whose process is gone."""
        for job_id, owner in rows:
            if owner != self._owner and not owner_alive(owner):
                self._run(f"UPDATE scalpel_jobs SET state = 'aborted', error = ?, updated = ? WHERE id = ? AND {_UNFINISHED}",
                          (RESTARTED, time.time(), job_id))  # fmt: skip

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            if not self._open:  # a job still ending after aclose: the next start sweeps its row
                return []
            return self._db.execute(sql, args).fetchall()

    async def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        """A write that lands even when its job is cancelled meanwhile (the thread cannot be
        stopped anyway): so a job's writes land in order, and status after its end is final."""
        write = asyncio.ensure_future(asyncio.to_thread(self._run, sql, args))
        try:
            await asyncio.shield(write)
        except asyncio.CancelledError:
            await asyncio.wait({write})
            raise

    async def start(self, params: dict[str, Any], work: Work) -> str:
        """Record the job and start `work(progress)` on a task; returns its id at once."""
        if not self._open:
            raise errors.Overloaded("scalpel jobs are closed: the server is shutting down")
        try:
            encoded = _json(params)
        except (TypeError, msgspec.EncodeError) as exc:
            raise errors.InvalidRequest(f"job params must be JSON data: {exc}", param="params") from None
        job_id = "job_" + os.urandom(12).hex()
        live = _Live()
        now = time.time()
        await asyncio.to_thread(
            self._run,
            f"INSERT INTO scalpel_jobs ({_COLUMNS}, owner) VALUES (?, ?, ?, 'queued', ?, NULL, NULL, ?, ?)",
            (job_id, now, encoded, _json(live.progress), now, self._owner),
        )
        self._live[job_id] = live
        live.task = asyncio.create_task(self._drive(job_id, live, work), name=f"scalpel {job_id}")
        return job_id

    async def _drive(self, job_id: str, live: _Live, work: Work) -> None:
        live.started = True
        try:
            try:
                async with self._slots:
                    live.progress = {"step": 0, "note": "running"}
                    await self._write(
                        "UPDATE scalpel_jobs SET state = 'running', progress = ?, updated = ? WHERE id = ?",
                        (_json(live.progress), time.time(), job_id),
                    )
                    result = await work(lambda step, note: self._progress(job_id, live, step, note))
            except asyncio.CancelledError:
                await self._end(job_id, live, live.ending, None, CANCELLED if live.ending == "cancelled" else SHUT_DOWN)
                raise
            except Exception as exc:  # the job's boundary: the failure becomes its recorded end, never lost
                log.exception("scalpel job %s failed", job_id)
                message = exc.message if isinstance(exc, errors.SeekgateError) else f"{type(exc).__name__}: {exc}"
                await self._end(job_id, live, "failed", None, message)
                return
            await self._end(job_id, live, "done" if result.ok else "failed", result.to_dict(), result.error)
        finally:
            self._live.pop(job_id, None)

    def _progress(self, job_id: str, live: _Live, step: int, note: str) -> None:
        live.progress = {"step": step, "note": note}
        now = time.monotonic()
        if live.flushing is None and now - live.flushed >= self._every:
            live.flushed = now
            live.flushing = asyncio.create_task(self._flush(job_id, live))

    async def _flush(self, job_id: str, live: _Live) -> None:
        try:
            # Only while running: a late write never undoes the final state.
            await self._write(
                "UPDATE scalpel_jobs SET progress = ?, updated = ? WHERE id = ? AND state = 'running'",
                (_json(live.progress), time.time(), job_id),
            )
        finally:
            live.flushing = None

    async def _end(self, job_id: str, live: _Live, state: JobState, result: dict[str, Any] | None, error: str | None) -> None:
        if live.flushing is not None:
            await asyncio.wait({live.flushing})
        await self._write(
            "UPDATE scalpel_jobs SET state = ?, progress = ?, result = ?, error = ?, updated = ? WHERE id = ?",
            (state, _json(live.progress), None if result is None else _json(result), error, time.time(), job_id),
        )

    async def status(self, job_id: str) -> dict[str, Any]:
        """id, state, params, progress ({step, note}), result (the chore's, when it ended with
        one), error, created and updated (Unix seconds). JobNotFound for an unknown id."""
        rows = await asyncio.to_thread(self._run, f"SELECT {_COLUMNS}, owner FROM scalpel_jobs WHERE id = ?", (job_id,))
        if not rows:
            raise JobNotFound(job_id)
        if rows[0][3] in ("queued", "running") and job_id not in self._live:  # another process's job: is it still there?
            await asyncio.to_thread(self._abort_orphans, [(job_id, rows[0][-1])])
            rows = await asyncio.to_thread(self._run, f"SELECT {_COLUMNS}, owner FROM scalpel_jobs WHERE id = ?", (job_id,))
        out = _row(rows[0][:-1])
        live = self._live.get(job_id)
        if live is not None and out["state"] == "running":
            out["progress"] = dict(live.progress)  # newer than the last throttled write
        return out

    async def cancel(self, job_id: str) -> dict[str, Any]:
        """Stop the job and wait up to a second for it to end; its status after. Cancelling an
        ended job changes nothing and reports how it ended. An edit in flight is let finish
        its rollback: should that take longer, the job stays `running` a little longer, and says so."""
        live = self._live.get(job_id)
        if live is not None and live.task is not None and not live.task.done():
            live.ending = "cancelled"
            live.task.cancel()
            await asyncio.wait({live.task}, timeout=CANCEL_WAIT_S)
            if not live.task.done():
                live.progress = {**live.progress, "note": "cancelling: waiting for the edit in flight to roll back"}
            await self._unstarted(job_id, live)
        return await self.status(job_id)

    async def _unstarted(self, job_id: str, live: _Live) -> None:
        """Record the end of a job whose task was cancelled before it ever ran."""
        if live.task is not None and live.task.done() and not live.started:
            self._live.pop(job_id, None)
            await self._end(job_id, live, live.ending, None, CANCELLED if live.ending == "cancelled" else SHUT_DOWN)

    async def aclose(self) -> None:
        """Stop every job of this process (recorded as aborted) and close the store."""
        tasks = []
        for live in list(self._live.values()):
            if live.task is not None and not live.task.done():
                live.task.cancel()
                tasks.append(live.task)
        if tasks:
            await asyncio.wait(tasks, timeout=self._shutdown_wait_s)
        for job_id, live in list(self._live.items()):
            await self._unstarted(job_id, live)
        with self._lock:
            self._open = False
            self._db.close()


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _row(row: tuple[Any, ...]) -> dict[str, Any]:
    job_id, created, params, state, progress, result, error, updated = row
    return {
        "id": job_id,
        "state": state,
        "params": msgspec.json.decode(params),
        "progress": msgspec.json.decode(progress),
        "result": None if result is None else msgspec.json.decode(result),
        "error": error,
        "created": created,
        "updated": updated,
    }
