"""The response cache: keys, a stream's answer collected and replayed, and its stores (see base.py)."""

from seekgate.cache.base import (
    SCHEMA_VERSION,
    AnswerCollector,
    CacheStats,
    CacheStore,
    ResponseCache,
    StoreError,
    cache_key,
    deterministic,
    make_cache,
    replay,
    storable,
)

__all__ = [
    "SCHEMA_VERSION",
    "AnswerCollector",
    "CacheStats",
    "CacheStore",
    "ResponseCache",
    "StoreError",
    "cache_key",
    "deterministic",
    "make_cache",
    "replay",
    "storable",
]
