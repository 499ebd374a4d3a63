"""Rate limits: requests and tokens per minute, per scope ("key:key_ab12cd34", "task:chat").

Each scope has two token buckets, one per dimension. A bucket holds up to a minute's allowance
and refills at limit/60 per second, so a caller may burst up to the whole limit and is then held
to the steady rate; Retry-After is the exact time until the refused request would fit.

A bucket is kept as its *level* (what it has let through and not yet refilled) in
unit-microseconds: one request or token is 60,000,000, and a bucket of `limit` drains `limit` of
them per microsecond. Everything is then an integer (exact in Python and in Redis' Lua doubles),
the capacity is `limit * 60,000,000`, and a changed limit needs no conversion of stored state.

Policies:
- a refused request consumes nothing, in either dimension, and in no bucket: a request draws on
  its caller's bucket and its task's together (acquire_all), admitted by both or by neither;
- a request whose estimate alone exceeds the tokens-per-minute limit is admitted when its bucket
  is full (nothing used in the last minute) and its excess is then owed: later requests wait it
  off. A request is never refused forever, and the steady rate still holds;
- `record` adds the tokens an answer used beyond the estimate; it never refuses (the work is done)
  and may push the bucket past full, which later requests wait off in the same way.

Two implementations: MemoryLimiter (one process) and RedisLimiter (shared by every replica).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

import msgspec

from seekgate import errors

__all__ = ["Limit", "MemoryLimiter", "RateLimiter", "RedisLimiter", "make_limiter"]

log = logging.getLogger("seekgate.guards")

UNIT = 60_000_000  # one request or token, in unit-microseconds (see the module docstring)
_SWEEP_EVERY_US = 60_000_000


class Limit(msgspec.Struct, frozen=True):
    requests_per_minute: int = 0
    """0 = unlimited."""
    tokens_per_minute: int = 0
    """0 = unlimited."""


Buckets = Sequence[tuple[str, Limit]]
"""(scope, limit) pairs that one request draws on together: its caller's and its task's."""


class RateLimiter(Protocol):
    async def acquire(self, scope: str, limit: Limit, tokens: int) -> None:
        """Admit one request expected to use `tokens` tokens, or raise errors.RateLimited."""
        ...

    async def acquire_all(self, buckets: Buckets, tokens: int) -> None:
        """Admit one request against every bucket at once, or against none: a request one
        bucket refuses takes nothing from the others. Raises errors.RateLimited."""
        ...

    async def record(self, scope: str, limit: Limit, tokens: int) -> None:
        """Count `tokens` used beyond what acquire counted (negative: give them back)."""
        ...

    async def aclose(self) -> None: ...


# -- the arithmetic, shared by MemoryLimiter and (in Lua) RedisLimiter -------------------------


def _drain(level: int, limit: int, elapsed_us: int) -> int:
    return 0 if limit <= 0 else max(0, level - elapsed_us * limit)


def _wait_us(level: int, cost: int, limit: int) -> int:
    """Microseconds until a bucket at `level` admits `cost` units; 0 = now."""
    if limit <= 0:
        return 0
    # a request larger than the whole bucket waits only until the bucket is full (see above)
    over = level if cost > limit else level + (cost - limit) * UNIT
    return 0 if over <= 0 else _ceil_div(over, limit)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _refusal(scope: str, limit: Limit, tokens: int, wait_requests: int, wait_tokens: int) -> errors.RateLimited:
    seconds = max(1, math.ceil(max(wait_requests, wait_tokens) / 1_000_000))
    if wait_requests >= wait_tokens:
        what = f"{limit.requests_per_minute} requests per minute"
    else:
        what = f"{limit.tokens_per_minute} tokens per minute"
        if tokens > limit.tokens_per_minute:
            what += f" (this request alone needs about {tokens}: it runs once a full minute's allowance is unused)"
    return errors.RateLimited(
        f"rate limit for {scope}: {what}; retry in {seconds} s",
        code="rate_limit_exceeded",
        headers={"Retry-After": str(seconds)},
    )


# -- in-process --------------------------------------------------------------------------------


class _Bucket:
    __slots__ = ("at", "full_at", "requests", "tokens")

    def __init__(self, at: int) -> None:
        self.at = at
        self.requests = 0
        self.tokens = 0
        self.full_at = at  # when both buckets will have drained: the scope can be forgotten


class MemoryLimiter:
    """Limits within one process. Safe under asyncio without a lock: no method awaits between
    reading a bucket and writing it back. Memory holds only scopes that are not yet full: a sweep
    about once a minute forgets the rest, since a full bucket and a missing one behave alike."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._buckets: dict[str, _Bucket] = {}
        self._next_sweep = 0

    async def acquire(self, scope: str, limit: Limit, tokens: int) -> None:
        await self.acquire_all(((scope, limit),), tokens)

    async def acquire_all(self, buckets: Buckets, tokens: int) -> None:
        # Every bucket is checked before any is charged; nothing awaits in between.
        tokens = max(0, tokens)
        drained = [(scope, limit, *self._bucket(scope, limit)) for scope, limit in _limited(buckets)]
        for scope, limit, bucket, _ in drained:
            wait_requests = _wait_us(bucket.requests, 1, limit.requests_per_minute)
            wait_tokens = _wait_us(bucket.tokens, tokens, limit.tokens_per_minute)
            if wait_requests or wait_tokens:
                raise _refusal(scope, limit, tokens, wait_requests, wait_tokens)
        for scope, limit, bucket, now in drained:
            self._store(scope, bucket, limit, now, 1, tokens)

    async def record(self, scope: str, limit: Limit, tokens: int) -> None:
        if not limit.tokens_per_minute or not tokens:
            return
        bucket, now = self._bucket(scope, limit)
        self._store(scope, bucket, limit, now, 0, tokens)

    async def aclose(self) -> None:
        self._buckets.clear()

    def _bucket(self, scope: str, limit: Limit) -> tuple[_Bucket, int]:
        """The scope's bucket drained up to now (a fresh one if unknown)."""
        now = round(self._now() * 1_000_000)
        if now >= self._next_sweep:
            self._buckets = {s: b for s, b in self._buckets.items() if b.full_at > now}
            self._next_sweep = now + _SWEEP_EVERY_US
        bucket = self._buckets.get(scope) or _Bucket(now)
        elapsed = max(0, now - bucket.at)
        bucket.requests = _drain(bucket.requests, limit.requests_per_minute, elapsed)
        bucket.tokens = _drain(bucket.tokens, limit.tokens_per_minute, elapsed)
        bucket.at = now
        return bucket, now

    def _store(self, scope: str, bucket: _Bucket, limit: Limit, now: int, requests: int, tokens: int) -> None:
        if limit.requests_per_minute:
            bucket.requests += requests * UNIT
        if limit.tokens_per_minute:
            bucket.tokens = max(0, bucket.tokens + tokens * UNIT)
        bucket.full_at = now + _drain_time_us(bucket.requests, bucket.tokens, limit)
        self._buckets[scope] = bucket


