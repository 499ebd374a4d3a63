"""The request log: recent requests in data_dir/seekgate.db, for `GET /admin/requests` and
`seekgate requests`.

`observe()` runs on the event loop for every request, so it only puts the record on a bounded
queue; a writer thread of its own inserts what has queued up in one transaction, so the batches
grow with the load. When the disk cannot keep up the queue fills and records are dropped (and
counted, with one warning) rather than slowing requests down. `aclose()` writes everything still
queued: a clean shutdown loses nothing. Retention (older than `days`, beyond `max_rows`, oldest
first) runs in the writer, at most once a minute or every thousand inserts.

The writer and the readers use connections of their own, so in WAL mode a query never waits on a
write. Queries are synchronous and thread-safe; async callers run them with asyncio.to_thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import msgspec

from seekgate import errors
from seekgate.telemetry.record import CacheResult, RequestRecord

__all__ = ["FILTERS", "RequestLog", "parse_filters"]

log = logging.getLogger("seekgate.telemetry")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    time REAL NOT NULL,
    endpoint TEXT NOT NULL,
    status INTEGER NOT NULL,
    latency_ms REAL NOT NULL,
    stream INTEGER NOT NULL,
    ttft_ms REAL,
    task TEXT,
    model TEXT,
    backend TEXT,
    error TEXT,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache TEXT NOT NULL,
    guards TEXT NOT NULL,
    fallbacks TEXT NOT NULL,
    escalated TEXT,
    slo_breach INTEGER NOT NULL,
    caller TEXT NOT NULL,
    prompt TEXT,
    answer TEXT
);
CREATE INDEX IF NOT EXISTS requests_time ON requests (time);
CREATE INDEX IF NOT EXISTS requests_id ON requests (id);
CREATE INDEX IF NOT EXISTS requests_task_time ON requests (task, time);
CREATE INDEX IF NOT EXISTS requests_model_time ON requests (model, time);
CREATE INDEX IF NOT EXISTS requests_status_time ON requests (status, time);
CREATE INDEX IF NOT EXISTS requests_cache_time ON requests (cache, time);
"""
# Ids are not unique: a caller may send the same X-Request-Id twice. `get` returns the newest.
_COLUMNS = (
    "id, time, endpoint, status, latency_ms, stream, ttft_ms, task, model, backend, error, input_tokens, output_tokens, "
    "cache, guards, fallbacks, escalated, slo_breach, caller, prompt, answer"
)
_INSERT = f"INSERT INTO requests ({_COLUMNS}) VALUES ({', '.join('?' * len(_COLUMNS.split(', ')))})"
_NEWEST_FIRST = "ORDER BY time DESC, seq DESC"
_STOP = object()
_PRUNE = object()

FILTERS = ("task", "model", "status", "errors", "cache", "since", "until", "limit", "before", "offset")
"""The query parameters of `GET /admin/requests`, and what `parse_filters` accepts."""
MAX_LIMIT = 1000
_CACHE_RESULTS: tuple[str, ...] = get_args(CacheResult)
_STATUS = re.compile(r"([1-5])(?:xx|\d\d)", re.IGNORECASE)
_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_BOOLS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


