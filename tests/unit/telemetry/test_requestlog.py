"""The request log: records land on disk after a flush and across a clean shutdown, filters and
paging, retention by age and by count, and a queue that drops rather than blocks when the
database cannot keep up."""

import asyncio
import logging
import sqlite3
from itertools import count
from pathlib import Path

import pytest

from seekgate import errors
from seekgate.telemetry.record import RequestRecord
from seekgate.telemetry.requestlog import RequestLog, parse_filters

DAY = 86_400.0
NOW = 1_750_000_000.0
_ids = count()


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rec(**fields: object) -> RequestRecord:
    base: dict[str, object] = {"id": f"req_{next(_ids)}", "time": NOW, "endpoint": "/v1/chat/completions", "status": 200,
                               "latency_ms": 12.5, "task": "chat", "model": "fake-echo"}  # fmt: skip
    return RequestRecord(**{**base, **fields})  # type: ignore[arg-type]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "seekgate.db"


def _rows(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM requests").fetchone()[0])


def _stored(db: Path, **kw: object) -> RequestLog:
    return RequestLog(db, kw.pop("days", 7.0), kw.pop("max_rows", 1000), clock=kw.pop("clock", Clock()), **kw)  # type: ignore[arg-type]


def _write(log: RequestLog, records: list[RequestRecord]) -> None:
    async def go() -> None:
        await log.start()
        for r in records:
            log.observe(r)
        await log.flush()

    asyncio.run(go())


# --- writing ------------------------------------------------------------------------------------


def test_records_land_after_a_flush_and_read_back_whole(db):
    log = _stored(db)
    full = rec(stream=True, ttft_ms=3.5, backend="fake", error=None, input_tokens=11, output_tokens=7, cache="miss",
               guards={"secret:redact": 2, "pii:flag": 1}, fallbacks=("down=upstream_unavailable",), escalated="review",
               slo_breach=True, caller="key:key_0001", prompt="user: my key is [SECRET_1]", answer="done")  # fmt: skip
    bare = rec(time=NOW + 1, task=None, model=None, status=404, error="model_not_found")
    _write(log, [full, bare])
    assert log.get(full.id) == full and log.get(bare.id) == bare
    assert log.query() == [bare, full]
    asyncio.run(log.aclose())


def test_observe_only_queues_the_writer_thread_stores(db):
    log = _stored(db)
    log.observe(rec())
    assert _rows(db) == 0
    asyncio.run(log.aclose())
    assert _rows(db) == 1


def test_aclose_writes_everything_still_queued(db):
    async def go() -> RequestLog:
        log = _stored(db, batch=7)
        await log.start()
        for i in range(500):
            log.observe(rec(time=NOW + i))
        await log.aclose()
        return log

    log = asyncio.run(go())
    assert _rows(db) == 500 and log.dropped == 0
    again = _stored(db)
    assert len(again.query(limit=1000)) == 500
    again.close()


def test_a_closed_log_ignores_late_records(db):
    log = _stored(db)
    asyncio.run(log.aclose())
    log.observe(rec())
    assert _rows(db) == 0


def test_the_queue_drops_and_warns_once_instead_of_blocking_while_the_database_is_locked(db, caplog):
    log = _stored(db, max_queue=10, batch=5)
    locker = sqlite3.connect(db, isolation_level=None)

    async def go() -> None:
        await log.start()
        await log.flush()
        locker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
        for i in range(1000):
            log.observe(rec(time=NOW + i))  # would hang here if observe waited on the disk
        await asyncio.sleep(0.2)
        locker.execute("ROLLBACK")
        await log.aclose()

    with caplog.at_level(logging.WARNING, logger="seekgate.telemetry"):
        asyncio.run(go())
    stored = _rows(db)
    assert log.dropped > 0 and stored + log.dropped == 1000 and stored <= 10 + 5
    warnings = [r for r in caplog.records if "not keeping up" in r.getMessage()]
    assert len(warnings) == 1
    locker.close()


# --- retention ----------------------------------------------------------------------------------


def test_records_older_than_the_retention_go_when_the_writer_starts(db):
    clock = Clock()
    log = _stored(db, days=2.0, clock=clock)
    _write(log, [rec(time=NOW - 3 * DAY), rec(time=NOW - 1.5 * DAY), rec(time=NOW)])
    asyncio.run(log.aclose())
    assert _rows(db) == 3, "a pass is not due yet: under a minute and few inserts since the start"
    clock.now = NOW + 1 * DAY
    later = _stored(db, days=2.0, clock=clock)
    asyncio.run(later.start())
    asyncio.run(later.aclose())
    assert [r.time for r in _stored(db).query()] == [NOW]


def test_retention_runs_at_most_once_a_minute_or_every_n_inserts(db):
    clock = Clock(NOW + 2 * DAY)  # records at NOW are too old
    log = _stored(db, days=1.0, clock=clock, prune_every_s=60.0, prune_every_rows=5)

    async def go() -> None:
        await log.start()  # a pass runs at start
        for i in range(3):
            log.observe(rec(time=NOW + i))
            await log.flush()
        assert _rows(db) == 3, "not yet due: under a minute and under 5 inserts since the last pass"
        clock.now += 61
        log.observe(rec(time=clock.now))
        await log.flush()
        assert _rows(db) == 1, "due by time: the three old ones went"
        clock.now += 1
        for i in range(4):
            log.observe(rec(time=NOW))
            await log.flush()
        assert _rows(db) == 5
        log.observe(rec(time=NOW))
        await log.flush()
        assert _rows(db) == 1, "due by count after 5 inserts"
        await log.aclose()

    asyncio.run(go())


def test_beyond_max_rows_the_oldest_go_first(db):
    log = _stored(db, max_rows=10, prune_every_rows=1_000_000, prune_every_s=1e9)
    records = [rec(time=NOW + i % 7, id=f"r{i:02}") for i in range(25)]  # times repeat: ties go by insertion
    _write(log, records)
    assert _rows(db) == 25
    assert log.prune() == 15
    newest_first = sorted(records, key=lambda r: (r.time, r.id), reverse=True)
    assert [r.id for r in log.query(limit=100)] == [r.id for r in newest_first[:10]]
    asyncio.run(log.aclose())


# --- reading ------------------------------------------------------------------------------------


@pytest.fixture
def filled(db):
    log = _stored(db)
    records = [
        rec(id="a", time=NOW + 1, task="chat", model="m1", status=200, cache="hit"),
        rec(id="b", time=NOW + 2, task="chat", model="m2", status=429, error="rate_limited"),
        rec(id="c", time=NOW + 3, task="refactor", model="m1", status=503, error="upstream_unavailable"),
        rec(id="d", time=NOW + 4, task="refactor", model="m2", status=200, cache="miss"),
        rec(id="e", time=NOW + 5, task="chat", model="m1", status=200, error="output_blocked"),
        rec(id="f", time=NOW + 6, task=None, model=None, status=404),
    ]
    _write(log, records)
    yield log
    asyncio.run(log.aclose())


def _ids_of(log: RequestLog, **kw: object) -> str:
    return "".join(r.id for r in log.query(**kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, "fedcba"),
        ({"task": "chat"}, "eba"),
        ({"model": "m1"}, "eca"),
        ({"task": "refactor", "model": "m2"}, "d"),
        ({"status": 429}, "b"),
        ({"status": "4xx"}, "fb"),
        ({"status": "5XX"}, "c"),
        ({"errors_only": True}, "fecb"),
        ({"cache": "hit"}, "a"),
        ({"cache": "off"}, "fecb"),
        ({"since": NOW + 3}, "fedc"),
        ({"since": NOW + 2, "until": NOW + 4}, "cb"),
        ({"limit": 2}, "fe"),
        ({"limit": 2, "offset": 2}, "dc"),
        ({"before": "d"}, "cba"),
        ({"before": "d", "task": "chat", "limit": 1}, "b"),
        ({"task": "nothing"}, ""),
    ],
)  # fmt: skip
def test_query_filters_newest_first(filled, filters, expected):
    assert _ids_of(filled, **filters) == expected


