"""RedisLimiter against a real redis-server: the behaviours of tests/unit/guards/test_limits.py,
limits shared by two replicas, keys that expire once they no longer matter, and failing open.

Redis keeps its own clock, so these tests choose limits that refill far slower than a test runs
(3 requests or 600 tokens a minute): the refill during a test cannot change an outcome."""

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable

import pytest
import redis

from seekgate import errors
from seekgate.guards.limits import Limit, RedisLimiter
from tests.fixtures.redis import redis_db, redis_server, redis_url  # noqa: F401  (fixtures; see tests/fixtures/redis.py)


async def admitted(limiter: RedisLimiter, scope: str, limit: Limit, tokens: int = 0) -> bool:
    try:
        await limiter.acquire(scope, limit, tokens)
    except errors.RateLimited:
        return False
    return True


def run(url: str, scenario: Callable[[RedisLimiter], Awaitable[None]]) -> None:
    async def go() -> None:
        limiter = RedisLimiter(url)
        try:
            await scenario(limiter)
        finally:
            await limiter.aclose()

    asyncio.run(go())


def test_a_burst_up_to_the_limit_is_admitted_and_the_next_is_refused(redis_db: str):
    limit = Limit(requests_per_minute=3)

    async def scenario(limiter: RedisLimiter) -> None:
        assert [await admitted(limiter, "key:key_a", limit) for _ in range(3)] == [True] * 3
        with pytest.raises(errors.RateLimited) as info:
            await limiter.acquire("key:key_a", limit, 0)
        seconds = int(info.value.headers["Retry-After"])
        assert 1 <= seconds <= 20  # one request every 20 s
        assert re.fullmatch(r"rate limit for key:key_a: 3 requests per minute; retry in \d+ s", info.value.message)

    run(redis_db, scenario)


def test_a_request_draws_on_all_its_buckets_or_none(redis_db: str):
    caller, task = ("key:key_a", Limit(requests_per_minute=3)), ("task:chat", Limit(tokens_per_minute=600))

    async def scenario(limiter: RedisLimiter) -> None:
        await limiter.acquire_all((caller, task), 500)
        with pytest.raises(errors.RateLimited, match="rate limit for task:chat: 600 tokens per minute"):
            await limiter.acquire_all((caller, task), 200)
        # the refused request took no request from the caller's bucket: two more fit, then none
        assert [await admitted(limiter, *caller) for _ in range(3)] == [True, True, False]
        with pytest.raises(errors.RateLimited, match="rate limit for key:key_a: 3 requests per minute"):
            await limiter.acquire_all((caller, task), 0)  # now the caller's bucket refuses, first
        assert await admitted(limiter, "task:chat", task[1], 100)  # and the task's kept its 100 tokens

    run(redis_db, scenario)


def test_waiting_retry_after_is_enough(redis_db: str):
    limit = Limit(tokens_per_minute=12_000)  # 200 tokens a second

    async def scenario(limiter: RedisLimiter) -> None:
        assert await admitted(limiter, "s", limit, 12_000)
        with pytest.raises(errors.RateLimited) as info:
            await limiter.acquire("s", limit, 400)
        await asyncio.sleep(int(info.value.headers["Retry-After"]))
        assert await admitted(limiter, "s", limit, 400)

    run(redis_db, scenario)


def test_tokens_per_minute_count_and_a_refused_request_consumes_nothing(redis_db: str):
    limit = Limit(requests_per_minute=3, tokens_per_minute=600)

    async def scenario(limiter: RedisLimiter) -> None:
        assert await admitted(limiter, "task:chat", limit, 500)
        with pytest.raises(errors.RateLimited, match="rate limit for task:chat: 600 tokens per minute"):
            await limiter.acquire("task:chat", limit, 200)
        assert await admitted(limiter, "task:chat", limit, 100)  # the refused 200 tokens were not taken
        assert await admitted(limiter, "task:chat", limit, 0)  # nor its request: 3 in all
        assert not await admitted(limiter, "task:chat", limit, 0)

    run(redis_db, scenario)


def test_scopes_are_independent(redis_db: str):
    limit = Limit(requests_per_minute=1)

    async def scenario(limiter: RedisLimiter) -> None:
        assert await admitted(limiter, "key:key_a", limit)
        assert not await admitted(limiter, "key:key_a", limit)
        assert await admitted(limiter, "key:key_b", limit)
        assert await admitted(limiter, "task:chat", limit)

    run(redis_db, scenario)