class RequestLog:
    """Recent requests in SQLite: an `Observer` that writes on its own thread, and a query API."""

    def __init__(
        self,
        path: Path,
        days: float,
        max_rows: int,
        *,
        max_queue: int = 10_000,
        batch: int = 500,
        prune_every_s: float = 60.0,
        prune_every_rows: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.days = days
        self.max_rows = max_rows
        self.dropped = 0
        """Records never stored: the queue was full, or the database refused a batch."""
        self._batch = batch
        self._prune_every_s = prune_every_s
        self._prune_every_rows = prune_every_rows
        self._clock = clock
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_queue)
        self._warned = False
        self._thread: threading.Thread | None = None
        self._closed = False
        self._writes = _connect(path)
        self._writes.executescript(_SCHEMA)
        self._reads = _connect(path)
        self._read_lock = threading.Lock()
        self._dropped_lock = threading.Lock()  # the loop and the writer both count
        self._inserted_since_prune = 0
        self._pruned_at = float("-inf")

    # --- writing -----------------------------------------------------------------------------

    def observe(self, record: RequestRecord) -> None:
        """Queue one record; never waits. Called on the event loop."""
        if self._closed:
            return
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self._count_dropped(1)
            if not self._warned:
                self._warned = True
                log.warning(
                    "request log: the database is not keeping up; records are being dropped (%d queued at most)",
                    self._queue.maxsize,
                )

    async def start(self) -> None:
        """Start the writer thread (and apply retention to what an earlier run left)."""
        if self._thread is None:
            with contextlib.suppress(queue.Full):  # then the first batch runs the pass (none ran yet)
                self._queue.put_nowait(_PRUNE)
            self._thread = threading.Thread(target=self._writer, name="seekgate-request-log", daemon=True)
            self._thread.start()

    async def flush(self) -> None:
        """Return once the queue has run empty: every record queued so far is written (or dropped by
        a failed write)."""
        if self._thread is None:
            await asyncio.to_thread(self._drain_here)
        else:
            await asyncio.to_thread(self._queue.join)

    async def aclose(self) -> None:
        """Write everything queued, stop the writer and close the database."""
        self._closed = True
        if self._thread is not None:
            await asyncio.to_thread(self._queue.put, _STOP)  # blocks only until the writer makes room
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Close the database; for a reader that never started the writer (the CLI). Anything
        queued is written first."""
        self._closed = True
        if self._thread is not None:
            raise RuntimeError("the request log's writer is running: await aclose() instead")
        self._drain_here()
        if self.dropped:
            log.warning("request log: %d records were not stored", self.dropped)
        self._writes.close()
        with self._read_lock:
            self._reads.close()

    def _count_dropped(self, n: int) -> None:
        with self._dropped_lock:
            self.dropped += n

    def _writer(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < self._batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            records = [r for r in batch if isinstance(r, RequestRecord)]
            self._write(records)
            if any(item is _PRUNE for item in batch):
                self._maybe_prune(force=True)
            for _ in batch:
                self._queue.task_done()
            if any(item is _STOP for item in batch):
                return

    def _drain_here(self) -> None:
        """Without a writer thread (never started), write the queue from the calling thread."""
        while True:
            taken = []
            while len(taken) < self._batch:
                try:
                    taken.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if not taken:
                return
            self._write([r for r in taken if isinstance(r, RequestRecord)])
            for _ in taken:
                self._queue.task_done()

    def _write(self, records: list[RequestRecord]) -> None:
        if not records:
            return
        try:
            with _transaction(self._writes):
                self._writes.executemany(_INSERT, [_row(r) for r in records])
        except sqlite3.Error:
            # A full disk or a lock held too long: lose this batch, keep serving and keep trying.
            self._count_dropped(len(records))
            log.exception("request log: could not store %d records", len(records))
            return
        self._inserted_since_prune += len(records)
        self._maybe_prune()

    def _maybe_prune(self, force: bool = False) -> None:
        now = self._clock()
        due = now - self._pruned_at >= self._prune_every_s or self._inserted_since_prune >= self._prune_every_rows
        if force or due:
            try:
                self.prune()
            except sqlite3.Error:
                log.exception("request log: retention failed; will retry")

    def prune(self) -> int:
        """Delete records older than `days` and beyond the newest `max_rows`; return how many.
        The writer calls it; call it directly only when no writer runs."""
        now = self._clock()
        self._pruned_at = now
        self._inserted_since_prune = 0
        with _transaction(self._writes):
            gone = self._writes.execute("DELETE FROM requests WHERE time < ?", (now - self.days * 86_400,)).rowcount
            edge = self._writes.execute(
                f"SELECT time, seq FROM requests {_NEWEST_FIRST} LIMIT 1 OFFSET ?", (self.max_rows,)
            ).fetchone()
            if edge is not None:
                gone += self._writes.execute("DELETE FROM requests WHERE (time, seq) <= (?, ?)", edge).rowcount
        return gone

    # --- reading -----------------------------------------------------------------------------

    def query(
        self,
        *,
        task: str | None = None,
        model: str | None = None,
        status: int | str | None = None,
        errors_only: bool = False,
        cache: CacheResult | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        before: str | None = None,
        offset: int = 0,
    ) -> list[RequestRecord]:
        """Stored records, newest first. `status` is a code (429) or a class ("4xx");
        `errors_only` keeps status >= 400 and failed requests; `since` and `until` are Unix
        seconds; `before` is the id of a record: only older ones follow (paging), as does `offset`."""
        where: list[str] = []
        args: list[Any] = []
        for column, value in (("task", task), ("model", model), ("cache", cache)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if status is not None:
            low, high = _status_range(status)
            where.append("status BETWEEN ? AND ?")
            args += [low, high]
        if errors_only:
            where.append("(status >= 400 OR error IS NOT NULL)")
        if since is not None:
            where.append("time >= ?")
            args.append(since)
        if until is not None:
            where.append("time < ?")
            args.append(until)
        with self._read_lock:
            if before is not None:
                cursor = self._reads.execute(
                    f"SELECT time, seq FROM requests WHERE id = ? {_NEWEST_FIRST} LIMIT 1", (before,)
                ).fetchone()
                if cursor is None:
                    raise errors.InvalidRequest(f"no stored request {before!r} to page from", param="before")
                where.append("(time, seq) < (?, ?)")
                args += [cursor[0], cursor[1]]
            clause = f"WHERE {' AND '.join(where)}" if where else ""
            rows = self._reads.execute(
                f"SELECT {_COLUMNS} FROM requests {clause} {_NEWEST_FIRST} LIMIT ? OFFSET ?", (*args, limit, offset)
            ).fetchall()
        return [_record(r) for r in rows]

    def get(self, request_id: str) -> RequestRecord:
        with self._read_lock:
            row = self._reads.execute(
                f"SELECT {_COLUMNS} FROM requests WHERE id = ? {_NEWEST_FIRST} LIMIT 1", (request_id,)
            ).fetchone()
        if row is None:
            raise errors.NotFound(f"no stored request {request_id!r}", param="id", code="request_not_found")
        return _record(row)


def parse_filters(params: Mapping[str, str], now: float) -> dict[str, Any]:
    """Keyword arguments for `RequestLog.query` from text (query parameters, CLI flags), named
    as in `FILTERS`. Raises InvalidRequest naming the parameter at fault."""
    unknown = sorted(set(params) - set(FILTERS))
    if unknown:
        raise errors.InvalidRequest(f"unknown parameter {unknown[0]!r}; known: {', '.join(FILTERS)}", param=unknown[0])
    out: dict[str, Any] = {}
    for name in ("task", "model", "before"):
        if params.get(name):
            out[name] = params[name]
    if params.get("status"):
        _status_range(params["status"])
        out["status"] = params["status"]
    if params.get("errors"):
        flag = _BOOLS.get(params["errors"].lower())
        if flag is None:
            raise errors.InvalidRequest("errors must be true or false", param="errors")
        out["errors_only"] = flag
    if params.get("cache"):
        if params["cache"] not in _CACHE_RESULTS:
            raise errors.InvalidRequest(f"cache must be one of {', '.join(_CACHE_RESULTS)}", param="cache")
        out["cache"] = params["cache"]
    for name in ("since", "until"):
        if params.get(name):
            out[name] = _moment(params[name], now, name)
    out["limit"] = _whole(params.get("limit") or "100", "limit", 1, MAX_LIMIT)
    if params.get("offset"):
        out["offset"] = _whole(params["offset"], "offset", 0, None)
    return out


def _status_range(status: int | str) -> tuple[int, int]:
    text = str(status).strip()
    match = _STATUS.fullmatch(text)
    if match is None:
        raise errors.InvalidRequest(f"status {text!r}: write a code (429) or a class (4xx, 5xx)", param="status")
    if text[1:].lower() == "xx":
        low = int(match.group(1)) * 100
        return low, low + 99
    return int(text), int(text)


def _moment(text: str, now: float, param: str) -> float:
    """An ISO 8601 time (UTC unless it names a zone), Unix seconds, or a time ago: 30s, 15m, 2h, 1d, 1w."""
    text = text.strip()
    relative = _RELATIVE.fullmatch(text)
    if relative:
        return now - float(relative.group(1)) * _UNITS[relative.group(2)]
    if re.fullmatch(r"\d{9,}(?:\.\d+)?", text):
        return float(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise errors.InvalidRequest(
            f"{param} {text!r}: write an ISO time (2025-01-31T09:00:00Z) or a time ago (30s, 15m, 2h, 1d, 1w)", param=param
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _whole(text: str, param: str, low: int, high: int | None) -> int:
    if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise errors.InvalidRequest(f"{param} must be a whole number {bound}", param=param)
    return int(text)


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One transaction (the connection is in autocommit mode, where each statement is its own)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
    db.execute("PRAGMA journal_mode=WAL")
    # A request log can lose its last moments in a power cut; it must never slow the writer down.
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def _row(r: RequestRecord) -> tuple[Any, ...]:
    return (
        r.id, r.time, r.endpoint, r.status, r.latency_ms, int(r.stream), r.ttft_ms, r.task, r.model, r.backend, r.error,
        r.input_tokens, r.output_tokens, r.cache, _json(r.guards), _json(r.fallbacks), r.escalated, int(r.slo_breach),
        r.caller, r.prompt, r.answer,
    )  # fmt: skip


def _record(row: tuple[Any, ...]) -> RequestRecord:
    (rid, at, endpoint, status, latency, stream, ttft, task, model, backend, error, tokens_in, tokens_out,
     cache, guards, fallbacks, escalated, slo_breach, caller, prompt, answer) = row  # fmt: skip
    return RequestRecord(
        id=rid, time=at, endpoint=endpoint, status=status, latency_ms=latency, stream=bool(stream), ttft_ms=ttft, task=task,
        model=model, backend=backend, error=error, input_tokens=tokens_in, output_tokens=tokens_out, cache=cache,
        guards=msgspec.json.decode(guards), fallbacks=tuple(msgspec.json.decode(fallbacks)), escalated=escalated,
        slo_breach=bool(slo_breach), caller=caller, prompt=prompt, answer=answer,
    )  # fmt: skip


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()