def test_get_an_unknown_id_is_not_found_and_paging_from_one_is_invalid(filled):
    with pytest.raises(errors.NotFound) as missing:
        filled.get("nope")
    assert missing.value.code == "request_not_found"
    with pytest.raises(errors.InvalidRequest) as bad:
        filled.query(before="nope")
    assert bad.value.param == "before"


def test_a_repeated_request_id_reads_back_as_the_newest(db):
    log = _stored(db)
    _write(log, [rec(id="same", status=200), rec(id="same", time=NOW + 1, status=500)])
    assert log.get("same").status == 500 and len(log.query()) == 2
    asyncio.run(log.aclose())


def test_a_reader_sees_what_another_process_wrote(db, filled):
    reader = _stored(db)
    assert _ids_of(reader, task="refactor") == "dc"
    reader.close()


# --- parsing filters ----------------------------------------------------------------------------


def test_parse_filters_turns_text_into_query_arguments():
    parsed = parse_filters({"task": "chat", "model": "m", "status": "4xx", "errors": "true", "cache": "miss",
                            "since": "15m", "until": "2025-01-31T09:00:00Z", "limit": "5", "before": "req_1", "offset": "3"}, NOW)  # fmt: skip
    assert parsed == {"task": "chat", "model": "m", "status": "4xx", "errors_only": True, "cache": "miss", "since": NOW - 900,
                      "until": 1738314000.0, "limit": 5, "before": "req_1", "offset": 3}  # fmt: skip
    assert parse_filters({}, NOW) == {"limit": 100}
    assert parse_filters({"since": "2h"}, NOW)["since"] == NOW - 7200
    assert parse_filters({"since": "1d"}, NOW)["since"] == NOW - DAY
    assert parse_filters({"since": "1.5h"}, NOW)["since"] == NOW - 5400
    assert parse_filters({"since": "2025-01-31T09:00:00"}, NOW)["since"] == 1738314000.0, "a time without a zone is UTC"
    assert parse_filters({"since": "2025-01-31T10:00:00+01:00"}, NOW)["since"] == 1738314000.0
    assert parse_filters({"since": "1738314000"}, NOW)["since"] == 1738314000.0
    assert parse_filters({"errors": "false", "status": "429"}, NOW) == {"errors_only": False, "status": "429", "limit": 100}


@pytest.mark.parametrize(
    ("params", "param"),
    [({"status": "42"}, "status"), ({"status": "6xx"}, "status"), ({"status": "4x"}, "status"), ({"errors": "maybe"}, "errors"),
     ({"cache": "warm"}, "cache"), ({"since": "yesterday"}, "since"), ({"since": "15 minutes"}, "since"), ({"until": "-2h"}, "until"),
     ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"limit": "ten"}, "limit"), ({"offset": "-1"}, "offset"),
     ({"modle": "m1"}, "modle")],
)  # fmt: skip
def test_bad_filters_are_invalid_naming_the_parameter(params, param):
    with pytest.raises(errors.InvalidRequest) as bad:
        parse_filters(params, NOW)
    assert bad.value.param == param