def _limited(buckets: Buckets) -> list[tuple[str, Limit]]:
    return [(scope, limit) for scope, limit in buckets if limit.requests_per_minute or limit.tokens_per_minute]


def _drain_time_us(requests: int, tokens: int, limit: Limit) -> int:
    times = [0]
    if limit.requests_per_minute:
        times.append(_ceil_div(requests, limit.requests_per_minute))
    if limit.tokens_per_minute:
        times.append(_ceil_div(tokens, limit.tokens_per_minute))
    return max(times)


# -- Redis -------------------------------------------------------------------------------------

# One script does read, decide and write, so replicas racing on a scope cannot both take the last
# unit, and a request drawing on several buckets takes from all of them or from none. The clock
# is Redis' own TIME: replicas' clocks may disagree, the server's is one clock.
# KEYS: hashes {at, req, tok}; ARGV: mode ("acquire" | "record"), tokens, then rpm and tpm per key.
# Returns {admitted (1/0), the refusing key's 1-based index, microseconds to wait for requests,
# for tokens}.
_SCRIPT = """
local UNIT = 60000000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local mode, cost = ARGV[1], tonumber(ARGV[2])
local function drain(level, limit, elapsed)
  if limit <= 0 then return 0 end
  return math.max(0, (tonumber(level) or 0) - elapsed * limit)
end
local function wait(level, units, limit)
  if limit <= 0 then return 0 end
  local over = level + (units - limit) * UNIT
  if units > limit then over = level end
  if over <= 0 then return 0 end
  return math.ceil(over / limit)
end
local buckets = {}
for i, key in ipairs(KEYS) do
  local rpm, tpm = tonumber(ARGV[1 + 2 * i]), tonumber(ARGV[2 + 2 * i])
  local state = redis.call('HMGET', key, 'at', 'req', 'tok')
  local elapsed = math.max(0, now - (tonumber(state[1]) or now))
  local req, tok = drain(state[2], rpm, elapsed), drain(state[3], tpm, elapsed)
  if mode == 'acquire' then
    local wr, wt = wait(req, 1, rpm), wait(tok, cost, tpm)
    if wr > 0 or wt > 0 then return {0, i, wr, wt} end
  end
  buckets[i] = {key, rpm, tpm, req, tok}
end
for _, b in ipairs(buckets) do
  local key, rpm, tpm, req, tok = b[1], b[2], b[3], b[4], b[5]
  if mode == 'acquire' then
    if rpm > 0 then req = req + UNIT end
    if tpm > 0 then tok = tok + cost * UNIT end
  elseif tpm > 0 then
    tok = math.max(0, tok + cost * UNIT)
  end
  local drained_us = 0
  if rpm > 0 then drained_us = math.max(drained_us, math.ceil(req / rpm)) end
  if tpm > 0 then drained_us = math.max(drained_us, math.ceil(tok / tpm)) end
  if drained_us <= 0 then
    redis.call('DEL', key)
  else
    -- %.0f: Lua's default number format keeps 14 digits, and a time in microseconds has 16
    redis.call('HSET', key, 'at', string.format('%.0f', now), 'req', string.format('%.0f', req),
               'tok', string.format('%.0f', tok))
    -- a drained bucket and a missing one behave alike: the key lives exactly until it drains
    redis.call('PEXPIRE', key, math.ceil(drained_us / 1000))
  end
end
return {1, 0, 0, 0}
"""


