"""The cache in Redis, shared by every replica: `SET key value EX ttl` and `GET`.

Keys are `seekgate:cache:v<SCHEMA_VERSION>:<sha256>`. Redis evicts by its own policy when it
is full (`maxmemory-policy`, e.g. allkeys-lru or volatile-ttl); `max_entries` does not apply.
Every Redis failure is raised as StoreError, which ResponseCache turns into a miss.
"""

from __future__ import annotations

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from seekgate.cache.base import SCHEMA_VERSION, StoreError

__all__ = ["PREFIX", "RedisStore"]

PREFIX = f"seekgate:cache:v{SCHEMA_VERSION}:"


class RedisStore:
    def __init__(self, url: str, *, timeout: float = 0.5) -> None:
        # Short timeouts and one immediate retry (it replaces a pooled connection that died when
        # Redis restarted): a cache that waits seconds for Redis is slower than no cache.
        self._redis = redis.asyncio.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 1)
        )

    async def get(self, key: str) -> bytes | None:
        try:
            value: bytes | None = await self._redis.get(PREFIX + key)
        except (redis.asyncio.RedisError, OSError) as exc:
            raise StoreError(f"Redis: {type(exc).__name__}: {exc}") from exc
        return value

    async def put(self, key: str, value: bytes, ttl_s: int) -> None:
        try:
            await self._redis.set(PREFIX + key, value, ex=ttl_s)
        except (redis.asyncio.RedisError, OSError) as exc:
            raise StoreError(f"Redis: {type(exc).__name__}: {exc}") from exc

    async def aclose(self) -> None:
        await self._redis.aclose()
