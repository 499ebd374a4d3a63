"""`seekgate requests`: browse the request log in data_dir/seekgate.db, read straight from the
database (no running gateway needed; WAL lets it read while the gateway writes).

    seekgate requests [--task T] [--model M] [--status 429|4xx] [--errors] [--cache hit] [--since 2h] [--json]
    seekgate requests show ID
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from typing import get_args

import msgspec

from seekgate import errors
from seekgate.cli.common import print_json_lines, print_table, settings_from_args
from seekgate.telemetry.record import CacheResult, RequestRecord
from seekgate.telemetry.requestlog import RequestLog, parse_filters

__all__ = ["add_parser"]

_HEADERS = ("time (UTC)", "id", "endpoint", "task", "model", "status", "ms", "in/out", "cache", "guards")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "requests",
        help="recent requests from the request log, newest first",
        usage="seekgate requests [-h] [--task T] [--model M] [--status S] [--errors] [--cache C] [--since WHEN] [--until WHEN]\n"
        "                         [--limit N] [--json]\n"
        "       seekgate requests show ID [--json]",
        description="Recent requests from the request log (data_dir/seekgate.db), newest first. "
        "Exit status: 0 done, 1 no request log or no such request, 2 bad input.",
    )
    p.add_argument("--task", help="only this task")
    p.add_argument("--model", help="only this model alias")
    p.add_argument("--status", help="a status code (429) or class (4xx, 5xx)")
    p.add_argument("--errors", action="store_true", help="only failed requests (status >= 400 or an error code)")
    p.add_argument("--cache", choices=get_args(CacheResult), help="only this cache result")
    p.add_argument("--since", help="from this time: ISO 8601 (UTC unless zoned), or ago: 30s, 15m, 2h, 1d, 1w")
    p.add_argument("--until", help="before this time, written as for --since")
    p.add_argument("--limit", default="100", help="at most this many, 1 to 1000 (default 100)")
    p.add_argument("--json", action="store_true", help="one JSON object per line, prompt and answer included")
    actions = p.add_subparsers(dest="action", title="one request", metavar="show ID")
    a = actions.add_parser(
        "show", prog="seekgate requests show", help="one request, with its prompt and answer when they were kept"
    )
    a.add_argument("id")
    a.add_argument("--json", action="store_true", help="as one JSON object")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    path = settings.server.data_path / "seekgate.db"
    if not path.is_file():
        print(
            f"seekgate: no request log at {path}: the gateway makes it when it first starts (is server.data_dir right?)",
            file=sys.stderr,
        )
        return 1
    log = RequestLog(path, settings.telemetry.request_log_days, settings.telemetry.request_log_max_rows)
    try:
        if args.action == "show":
            return _show(log, args.id, args.json)
        raw = {"task": args.task, "model": args.model, "status": args.status, "errors": "true" if args.errors else None,
               "cache": args.cache, "since": args.since, "until": args.until, "limit": args.limit}  # fmt: skip
        try:
            found = log.query(**parse_filters({k: v for k, v in raw.items() if v is not None}, time.time()))
        except errors.InvalidRequest as exc:
            print(f"seekgate: --{exc.param}: {exc.message}" if exc.param else f"seekgate: {exc.message}", file=sys.stderr)
            return 2
    finally:
        log.close()
    if args.json:
        print_json_lines([msgspec.to_builtins(r) for r in found])
    else:
        print_table(_HEADERS, [_row(r) for r in found])
    return 0


def _show(log: RequestLog, request_id: str, as_json: bool) -> int:
    try:
        record = log.get(request_id)
    except errors.NotFound as exc:
        print(f"seekgate: {exc.message}", file=sys.stderr)
        return 1
    if as_json:
        print(msgspec.json.encode(record).decode())
        return 0
    fields = msgspec.to_builtins(record)
    fields["time"] = _when(record.time, precise=True)
    for name, value in fields.items():
        if name not in ("prompt", "answer"):
            print(f"{name + ':':15} {_text(value)}")
    for name in ("prompt", "answer"):
        value = fields[name]
        print(
            f"\n--- {name} ---\n{value}" if value is not None else f"\n--- {name}: not kept (telemetry.log_prompts = false) ---"
        )
    return 0


def _row(r: RequestRecord) -> list[str]:
    return [_when(r.time), r.id, r.endpoint, r.task or "-", r.model or "-", str(r.status), f"{r.latency_ms:.0f}",
            f"{r.input_tokens}/{r.output_tokens}", r.cache, _text(r.guards)]  # fmt: skip


def _when(at: float, precise: bool = False) -> str:
    moment = datetime.fromtimestamp(at, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z") if precise else moment.strftime("%Y-%m-%d %H:%M:%S")


def _text(value: object) -> str:
    if value is None or (isinstance(value, dict | list | tuple) and not value):
        return "-"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)