class RedisLimiter:
    """Limits shared by every replica through one Redis.

    Fails open: while Redis cannot be reached, requests are admitted and a warning is logged
    (once per outage). A rate limiter is a guard against overuse, not a dependency of serving;
    an outage of it must not take the gateway down. After a failure the limiter stops asking
    Redis for `outage_backoff` seconds, so an unreachable server costs one timeout, not one per
    request.
    """

    def __init__(self, url: str, *, timeout: float = 0.5, outage_backoff: float = 5.0) -> None:
        # Imported here, not at the top: a gateway with in-process limits never loads redis.
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # One immediate retry replaces a pooled connection that died (say, Redis restarted);
        # redis-py's default (ten, with backoff) would hold every request for seconds in an outage.
        self._redis = redis.asyncio.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 1)
        )
        self._redis_error = redis.asyncio.RedisError
        self._script = self._redis.register_script(_SCRIPT)
        self._outage_backoff = outage_backoff
        self._down_until: float | None = None  # monotonic; None while Redis answers

    async def acquire(self, scope: str, limit: Limit, tokens: int) -> None:
        await self.acquire_all(((scope, limit),), tokens)

    async def acquire_all(self, buckets: Buckets, tokens: int) -> None:
        live = _limited(buckets)
        if not live:
            return
        tokens = max(0, tokens)
        answer = await self._call(live, "acquire", tokens)
        if answer is not None and not answer[0]:
            scope, limit = live[int(answer[1]) - 1]
            raise _refusal(scope, limit, tokens, int(answer[2]), int(answer[3]))

    async def record(self, scope: str, limit: Limit, tokens: int) -> None:
        if limit.tokens_per_minute and tokens:
            await self._call([(scope, limit)], "record", tokens)

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def _call(self, buckets: Buckets, mode: str, tokens: int) -> list[int] | None:
        """The script's answer, or None while Redis fails (fail open)."""
        if self._down_until is not None and time.monotonic() < self._down_until:
            return None
        keys = [f"seekgate:rl:{scope}:bucket" for scope, _ in buckets]
        args: list[str | int] = [mode, tokens]
        for _, limit in buckets:
            args += [limit.requests_per_minute, limit.tokens_per_minute]
        try:
            answer: list[int] = await self._script(keys=keys, args=args)
        # Any Redis failure, not only a refused connection: a full, read-only or loading server
        # is as much an outage of the limiter as a dead one.
        except self._redis_error as exc:
            if self._down_until is None:
                log.warning("rate limits are off: Redis fails (%s: %s); admitting requests until it answers", type(exc).__name__, exc)
            self._down_until = time.monotonic() + self._outage_backoff
            return None
        if self._down_until is not None:
            log.warning("rate limits are on again: Redis answers")
            self._down_until = None
        return answer


def make_limiter(store: Literal["memory", "redis"], redis_url: str | None) -> RateLimiter:
    if store == "memory":
        return MemoryLimiter()
    if store == "redis":
        if not redis_url:
            raise ValueError("rate limits in Redis need a redis_url (redis://host:port/db)")
        return RedisLimiter(redis_url)
    raise ValueError(f"unknown rate-limit store {store!r}; allowed: memory, redis")
