"""API keys in SQLite: who may call the gateway, which tasks they may run, at what rate.

A key is `sgk_` + 43 URL-safe characters (256 random bits). It is shown once, when created; the
store keeps only its SHA-256 digest, so a copy of the database lets nobody call the gateway. The
table lives in data_dir/seekgate.db next to the other stores' tables (each store opens its own
connection; WAL lets them, and the `seekgate keys` CLI in another process, write side by side).

`verify` is on the path of every request, so it answers from a small in-memory cache for a few
seconds (`cache_ttl`). The price: a key revoked by another process (the CLI, another replica) is
refused by this one within `cache_ttl` seconds, not at once. A revocation made through this store
takes effect here immediately.

Methods are synchronous and thread-safe; async callers run them with asyncio.to_thread.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from seekgate import errors

__all__ = ["KEY_PREFIX", "ApiKey", "KeyStore"]

KEY_PREFIX = "sgk_"
_KEY_LENGTH = len(KEY_PREFIX) + 43  # token_urlsafe(32): 32 bytes in unpadded base64
_CACHE_MAX = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE,
    name TEXT NOT NULL,
    tasks TEXT NOT NULL,
    requests_per_minute INTEGER NOT NULL,
    tokens_per_minute INTEGER NOT NULL,
    hint TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
"""
_COLUMNS = "id, name, tasks, requests_per_minute, tokens_per_minute, hint, created_at, revoked_at"


class ApiKey(msgspec.Struct, frozen=True):
    """One key as the gateway and `seekgate keys list` see it: never the key, nor its digest."""

    id: str
    """Stable public name of the key, `key_` + 8 hex digits; rate limits count per id."""
    name: str
    """Who or what the key is for."""
    hint: str
    """The last 4 characters of the key, to tell keys apart without revealing them."""
    tasks: tuple[str, ...] = ()
    """The tasks the key may run; empty = every task."""
    requests_per_minute: int = 0
    """0 = the gateway default (guards.requests_per_minute)."""
    tokens_per_minute: int = 0
    """0 = the gateway default (guards.tokens_per_minute)."""
    created_at: float = 0.0
    """Unix time."""
    revoked_at: float | None = None
    """Unix time; None while the key is valid."""

    def allows(self, task: str) -> bool:
        return not self.tasks or task in self.tasks


class KeyStore:
    def __init__(self, path: Path, *, cache_ttl: float = 5.0, now: Callable[[], float] = time.monotonic) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._cache_ttl = cache_ttl
        self._now = now
        # digest -> (key, monotonic expiry). Only valid keys are cached: caching misses would let
        # a client fill memory with made-up keys, and an unknown key costs one indexed lookup.
        self._cache: dict[bytes, tuple[ApiKey, float]] = {}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def create(
        self, name: str, tasks: tuple[str, ...] = (), requests_per_minute: int = 0, tokens_per_minute: int = 0
    ) -> tuple[ApiKey, str]:
        """Make a key; return its record and the key itself, which is never stored."""
        name = name.strip()
        if not name:
            raise errors.InvalidRequest("a key needs a name: who or what it is for", param="name")
        if requests_per_minute < 0 or tokens_per_minute < 0:
            raise errors.InvalidRequest("requests_per_minute and tokens_per_minute must not be negative (0 = the gateway default)")
        token = KEY_PREFIX + secrets.token_urlsafe(32)
        created = time.time()
        # 32-bit ids collide once in ~65,000 keys; a collision only costs another draw.
        for _ in range(8):
            key = ApiKey(
                id="key_" + secrets.token_hex(4),
                name=name,
                hint=token[-4:],
                tasks=tuple(tasks),
                requests_per_minute=requests_per_minute,
                tokens_per_minute=tokens_per_minute,
                created_at=created,
            )
            try:
                self._run(
                    f"INSERT INTO api_keys (digest, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (_digest(token), key.id, name, _json(key.tasks), requests_per_minute, tokens_per_minute, key.hint, created, None),
                )
            except sqlite3.IntegrityError:
                continue
            return key, token
        raise errors.SeekgateError("could not find a free key id; is the api_keys table full?")

    def verify(self, token: str) -> ApiKey | None:
        """The key `token` names, or None if it is unknown or revoked.

        The lookup is by digest, so its timing can only reveal something about the digest, from
        which nothing about a valid key follows: no constant-time comparison is needed.
        """
        if len(token) != _KEY_LENGTH or not token.startswith(KEY_PREFIX):
            return None
        digest = _digest(token)
        now = self._now()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and hit[1] > now:
            return hit[0]
        rows = self._run(f"SELECT {_COLUMNS} FROM api_keys WHERE digest = ?", (digest,))
        key = _key(rows[0]) if rows else None
        if key is None or key.revoked_at is not None:
            with self._lock:
                self._cache.pop(digest, None)
            return None
        with self._lock:
            if len(self._cache) >= _CACHE_MAX:
                self._evict(now)
            self._cache[digest] = (key, now + self._cache_ttl)
        return key

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones too, oldest first."""
        return [_key(r) for r in self._run(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, id")]

    def revoke(self, key_id: str) -> ApiKey:
        """Refuse the key from now on; revoking a revoked key changes nothing."""
        self._run("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (time.time(), key_id))
        rows = self._run(f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?", (key_id,))
        if not rows:
            raise errors.NotFound(f"no API key {key_id!r}; `seekgate keys list` shows the ids", param="id", code="key_not_found")
        with self._lock:
            self._cache = {d: entry for d, entry in self._cache.items() if entry[0].id != key_id}
        return _key(rows[0])

    def _evict(self, now: float) -> None:
        """Drop expired entries; if every entry is fresh, start over (called under the lock)."""
        self._cache = {d: entry for d, entry in self._cache.items() if entry[1] > now}
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()


def _digest(token: str) -> bytes:
    # A fast hash is right here: a key carries 256 random bits, so guessing one from its digest
    # is hopeless however fast the hash. Slow hashes (bcrypt, argon2) protect low-entropy
    # passwords, and would cost milliseconds on every request for no gain.
    return hashlib.sha256(token.encode()).digest()


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _key(row: tuple[Any, ...]) -> ApiKey:
    kid, name, tasks, rpm, tpm, hint, created_at, revoked_at = row
    return ApiKey(kid, name, hint, tuple(msgspec.json.decode(tasks)), rpm, tpm, created_at, revoked_at)