def test_record_counts_extra_tokens_and_gives_back_unused_ones(redis_db: str):
    limit = Limit(tokens_per_minute=600)

    async def scenario(limiter: RedisLimiter) -> None:
        assert await admitted(limiter, "more", limit, 100)
        await limiter.record("more", limit, 400)
        assert not await admitted(limiter, "more", limit, 200)
        assert await admitted(limiter, "more", limit, 50)
        assert await admitted(limiter, "less", limit, 500)
        await limiter.record("less", limit, -400)
        assert await admitted(limiter, "less", limit, 400)
        await limiter.record("over", limit, 10_000)  # never refuses, even far past the limit
        assert not await admitted(limiter, "over", limit, 1)

    run(redis_db, scenario)


def test_a_request_larger_than_a_minute_of_tokens_runs_when_the_bucket_is_full(redis_db: str):
    limit = Limit(tokens_per_minute=600)

    async def scenario(limiter: RedisLimiter) -> None:
        assert await admitted(limiter, "s", limit, 900)
        with pytest.raises(errors.RateLimited):
            await limiter.acquire("s", limit, 1)  # the excess is owed
        assert await admitted(limiter, "t", limit, 10)
        with pytest.raises(errors.RateLimited, match="this request alone needs about 900"):
            await limiter.acquire("t", limit, 900)

    run(redis_db, scenario)


def test_two_replicas_share_one_limit(redis_db: str):
    limit = Limit(requests_per_minute=3)

    async def scenario() -> None:
        a, b = RedisLimiter(redis_db), RedisLimiter(redis_db)
        try:
            assert [await admitted(x, "key:key_a", limit) for x in (a, b, a, b, a)] == [True, True, True, False, False]
            racing = [admitted(x, "key:key_b", Limit(requests_per_minute=5)) for x in (a, b) * 20]
            assert sum(await asyncio.gather(*racing)) == 5
        finally:
            await a.aclose()
            await b.aclose()

    asyncio.run(scenario())


def test_keys_are_namespaced_and_expire_once_the_bucket_has_refilled(redis_db: str):
    client = redis.Redis.from_url(redis_db)

    async def scenario(limiter: RedisLimiter) -> None:
        await limiter.acquire("key:key_a", Limit(requests_per_minute=3), 0)
        await limiter.acquire("task:free", Limit(), 10)  # unlimited: nothing stored
        assert client.keys("*") == [b"seekgate:rl:key:key_a:bucket"]
        assert 0 < client.pttl("seekgate:rl:key:key_a:bucket") <= 20_000  # one request drains in 20 s
        await limiter.acquire("task:fast", Limit(requests_per_minute=60_000), 0)  # drains in 1 ms

    try:
        run(redis_db, scenario)
        deadline = time.monotonic() + 10
        while client.exists("seekgate:rl:task:fast:bucket") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.keys("*") == [b"seekgate:rl:key:key_a:bucket"]
    finally:
        client.close()


def test_a_redis_outage_admits_requests_with_a_warning_and_limits_return_with_redis(caplog: pytest.LogCaptureFixture):
    limit = Limit(requests_per_minute=1)
    caplog.set_level(logging.WARNING, logger="seekgate.guards")

    async def scenario() -> None:
        with redis_server() as url:
            limiter = RedisLimiter(url, outage_backoff=0)
            assert await admitted(limiter, "s", limit)
            assert not await admitted(limiter, "s", limit)
        # the server is gone
        assert [await admitted(limiter, "s", limit) for _ in range(3)] == [True] * 3
        warnings = [r.getMessage() for r in caplog.records if r.name == "seekgate.guards"]
        assert len(warnings) == 1 and "rate limits are off" in warnings[0]  # once per outage, not per request
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        with redis_server(port) as again:  # a new, empty server: its script cache too
            assert again == url
            assert await admitted(limiter, "s", limit)
            assert not await admitted(limiter, "s", limit)
            assert "rate limits are on again" in [r for r in caplog.records if r.name == "seekgate.guards"][-1].getMessage()
            await limiter.aclose()

    asyncio.run(scenario())


def test_the_outage_backoff_skips_redis_until_it_has_passed(caplog: pytest.LogCaptureFixture):
    limit = Limit(requests_per_minute=1)

    async def scenario() -> None:
        with redis_server() as url:
            port = int(url.rsplit(":", 1)[1].split("/")[0])
        limiter = RedisLimiter(url, outage_backoff=3600)
        assert await admitted(limiter, "s", limit)  # Redis is down: admitted
        with redis_server(port):
            # within the backoff the limiter does not ask Redis, so the limit is not applied yet
            assert [await admitted(limiter, "s", limit) for _ in range(3)] == [True] * 3
        await limiter.aclose()

    asyncio.run(scenario())
