import asyncio

import pytest

from seekgate import errors
from seekgate.guards.limits import Limit, MemoryLimiter, RedisLimiter, make_limiter


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(clock: Clock) -> MemoryLimiter:
    return MemoryLimiter(now=clock)


def admit(limiter: MemoryLimiter, scope: str, limit: Limit, tokens: int = 0) -> bool:
    try:
        asyncio.run(limiter.acquire(scope, limit, tokens))
    except errors.RateLimited:
        return False
    return True


def refusal(limiter: MemoryLimiter, scope: str, limit: Limit, tokens: int = 0) -> errors.RateLimited:
    with pytest.raises(errors.RateLimited) as info:
        asyncio.run(limiter.acquire(scope, limit, tokens))
    return info.value


def test_a_burst_up_to_the_limit_is_admitted_and_the_next_is_refused_with_the_exact_wait(limiter: MemoryLimiter):
    limit = Limit(requests_per_minute=60)
    assert all(admit(limiter, "key:key_a", limit) for _ in range(60))
    refused = refusal(limiter, "key:key_a", limit)
    assert refused.status == 429 and refused.headers == {"Retry-After": "1"}
    assert refused.message == "rate limit for key:key_a: 60 requests per minute; retry in 1 s"


def test_retry_after_rounds_up_and_is_exactly_enough(limiter: MemoryLimiter, clock: Clock):
    limit = Limit(requests_per_minute=7)  # one request every 8.57 s: not a whole number anywhere
    assert all(admit(limiter, "s", limit) for _ in range(7))
    assert refusal(limiter, "s", limit).headers["Retry-After"] == "9"
    clock.now += 8.5
    assert refusal(limiter, "s", limit).headers["Retry-After"] == "1"
    clock.now += 0.5
    assert admit(limiter, "s", limit)
    assert not admit(limiter, "s", limit)


def test_the_bucket_refills_at_the_steady_rate(limiter: MemoryLimiter, clock: Clock):
    limit = Limit(requests_per_minute=60)
    assert all(admit(limiter, "s", limit) for _ in range(60))
    clock.now += 30
    assert all(admit(limiter, "s", limit) for _ in range(30))
    assert not admit(limiter, "s", limit)
    clock.now += 600  # a long pause refills the bucket, and no further
    assert all(admit(limiter, "s", limit) for _ in range(60))
    assert not admit(limiter, "s", limit)


def test_tokens_per_minute_count_the_estimate_and_say_which_limit_refused(limiter: MemoryLimiter, clock: Clock):
    limit = Limit(tokens_per_minute=1000)
    assert admit(limiter, "task:chat", limit, 600)
    refused = refusal(limiter, "task:chat", limit, 500)
    assert refused.headers["Retry-After"] == "6"  # 100 tokens at 1000 a minute
    assert refused.message == "rate limit for task:chat: 1000 tokens per minute; retry in 6 s"
    clock.now += 6
    assert admit(limiter, "task:chat", limit, 500)


def test_the_message_names_the_limit_that_holds_the_request_longest(limiter: MemoryLimiter):
    limit = Limit(requests_per_minute=2, tokens_per_minute=100)
    assert admit(limiter, "s", limit, 50) and admit(limiter, "s", limit, 50)  # both limits reached
    refused = refusal(limiter, "s", limit, 10)  # a request in 30 s, 10 tokens in 6 s
    assert refused.message.endswith("2 requests per minute; retry in 30 s") and refused.headers["Retry-After"] == "30"
    refused = refusal(limiter, "s", limit, 90)  # a request in 30 s, 90 tokens in 54 s
    assert refused.message.endswith("100 tokens per minute; retry in 54 s") and refused.headers["Retry-After"] == "54"


def test_a_refused_request_consumes_nothing_in_either_dimension(limiter: MemoryLimiter):
    limit = Limit(requests_per_minute=10, tokens_per_minute=100)
    assert admit(limiter, "s", limit, 90)
    assert not admit(limiter, "s", limit, 20)  # over on tokens
    assert admit(limiter, "s", limit, 10)  # the refused 20 tokens were not taken
    assert all(admit(limiter, "s", limit, 0) for _ in range(8))  # nor its request: 10 in all
    assert not admit(limiter, "s", limit, 0)


def test_scopes_are_independent(limiter: MemoryLimiter):
    limit = Limit(requests_per_minute=1)
    assert admit(limiter, "key:key_a", limit)
    assert not admit(limiter, "key:key_a", limit)
    assert admit(limiter, "key:key_b", limit)
    assert admit(limiter, "task:chat", limit)


def test_record_counts_tokens_used_beyond_the_estimate(limiter: MemoryLimiter):
    limit = Limit(tokens_per_minute=100)
    assert admit(limiter, "s", limit, 10)
    asyncio.run(limiter.record("s", limit, 50))
    assert not admit(limiter, "s", limit, 41)
    assert admit(limiter, "s", limit, 40)


