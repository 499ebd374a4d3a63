"""The response cache: exact match on everything that changes an answer.

    key = cache_key(request, task=..., pack=..., model=..., context=...)
    answer = await cache.lookup(key)        # None on a miss, and on any store failure
    ...                                     # ask the backend; collect a stream with AnswerCollector
    await cache.store(key, answer)          # only finished answers (see `storable`)
    chunks = replay(answer)                 # a hit served to a streaming client

Only deterministic requests are worth caching (`deterministic`); which tasks are cacheable is the
task profile's decision, made by the caller.

Secrets: the cache holds answers exactly as the model wrote them, *before* the output guards
restore the values that the input guards redacted. An answer that repeats a secret the client
sent holds the vault's placeholder, never the secret; a hit goes through the output guards again
and is restored from the new request's own vault. Keep it that way: never store an answer taken
after restoration.

A store raises `StoreError` for anything that goes wrong on its side (Redis down, disk full);
`ResponseCache` turns that into a miss and a warning, so the cache can never fail a request.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from seekgate.core.types import (
    ChatRequest,
    ChatResponse,
    Chunk,
    CompletionRequest,
    FinishReason,
    Request,
    Sampling,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from seekgate.settings import ConfigError, resolve_secret

if TYPE_CHECKING:
    from seekgate.settings import CacheSettings

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

log = logging.getLogger("seekgate.cache")

SCHEMA_VERSION = 1
"""Part of every key and of the Redis key prefix: bump it when the key's encoding or the stored
answer's shape changes, and every old entry becomes unreachable (and ages out by its TTL)."""

_STORABLE = frozenset({FinishReason.STOP, FinishReason.LENGTH, FinishReason.TOOL_CALLS})
_FLOAT_SAMPLING = ("temperature", "top_p", "frequency_penalty", "presence_penalty")
# A word with the spaces before it, or trailing spaces alone: the pieces join back to the text.
_PIECES = re.compile(r"\s*\S+|\s+")

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(ChatResponse)


class StoreError(Exception):
    """A cache store could not do what it was asked (connection, timeout, disk, closed store)."""


class CacheStore(Protocol):
    """Bytes by key, each with a time to live. Raises StoreError, nothing else, on its failures."""

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl_s: int) -> None: ...

    async def aclose(self) -> None: ...


def deterministic(request: Request) -> bool:
    """Whether the same request gives the same answer: temperature 0 asked for, or a seed."""
    sampling = request.sampling
    return (sampling.temperature is not None and sampling.temperature == 0) or sampling.seed is not None


def cache_key(request: Request, *, task: str, pack: str | None, model: str, context: str | None) -> str:
    """The sha256 (hex) of everything that changes the answer to `request`.

    `model` identifies the weights that answer (alias@version and a weights id), so `request.model`
    (which may be "auto") is left out; so are `session` and `metadata`, which change no answer.
    Every other request field counts, new ones included: a field added to the request types
    changes keys (a miss) rather than being silently ignored (a wrong hit).
    Messages are taken as they are: no whitespace or key-order normalisation, because both
    reach the prompt. Sampling numbers are normalised to floats, so 0 and 0.0 are one key.
    """
    body: ChatRequest | CompletionRequest
    if isinstance(request, ChatRequest):
        kind = "chat"
        body = msgspec.structs.replace(request, model="", session=None, metadata={}, sampling=_floats(request.sampling))
    else:
        kind = "completion"
        body = msgspec.structs.replace(request, model="", sampling=_floats(request.sampling))
    encoded = msgspec.json.encode((SCHEMA_VERSION, kind, task, pack, model, context, body))
    return hashlib.sha256(encoded).hexdigest()


def _floats(sampling: Sampling) -> Sampling:
    changes = {
        name: float(value)
        for name in _FLOAT_SAMPLING
        if (value := getattr(sampling, name)) is not None and not isinstance(value, float)
    }
    return msgspec.structs.replace(sampling, **changes) if changes else sampling


