"""The response cache in a real redis-server: entries under the versioned prefix with Redis's own
TTL, shared by two gateways, and a Redis that stops is a miss and a warning, never an error."""

import asyncio
import logging
from pathlib import Path

import pytest
import redis

from seekgate.cache import CacheStats, ResponseCache, cache_key, make_cache
from seekgate.cache.redis import PREFIX, RedisStore
from seekgate.core.types import ChatRequest, ChatResponse, FinishReason, Message, Role, Sampling, TextPart, ToolCall, Usage
from seekgate.settings import CacheSettings
from tests.fixtures.redis import redis_db, redis_server, redis_url  # noqa: F401  (fixtures; see tests/fixtures/redis.py)

REQUEST = ChatRequest(
    model="auto",
    messages=(Message(role=Role.USER, content=(TextPart("Explain functools.cache"),)),),
    sampling=Sampling(temperature=0.0),
)
KEY = cache_key(REQUEST, task="explain", pack="explain@v1", model="coder@2025-01-10", context=None)
ANSWER = ChatResponse(
    model="coder@2025-01-10",
    text="It memoises a function: " + "each call's result is kept by its arguments. " * 40,
    finish_reason=FinishReason.TOOL_CALLS,
    usage=Usage(input_tokens=12, output_tokens=400),
    tool_calls=(ToolCall(id="call_1", name="read_file", arguments='{"path": "functools.py"}'),),
    backend="gpu-0",
)


def test_an_answer_stored_in_redis_is_a_hit_for_another_replica(redis_db: str):  # noqa: F811
    async def scenario() -> None:
        one, two = ResponseCache(RedisStore(redis_db), 600), ResponseCache(RedisStore(redis_db), 600)
        assert await two.lookup(KEY) is None
        await one.store(KEY, ANSWER)
        assert await two.lookup(KEY) == ANSWER
        assert await two.lookup("0" * 64) is None
        assert (one.stats, two.stats) == (CacheStats(stored=1), CacheStats(hits=1, misses=2))
        await one.aclose()
        await two.aclose()

    asyncio.run(scenario())
    client = redis.Redis.from_url(redis_db)
    try:
        assert client.keys("*") == [f"seekgate:cache:v1:{KEY}".encode()]
    finally:
        client.close()


def test_an_entry_carries_the_ttl_in_redis(redis_db: str):  # noqa: F811
    asyncio.run(_store(ResponseCache(RedisStore(redis_db), 86_400)))
    client = redis.Redis.from_url(redis_db)
    try:
        assert 86_390 <= client.ttl(PREFIX + KEY) <= 86_400
    finally:
        client.close()


async def _store(cache: ResponseCache) -> None:
    await cache.store(KEY, ANSWER)
    await cache.aclose()


def test_make_cache_uses_the_redis_url_from_the_environment(redis_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # noqa: F811
    monkeypatch.setenv("SEEKGATE_TEST_CACHE_REDIS_URL", redis_db)
    cache = make_cache(CacheSettings(store="redis", redis_url="env::SEEKGATE_TEST_CACHE_REDIS_URL", ttl_seconds=120), tmp_path)
    assert cache is not None
    assert not (tmp_path / "cache.db").exists()
    asyncio.run(_store(cache))
    client = redis.Redis.from_url(redis_db)
    try:
        assert 110 <= client.ttl(PREFIX + KEY) <= 120
    finally:
        client.close()


def test_a_stopped_redis_is_a_miss_and_one_warning_and_the_cache_recovers(caplog: pytest.LogCaptureFixture):
    async def scenario() -> None:
        with redis_server() as url:
            cache = ResponseCache(RedisStore(url), 600, outage_backoff_s=0)
            await cache.store(KEY, ANSWER)
            assert await cache.lookup(KEY) == ANSWER
        # the server is gone
        with caplog.at_level(logging.WARNING, logger="seekgate.cache"):
            assert [await cache.lookup(KEY) for _ in range(3)] == [None] * 3
            await cache.store(KEY, ANSWER)
        warnings = [r.getMessage() for r in caplog.records if r.name == "seekgate.cache"]
        assert len(warnings) == 1 and warnings[0].startswith("response cache is off: its store fails (Redis: ConnectionError")
        assert cache.stats == CacheStats(hits=1, misses=3, stored=1, failures=4)
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        with redis_server(port):  # a new, empty server
            assert await cache.lookup(KEY) is None
            await cache.store(KEY, ANSWER)
            assert await cache.lookup(KEY) == ANSWER
            assert caplog.records[-1].getMessage() == "response cache is on again: its store answers"
            await cache.aclose()

    asyncio.run(scenario())
