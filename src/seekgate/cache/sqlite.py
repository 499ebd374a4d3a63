"""The cache in one SQLite file (data_dir/cache.db): the default, with no service to run.

One connection, used only from one worker thread: the event loop never waits on the disk, and
the thread serialises every call, so no lock is needed. WAL journal with synchronous=NORMAL: a
crash of the process loses nothing committed; a power cut may lose the last entries, which for
a cache is only a few misses.

Expiry is checked on read (an expired entry is a miss, deleted there and then). The oldest
entries beyond `max_entries` are evicted every `evict_every` puts, so the table may overshoot
by that many between sweeps; "oldest" is the order of writing (SQLite's rowid, which a rewrite
of a key renews).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from seekgate.cache.base import StoreError

__all__ = ["SqliteStore"]

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    expires REAL NOT NULL
);
"""


class SqliteStore:
    def __init__(
        self,
        path: Path,
        max_entries: int,
        *,
        clock: Callable[[], float] = time.time,
        evict_every: int | None = None,
    ) -> None:
        """`clock` is wall time in seconds (entries outlive the process, so not a monotonic clock);
        `evict_every` defaults to 1% of max_entries (at least 1, at most 1000)."""
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._max = max_entries
        self._clock = clock
        self._evict_every = evict_every or min(1000, max(1, max_entries // 100))
        self._puts = 0
        self._closed = False
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=200")  # another gateway process on the same data_dir
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite {path}: {type(exc).__name__}: {exc}") from exc
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seekgate-cache")

    async def get(self, key: str) -> bytes | None:
        return await self._call(self._get, key)

    async def put(self, key: str, value: bytes, ttl_s: int) -> None:
        await self._call(self._put, key, value, ttl_s)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._thread, self._db.close)
        self._thread.shutdown(wait=False)

    async def _call(self, fn: Callable[..., _T], *args: object) -> _T:
        if self._closed:
            raise StoreError(f"the cache in {self._path} is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite {self._path}: {type(exc).__name__}: {exc}") from exc

    def _get(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value, expires FROM entries WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        value, expires = row
        if expires <= self._clock():
            self._db.execute("DELETE FROM entries WHERE key = ? AND expires = ?", (key, expires))
            return None
        return bytes(value)

    def _put(self, key: str, value: bytes, ttl_s: int) -> None:
        # REPLACE deletes and reinserts, so a rewritten key gets a new rowid: it is the newest again.
        self._db.execute(
            "INSERT OR REPLACE INTO entries (key, value, expires) VALUES (?, ?, ?)", (key, value, self._clock() + ttl_s)
        )
        self._puts += 1
        if self._puts % self._evict_every == 0:
            self._evict()

    def _evict(self) -> None:
        # count(*) walks the key index (small), and the delete reads only the rows it removes.
        (count,) = self._db.execute("SELECT count(*) FROM entries").fetchone()
        if count > self._max:
            self._db.execute(
                "DELETE FROM entries WHERE rowid IN (SELECT rowid FROM entries ORDER BY rowid LIMIT ?)", (count - self._max,)
            )