def storable(answer: ChatResponse) -> bool:
    """Whether an answer may be cached: it ended normally (stop, length or tool calls); an answer
    cut by a content filter or cancelled is never replayed to anyone."""
    return answer.finish_reason in _STORABLE


class _Call:
    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []


class AnswerCollector:
    """Rebuilds a whole ChatResponse from a stream's chunks, as they pass by.

    Text is concatenated; tool-call deltas are gathered by index (the first delta of a call
    carries its id and name, the rest pieces of its arguments); finish_reason, usage,
    stop_sequence and context come from the last chunk, backend from the first that names one.
    """

    def __init__(self) -> None:
        self._text: list[str] = []
        self._calls: dict[int, _Call] = {}
        self._finish_reason: FinishReason | None = None
        self._usage: Usage | None = None
        self._stop_sequence: str | None = None
        self._backend: str | None = None
        self._context: dict[str, Any] | None = None

    def add(self, chunk: Chunk) -> None:
        if chunk.text:
            self._text.append(chunk.text)
        for delta in chunk.tool_calls:
            call = self._calls.get(delta.index)
            if call is None:
                call = self._calls[delta.index] = _Call()
            if delta.id:
                call.id = delta.id
            if delta.name:
                call.name = delta.name
            if delta.arguments:
                call.arguments.append(delta.arguments)
        if chunk.backend is not None and self._backend is None:
            self._backend = chunk.backend
        if chunk.finish_reason is not None:
            self._finish_reason = chunk.finish_reason
        if chunk.usage is not None:
            self._usage = chunk.usage
        if chunk.stop_sequence is not None:
            self._stop_sequence = chunk.stop_sequence
        if chunk.context is not None:
            self._context = chunk.context

    @property
    def finished(self) -> bool:
        return self._finish_reason is not None

    def answer(self, model: str) -> ChatResponse | None:
        """The whole answer, or None if the stream never finished (no finish_reason)."""
        if self._finish_reason is None:
            return None
        calls = tuple(
            ToolCall(id=call.id, name=call.name, arguments="".join(call.arguments)) for _, call in sorted(self._calls.items())
        )
        return ChatResponse(
            model=model,
            text="".join(self._text),
            finish_reason=self._finish_reason,
            usage=self._usage if self._usage is not None else Usage(),
            tool_calls=calls,
            backend=self._backend,
            stop_sequence=self._stop_sequence,
            context=self._context,
        )


def replay(answer: ChatResponse) -> list[Chunk]:
    """A cached answer as a stream: its text a word at a time, then each tool call (a first delta
    with id and name, then its arguments), then a last chunk with finish_reason, usage,
    stop_sequence and context. The first chunk names the backend, as a live stream's does."""
    chunks = [Chunk(text=piece) for piece in _PIECES.findall(answer.text)]
    for index, call in enumerate(answer.tool_calls):
        chunks.append(Chunk(tool_calls=(ToolCallDelta(index=index, id=call.id, name=call.name),)))
        if call.arguments:
            chunks.append(Chunk(tool_calls=(ToolCallDelta(index=index, arguments=call.arguments),)))
    chunks.append(
        Chunk(
            finish_reason=answer.finish_reason,
            usage=msgspec.structs.replace(answer.usage),
            stop_sequence=answer.stop_sequence,
            context=answer.context,
        )
    )
    chunks[0].backend = answer.backend
    return chunks


class CacheStats(msgspec.Struct):
    """What the cache did since it started; `failures` counts store errors and unreadable entries."""

    hits: int = 0
    misses: int = 0
    stored: int = 0
    skipped: int = 0
    """Answers not stored because they did not end normally (see `storable`)."""
    failures: int = 0


