"""SqliteStore on a real file: values by key, expiry on read, eviction of the oldest, persistence."""

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from seekgate.cache import StoreError
from seekgate.cache.sqlite import SqliteStore


class Clock:
    """Wall time that moves only when a test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rows(path: Path) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [key for (key,) in db.execute("SELECT key FROM entries ORDER BY rowid")]
    finally:
        db.close()


def test_a_value_put_is_got_back_and_an_unknown_key_is_none(tmp_path: Path):
    async def scenario() -> None:
        store = SqliteStore(tmp_path / "cache.db", 100)
        await store.put("k1", b"\x00value\xff", 60)
        assert await store.get("k1") == b"\x00value\xff"
        assert await store.get("k2") is None
        await store.put("k1", b"newer", 60)
        assert await store.get("k1") == b"newer"
        await store.aclose()

    asyncio.run(scenario())


def test_an_entry_expires_after_its_ttl_and_is_deleted_when_read(tmp_path: Path):
    clock = Clock()
    path = tmp_path / "cache.db"

    async def scenario() -> None:
        store = SqliteStore(path, 100, clock=clock)
        await store.put("k", b"v", 1)
        clock.now += 0.999
        assert await store.get("k") == b"v"
        assert rows(path) == ["k"]
        clock.now += 0.001
        assert await store.get("k") is None
        assert rows(path) == []
        await store.aclose()

    asyncio.run(scenario())


def test_the_oldest_entries_beyond_max_entries_are_evicted(tmp_path: Path):
    path = tmp_path / "cache.db"

    async def scenario() -> None:
        store = SqliteStore(path, 3)
        for i in range(6):
            await store.put(f"k{i}", b"v", 60)
        assert rows(path) == ["k3", "k4", "k5"]
        assert [await store.get(f"k{i}") for i in range(6)] == [None, None, None, b"v", b"v", b"v"]
        await store.aclose()

    asyncio.run(scenario())


def test_a_rewritten_entry_counts_as_new_for_eviction(tmp_path: Path):
    path = tmp_path / "cache.db"

    async def scenario() -> None:
        store = SqliteStore(path, 3)
        for name in ("a", "b", "c", "a", "d"):
            await store.put(name, name.encode(), 60)
        assert rows(path) == ["c", "a", "d"]
        await store.aclose()

    asyncio.run(scenario())


def test_eviction_is_amortised_over_evict_every_puts(tmp_path: Path):
    path = tmp_path / "cache.db"

    async def scenario() -> None:
        store = SqliteStore(path, 3, evict_every=4)
        for i in range(6):
            await store.put(f"k{i}", b"v", 60)
        # The 4th put swept down to 3 entries; the 5th and 6th wait for the 8th.
        assert rows(path) == ["k1", "k2", "k3", "k4", "k5"]
        await store.put("k6", b"v", 60)
        await store.put("k7", b"v", 60)
        assert rows(path) == ["k5", "k6", "k7"]
        await store.aclose()

    asyncio.run(scenario())


def test_entries_outlive_the_store_that_wrote_them(tmp_path: Path):
    path = tmp_path / "sub" / "cache.db"

    async def write() -> None:
        store = SqliteStore(path, 10)
        await store.put("k", b"kept", 60)
        await store.aclose()

    async def read() -> bytes | None:
        store = SqliteStore(path, 10)
        try:
            return await store.get("k")
        finally:
            await store.aclose()

    asyncio.run(write())
    assert asyncio.run(read()) == b"kept"


def test_a_closed_store_raises_store_error(tmp_path: Path):
    async def scenario() -> None:
        store = SqliteStore(tmp_path / "cache.db", 10)
        await store.aclose()
        await store.aclose()  # twice is harmless
        with pytest.raises(StoreError, match="closed"):
            await store.get("k")
        with pytest.raises(StoreError, match="closed"):
            await store.put("k", b"v", 60)

    asyncio.run(scenario())


def test_a_database_error_is_raised_as_store_error(tmp_path: Path):
    path = tmp_path / "cache.db"

    async def scenario() -> None:
        store = SqliteStore(path, 10)
        other = sqlite3.connect(path)
        other.execute("DROP TABLE entries")
        other.close()
        with pytest.raises(StoreError, match="no such table"):
            await store.get("k")
        await store.aclose()

    asyncio.run(scenario())


def test_the_event_loop_is_not_the_thread_that_touches_the_disk(tmp_path: Path):
    seen: list[str] = []

    def clock() -> float:
        seen.append(threading.current_thread().name)
        return 1_700_000_000.0

    async def scenario() -> None:
        store = SqliteStore(tmp_path / "cache.db", 10, clock=clock)
        await store.put("k", b"v", 60)
        await store.get("k")
        await store.aclose()

    asyncio.run(scenario())
    assert seen and all(name.startswith("seekgate-cache") for name in seen)
