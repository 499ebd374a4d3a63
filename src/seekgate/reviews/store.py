"""Reviews in SQLite: the request, the model's candidate answer, and the reviewer's decision.

Every write commits before it returns (WAL journal), so a killed process loses nothing that a
client was told about. Calls run on a thread: the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Literal

import msgspec

from seekgate import errors

__all__ = ["Review", "ReviewStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reviews (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    task TEXT NOT NULL,
    model TEXT NOT NULL,
    request TEXT NOT NULL,
    candidate TEXT NOT NULL,
    answer TEXT,
    reason TEXT,
    decided REAL,
    usage TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reviews_status_created ON reviews (status, created);
"""
_COLUMNS = "id, created, status, task, model, request, candidate, answer, reason, decided, usage"


class Review(msgspec.Struct, frozen=True):
    id: str
    created: float
    status: Literal["pending", "approved", "rejected"]
    task: str
    model: str
    request: dict[str, Any]
    candidate: str
    answer: str | None
    reason: str | None
    decided: float | None
    usage: dict[str, int]


class ReviewStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._db.close()

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    async def submit(self, task: str, model: str, request: dict[str, Any], candidate: str, usage: dict[str, int]) -> Review:
        review = Review(
            id="rev_" + os.urandom(12).hex(),
            created=time.time(),
            status="pending",
            task=task,
            model=model,
            request=request,
            candidate=candidate,
            answer=None,
            reason=None,
            decided=None,
            usage=usage,
        )
        await asyncio.to_thread(
            self._run,
            f"INSERT INTO reviews ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (review.id, review.created, review.status, task, model, _json(request), candidate, None, None, None, _json(usage)),
        )
        return review

    async def get(self, review_id: str) -> Review:
        rows = await asyncio.to_thread(self._run, f"SELECT {_COLUMNS} FROM reviews WHERE id = ?", (review_id,))
        if not rows:
            raise errors.NotFound(f"no review {review_id!r}", param="id", code="review_not_found")
        return _review(rows[0])

    async def list(self, status: str | None = None, limit: int = 100) -> list[Review]:
        if status is None:
            rows = await asyncio.to_thread(self._run, f"SELECT {_COLUMNS} FROM reviews ORDER BY created DESC LIMIT ?", (limit,))
        else:
            rows = await asyncio.to_thread(
                self._run, f"SELECT {_COLUMNS} FROM reviews WHERE status = ? ORDER BY created DESC LIMIT ?", (status, limit)
            )
        return [_review(r) for r in rows]

    async def approve(self, review_id: str, answer: str | None = None) -> Review:
        current = await self.get(review_id)
        return await self._decide(current, "approved", answer=answer if answer is not None else current.candidate, reason=None)

    async def reject(self, review_id: str, reason: str) -> Review:
        return await self._decide(await self.get(review_id), "rejected", answer=None, reason=reason)

    async def _decide(self, review: Review, status: str, answer: str | None, reason: str | None) -> Review:
        decided = time.time()
        changed = await asyncio.to_thread(
            self._run,
            "UPDATE reviews SET status = ?, answer = ?, reason = ?, decided = ? WHERE id = ? AND status = 'pending' RETURNING id",
            (status, answer, reason, decided, review.id),
        )
        if not changed:
            raise errors.InvalidRequest(f"review {review.id} is already decided", code="review_already_decided")
        return msgspec.structs.replace(review, status=status, answer=answer, reason=reason, decided=decided)  # type: ignore[arg-type]


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _review(row: tuple[Any, ...]) -> Review:
    rid, created, status, task, model, request, candidate, answer, reason, decided, usage = row
    return Review(rid, created, status, task, model, msgspec.json.decode(request), candidate, answer, reason, decided, msgspec.json.decode(usage))
