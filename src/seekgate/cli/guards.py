"""`seekgate guard scan` (findings in files or JSON lines, for people, pre-commit hooks and
evaluation) and `seekgate keys` (API keys, stored hashed in data_dir/seekgate.db)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import msgspec

from seekgate import errors
from seekgate.cli.common import settings_from_args
from seekgate.guards.keys import ApiKey, KeyStore
from seekgate.guards.scanner import Scanner
from seekgate.guards.types import Finding

__all__ = ["add_parsers"]


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("guard", help="run the guards offline")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser(
        "scan",
        help="print secrets, PII, dangerous commands and prompt injections found in files; exit 1 if any",
        description="Exit status: 0 nothing found, 1 findings, 2 bad input.",
    )
    a.add_argument("files", nargs="*", metavar="FILE", help="files to scan (- for stdin)")
    a.add_argument("--profile", default="default", help="the guard profile (guards.profiles.NAME); default: default")
    a.add_argument("--jsonl", action="store_true", help='read {"id", "text"} lines on stdin, write {"id", "findings"} lines')
    a.set_defaults(run=run_scan)

    k = sub.add_parser("keys", help="create, list and revoke API keys")
    actions = k.add_subparsers(dest="action", required=True)
    a = actions.add_parser("create", help="make a key; it is printed once and stored only as a hash")
    a.add_argument("--name", required=True, help="who or what the key is for")
    a.add_argument("--tasks", default="", help="comma-separated tasks the key may run (default: all)")
    a.add_argument("--rpm", type=int, default=0, help="requests per minute (default: guards.requests_per_minute)")
    a.add_argument("--tpm", type=int, default=0, help="tokens per minute (default: guards.tokens_per_minute)")
    a.add_argument("--json", action="store_true", help="print the record and the key as JSON")
    a = actions.add_parser("list", help="every key, without secrets")
    a.add_argument("--json", action="store_true", help="one JSON object per line")
    a = actions.add_parser("revoke", help="refuse a key from now on (other gateway processes within seconds)")
    a.add_argument("id")
    k.set_defaults(run=run_keys)


def run_scan(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    profile = settings.guards.profiles.get(args.profile)
    if profile is None:
        print(f"seekgate: unknown guard profile {args.profile!r}; defined: {', '.join(sorted(settings.guards.profiles))}", file=sys.stderr)
        return 2
    scanner = Scanner()
    found_any = False
    if args.jsonl:
        for number, line in enumerate(sys.stdin, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                text = item["text"]
                if not isinstance(text, str):
                    raise TypeError
            except (ValueError, KeyError, TypeError):
                print(f"seekgate: stdin line {number}: expected a JSON object with a string \"text\"", file=sys.stderr)
                return 2
            findings = scanner.scan(text, profile, injection=True, commands=True)
            found_any = found_any or bool(findings)
            out = {"id": item.get("id"), "findings": [msgspec.to_builtins(f) for f in findings]}
            sys.stdout.write(json.dumps(out) + "\n")
        return 1 if found_any else 0
    if not args.files:
        print("seekgate: name files to scan, - for stdin, or use --jsonl", file=sys.stderr)
        return 2
    for name, text in _read(args.files):
        if text is None:
            print(f"seekgate: {name}: cannot read (missing, a folder, or not UTF-8 text)", file=sys.stderr)
            return 2
        for f in scanner.scan(text, profile, injection=True, commands=True):
            found_any = True
            line, col = _position(text, f)
            print(f"{name}:{line}:{col}: {f.kind} {f.type} ({f.action}) {_preview(text[f.start:f.end], f)}")
    return 1 if found_any else 0


def _read(files: list[str]) -> Iterator[tuple[str, str | None]]:
    for name in files:
        if name == "-":
            yield "<stdin>", sys.stdin.read()
            continue
        try:
            yield name, Path(name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            yield name, None


def _position(text: str, f: Finding) -> tuple[int, int]:
    line = text.count("\n", 0, f.start) + 1
    return line, f.start - (text.rfind("\n", 0, f.start) + 1) + 1


def _preview(value: str, f: Finding) -> str:
    """Never print a secret or PII value in full: a scan's output lands in CI logs."""
    if f.kind in ("secret", "pii"):
        return f"[{len(value)} chars]"
    value = " ".join(value.split())
    return repr(value if len(value) <= 60 else value[:57] + "...")


def run_keys(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    store = KeyStore(settings.server.data_path / "seekgate.db")
    try:
        if args.action == "create":
            tasks = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
            unknown = [t for t in tasks if t not in settings.tasks]
            if unknown:
                print(f"seekgate: unknown task {unknown[0]!r}; defined: {', '.join(sorted(settings.tasks))}", file=sys.stderr)
                return 2
            if args.rpm < 0 or args.tpm < 0:
                print("seekgate: --rpm and --tpm must not be negative", file=sys.stderr)
                return 2
            record, key = store.create(args.name, tasks=tasks, requests_per_minute=args.rpm, tokens_per_minute=args.tpm)
            if args.json:
                print(json.dumps(msgspec.to_builtins(record) | {"key": key}))
            else:
                print(f"created {record.id} ({record.name}); the key, shown only this once:\n{key}")
        elif args.action == "list":
            for record in store.list():
                print(json.dumps(msgspec.to_builtins(record)) if args.json else _row(record))
        else:
            record = store.revoke(args.id)
            print(f"revoked {record.id} ({record.name})")
    except errors.SeekgateError as exc:
        print(f"seekgate: {exc.message}", file=sys.stderr)
        return 2
    finally:
        store.close()
    return 0


def _row(key: ApiKey) -> str:
    state = "revoked" if key.revoked_at else "active"
    tasks = ",".join(key.tasks) or "all tasks"
    return f"{key.id}  {state:7}  {key.name}  ...{key.hint}  {tasks}  rpm={key.requests_per_minute or '-'} tpm={key.tokens_per_minute or '-'}"