class ResponseCache:
    """Encoding, a store and counters. It never raises for the store's sake.

    A store failure is a miss (or a store not done) and a warning, logged once per outage; for
    `outage_backoff_s` after a failure the store is not asked at all, so an unreachable Redis
    costs one timeout, not one per request.
    """

    def __init__(
        self,
        store: CacheStore,
        ttl_s: int,
        *,
        outage_backoff_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_s < 1:
            raise ValueError(f"the cache's ttl must be at least 1 second, not {ttl_s}")
        self._store = store
        self._ttl_s = ttl_s
        self._backoff = outage_backoff_s
        self._clock = clock
        self._down_until: float | None = None  # clock time; None while the store answers
        self.stats = CacheStats()

    async def lookup(self, key: str) -> ChatResponse | None:
        """The cached answer for `key`, or None: not there, expired, unreadable, or the store fails."""
        value = await self._get(key)
        if value is None:
            self.stats.misses += 1
            return None
        try:
            answer = _decoder.decode(value)
        except msgspec.DecodeError as exc:
            # A later store under the same key overwrites it; nothing to clean up here.
            log.warning("cache entry %s cannot be read (%s); treated as a miss", key[:16], exc)
            self.stats.failures += 1
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return answer

    async def store(self, key: str, answer: ChatResponse) -> None:
        """Keep `answer` under `key` for the TTL, if it is storable; failures are logged, not raised."""
        if not storable(answer):
            self.stats.skipped += 1
            return
        if self._resting():
            return
        try:
            value = _encoder.encode(answer)
        except (TypeError, msgspec.EncodeError) as exc:  # an answer's context holding something unencodable
            log.warning("answer for cache entry %s cannot be encoded (%s); not cached", key[:16], exc)
            self.stats.failures += 1
            return
        try:
            await self._store.put(key, value, self._ttl_s)
        except StoreError as exc:
            self._failed(exc)
            return
        self._answered()
        self.stats.stored += 1

    async def aclose(self) -> None:
        await self._store.aclose()

    async def _get(self, key: str) -> bytes | None:
        if self._resting():
            return None
        try:
            value = await self._store.get(key)
        except StoreError as exc:
            self._failed(exc)
            return None
        self._answered()
        return value

    def _resting(self) -> bool:
        return self._down_until is not None and self._clock() < self._down_until

    def _failed(self, exc: StoreError) -> None:
        self.stats.failures += 1
        if self._down_until is None:
            log.warning("response cache is off: its store fails (%s); every request is a miss until it answers", exc)
        self._down_until = self._clock() + self._backoff

    def _answered(self) -> None:
        if self._down_until is not None:
            log.warning("response cache is on again: its store answers")
            self._down_until = None


def _sqlite(settings: CacheSettings, data_dir: Path) -> CacheStore:
    from seekgate.cache.sqlite import SqliteStore

    path = data_dir / "cache.db"
    try:
        return SqliteStore(path, settings.max_entries)
    except StoreError as exc:
        raise ConfigError(
            f"the response cache cannot open {path} ({exc}); delete the file, or set cache.enabled = false"
        ) from exc


def _redis(settings: CacheSettings, data_dir: Path) -> CacheStore:
    from seekgate.cache.redis import RedisStore

    url = resolve_secret(settings.redis_url)
    if url is None:
        where = (
            f"the environment variable {settings.redis_url.removeprefix('env::')}" if settings.redis_url else "cache.redis_url"
        )
        raise ConfigError(f'cache.store = "redis" needs a Redis URL (redis://host:port/db): set {where}')
    try:
        return RedisStore(url)
    except ValueError as exc:  # redis-py's word for a URL it cannot use; the URL itself may hold a password
        raise ConfigError(f"cache.redis_url: the Redis URL in {settings.redis_url} cannot be used: {exc}") from exc


_STORES: dict[str, Callable[[CacheSettings, Path], CacheStore]] = {"sqlite": _sqlite, "redis": _redis}


def make_cache(settings: CacheSettings, data_dir: Path) -> ResponseCache | None:
    """The configured cache, or None when it is disabled. SQLite lives in data_dir/cache.db."""
    if not settings.enabled:
        return None
    factory = _STORES.get(settings.store)
    if factory is None:
        raise ConfigError(f"cache.store is {settings.store!r}; allowed: {', '.join(_STORES)}")
    return ResponseCache(factory(settings, data_dir), settings.ttl_seconds)
