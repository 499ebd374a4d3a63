"""ResponseCache over a real SQLite store: hits and misses counted, only finished answers kept,
and a failing store or an unreadable entry is a miss and a warning, never an exception."""

import asyncio
import logging
import time
from pathlib import Path

import pytest

from seekgate.cache import CacheStats, ResponseCache, StoreError, make_cache, storable
from seekgate.cache.sqlite import SqliteStore
from seekgate.core.types import ChatResponse, FinishReason, ToolCall, Usage
from seekgate.settings import CacheSettings, ConfigError

ANSWER = ChatResponse(
    model="coder@1",
    text="Use `functools.cache`.\n",
    finish_reason=FinishReason.STOP,
    usage=Usage(input_tokens=40, output_tokens=7),
    tool_calls=(ToolCall(id="call_1", name="grep", arguments='{"q": "cache"}'),),
    backend="gpu-1",
    stop_sequence="\n\n",
    context={"repo": "r@abc", "citations": [{"path": "a.py", "line": 3}]},
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Breakable:
    """A real SqliteStore that a test can cut off, as an outage would, and count the calls to."""

    def __init__(self, inner: SqliteStore) -> None:
        self.inner = inner
        self.broken = False
        self.calls = 0

    async def get(self, key: str) -> bytes | None:
        self.calls += 1
        if self.broken:
            raise StoreError("connection refused")
        return await self.inner.get(key)

    async def put(self, key: str, value: bytes, ttl_s: int) -> None:
        self.calls += 1
        if self.broken:
            raise StoreError("connection refused")
        await self.inner.put(key, value, ttl_s)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_a_stored_answer_is_a_hit_with_every_field_and_others_are_misses(tmp_path: Path):
    async def scenario() -> None:
        cache = ResponseCache(SqliteStore(tmp_path / "cache.db", 100), 60)
        assert await cache.lookup("k") is None
        await cache.store("k", ANSWER)
        assert await cache.lookup("k") == ANSWER
        assert await cache.lookup("other") is None
        assert cache.stats == CacheStats(hits=1, misses=2, stored=1)
        await cache.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize("reason", list(FinishReason))
def test_only_answers_that_ended_normally_are_stored(tmp_path: Path, reason: FinishReason):
    answer = ChatResponse(model="m", text="t", finish_reason=reason, usage=Usage())
    normal = reason in (FinishReason.STOP, FinishReason.LENGTH, FinishReason.TOOL_CALLS)
    assert storable(answer) is normal

    async def scenario() -> None:
        cache = ResponseCache(SqliteStore(tmp_path / "cache.db", 100), 60)
        await cache.store("k", answer)
        assert (await cache.lookup("k") is not None) is normal
        assert (cache.stats.stored, cache.stats.skipped) == ((1, 0) if normal else (0, 1))
        await cache.aclose()

    asyncio.run(scenario())


def test_an_unreadable_entry_is_a_miss_and_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    async def scenario() -> None:
        store = SqliteStore(tmp_path / "cache.db", 100)
        cache = ResponseCache(store, 60)
        await store.put("k" * 64, b"\xc1 not msgpack", 60)
        with caplog.at_level(logging.WARNING, logger="seekgate.cache"):
            assert await cache.lookup("k" * 64) is None
        assert cache.stats == CacheStats(misses=1, failures=1)
        await cache.store("k" * 64, ANSWER)  # the next answer overwrites it
        assert await cache.lookup("k" * 64) == ANSWER
        await cache.aclose()

    asyncio.run(scenario())
    assert [r.getMessage() for r in caplog.records] == [
        f"cache entry {'k' * 16} cannot be read (MessagePack data is malformed: invalid opcode '\\xc1' (byte 0)); treated as a miss"
    ]


def test_a_failing_store_is_a_miss_warned_once_and_rested_until_the_backoff_ends(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    clock = Clock()

    async def scenario() -> None:
        store = Breakable(SqliteStore(tmp_path / "cache.db", 100))
        cache = ResponseCache(store, 60, outage_backoff_s=5.0, clock=clock)
        await cache.store("k", ANSWER)
        store.broken = True
        with caplog.at_level(logging.WARNING, logger="seekgate.cache"):
            assert await cache.lookup("k") is None
            calls = store.calls
            clock.now += 4.9  # resting: the store is not asked
            assert await cache.lookup("k") is None
            await cache.store("k2", ANSWER)
            assert store.calls == calls
            clock.now += 0.1  # asked again, still failing: no second warning
            assert await cache.lookup("k") is None
            assert store.calls == calls + 1
            store.broken = False
            clock.now += 5.0
            assert await cache.lookup("k") == ANSWER
        assert cache.stats == CacheStats(hits=1, misses=3, stored=1, failures=2)
        await cache.aclose()

    asyncio.run(scenario())
    assert [r.getMessage() for r in caplog.records] == [
        "response cache is off: its store fails (connection refused); every request is a miss until it answers",
        "response cache is on again: its store answers",
    ]


def test_a_closed_store_is_a_miss_not_an_exception(tmp_path: Path):
    async def scenario() -> None:
        cache = ResponseCache(SqliteStore(tmp_path / "cache.db", 100), 60, outage_backoff_s=0)
        await cache.aclose()
        await cache.store("k", ANSWER)
        assert await cache.lookup("k") is None
        assert cache.stats == CacheStats(misses=1, failures=2)

    asyncio.run(scenario())


def test_the_ttl_must_be_at_least_a_second(tmp_path: Path):
    with pytest.raises(ValueError, match="at least 1 second"):
        ResponseCache(SqliteStore(tmp_path / "cache.db", 1), 0)


def test_make_cache_is_none_when_disabled(tmp_path: Path):
    assert make_cache(CacheSettings(enabled=False), tmp_path) is None
    assert not (tmp_path / "cache.db").exists()


def test_make_cache_keeps_sqlite_entries_in_data_dir_for_the_configured_ttl(tmp_path: Path):
    cache = make_cache(CacheSettings(ttl_seconds=3600, max_entries=5), tmp_path / "data")
    assert cache is not None
    asyncio.run(cache.store("k", ANSWER))
    asyncio.run(cache.aclose())

    async def read(ahead_s: float) -> ChatResponse | None:
        later = ResponseCache(SqliteStore(tmp_path / "data" / "cache.db", 5, clock=lambda: time.time() + ahead_s), 60)
        try:
            return await later.lookup("k")
        finally:
            await later.aclose()

    assert asyncio.run(read(1800)) == ANSWER
    assert asyncio.run(read(3601)) is None


def test_make_cache_for_redis_without_its_url_names_the_variable(tmp_path: Path):
    settings = CacheSettings(store="redis", redis_url="env::SEEKGATE_TEST_CACHE_URL_THAT_IS_NEVER_SET")
    with pytest.raises(
        ConfigError,
        match='cache.store = "redis" needs a Redis URL .*set the environment variable SEEKGATE_TEST_CACHE_URL_THAT_IS_NEVER_SET',
    ):
        make_cache(settings, tmp_path)


def test_make_cache_with_a_redis_url_it_cannot_use_says_so_without_the_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SEEKGATE_TEST_CACHE_BAD_URL", "http://user:hunter2@cache.internal:6379")
    settings = CacheSettings(store="redis", redis_url="env::SEEKGATE_TEST_CACHE_BAD_URL")
    with pytest.raises(
        ConfigError, match=r"cache.redis_url: the Redis URL in env::SEEKGATE_TEST_CACHE_BAD_URL cannot be used"
    ) as info:
        make_cache(settings, tmp_path)
    assert "hunter2" not in str(info.value)


def test_make_cache_on_a_file_that_is_not_a_database_names_the_file_and_the_fix(tmp_path: Path):
    (tmp_path / "cache.db").write_bytes(b"this is not an SQLite database, it is " * 100)
    with pytest.raises(ConfigError, match=r"cannot open .*cache.db \(SQLite .*file is not a database\); delete the file"):
        make_cache(CacheSettings(), tmp_path)