def test_record_never_refuses_and_what_it_overdraws_is_waited_off(limiter: MemoryLimiter, clock: Clock):
    limit = Limit(tokens_per_minute=100)
    assert admit(limiter, "s", limit, 100)
    asyncio.run(limiter.record("s", limit, 200))  # the answer was long: 300 used of 100 a minute
    assert refusal(limiter, "s", limit, 1).headers["Retry-After"] == "121"  # 201 over, at 100 a minute
    clock.now += 121
    assert admit(limiter, "s", limit, 1)


def test_record_of_fewer_tokens_than_estimated_gives_them_back(limiter: MemoryLimiter):
    limit = Limit(tokens_per_minute=100)
    assert admit(limiter, "s", limit, 80)
    asyncio.run(limiter.record("s", limit, -50))
    assert admit(limiter, "s", limit, 70)
    assert not admit(limiter, "s", limit, 1)


def test_a_request_larger_than_a_minute_of_tokens_runs_when_the_bucket_is_full_and_is_then_waited_off(
    limiter: MemoryLimiter, clock: Clock
):
    limit = Limit(tokens_per_minute=100)
    assert admit(limiter, "fresh", limit, 150)
    assert refusal(limiter, "fresh", limit, 1).headers["Retry-After"] == "31"  # 51 over, at 100 a minute
    assert admit(limiter, "busy", limit, 10)
    refused = refusal(limiter, "busy", limit, 150)
    assert refused.headers["Retry-After"] == "6"  # until the 10 tokens have drained
    assert "this request alone needs about 150" in refused.message
    clock.now += 6
    assert admit(limiter, "busy", limit, 150)


def test_zero_means_unlimited(limiter: MemoryLimiter):
    assert all(admit(limiter, "s", Limit(), 10**9) for _ in range(1000))
    tokens_only = Limit(tokens_per_minute=100)
    assert all(admit(limiter, "t", tokens_only, 0) for _ in range(1000))
    assert admit(limiter, "t", tokens_only, 100) and not admit(limiter, "t", tokens_only, 1)


def test_concurrent_requests_never_overshoot_the_limit(limiter: MemoryLimiter):
    limit = Limit(requests_per_minute=10)

    async def one() -> bool:
        await asyncio.sleep(0)
        try:
            await limiter.acquire("s", limit, 0)
        except errors.RateLimited:
            return False
        return True

    async def many() -> list[bool]:
        return await asyncio.gather(*(one() for _ in range(100)))

    assert sum(asyncio.run(many())) == 10


def test_idle_scopes_are_forgotten_and_busy_ones_kept(limiter: MemoryLimiter, clock: Clock):
    limit = Limit(requests_per_minute=60, tokens_per_minute=100)
    for i in range(1000):
        assert admit(limiter, f"key:key_{i}", limit, 10)
    assert admit(limiter, "key:busy", limit, 100)
    asyncio.run(limiter.record("key:busy", limit, 1000))  # owes ten minutes
    clock.now += 120
    assert admit(limiter, "key:new", limit, 0)  # any call sweeps, at most once a minute
    assert set(limiter._buckets) == {"key:busy", "key:new"}  # memory holds only what still counts
    assert not admit(limiter, "key:busy", limit, 1)


def test_make_limiter_builds_the_configured_store():
    assert isinstance(make_limiter("memory", None), MemoryLimiter)
    redis = make_limiter("redis", "redis://127.0.0.1:1/0")  # no connection until first use
    assert isinstance(redis, RedisLimiter)
    asyncio.run(redis.aclose())
    with pytest.raises(ValueError, match="redis_url"):
        make_limiter("redis", None)


def test_a_request_draws_on_all_its_buckets_or_none(limiter: MemoryLimiter):
    caller, task = ("key:key_a", Limit(requests_per_minute=5)), ("task:chat", Limit(requests_per_minute=2))
    both = (caller, task)
    assert [_admit_all(limiter, both) for _ in range(2)] == [True, True]
    with pytest.raises(errors.RateLimited, match="rate limit for task:chat: 2 requests per minute"):
        asyncio.run(limiter.acquire_all(both, 0))  # the task's bucket is empty
    # the refused request took nothing from the caller's bucket: three more fit there, not two
    assert [admit(limiter, *caller) for _ in range(4)] == [True, True, True, False]
    asyncio.run(limiter.acquire_all((("task:free", Limit()),), 10))  # unlimited buckets take no part


def _admit_all(limiter: MemoryLimiter, buckets, tokens: int = 0) -> bool:
    try:
        asyncio.run(limiter.acquire_all(buckets, tokens))
    except errors.RateLimited:
        return False
    return True
