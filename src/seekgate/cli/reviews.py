"""`seekgate reviews`: the reviewers' side of the human-review queue, over a running gateway's
admin API (the key comes from the variable that `admin.api_key` names)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import quote

import msgspec

from seekgate.cli.common import AdminCallFailed, admin_call, settings_from_args

__all__ = ["add_parser"]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("reviews", help="list, show, approve or reject answers waiting for a human reviewer")
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("list", help="reviews, newest first")
    a.add_argument("--status", choices=["pending", "approved", "rejected"], default="pending")
    a.add_argument("--json", action="store_true", help="one JSON object per line")
    a = actions.add_parser("show", help="one review, with its request and candidate answer")
    a.add_argument("id")
    a = actions.add_parser("approve", help="send the candidate answer (or your edit) to the client")
    a.add_argument("id")
    edit = a.add_mutually_exclusive_group()
    edit.add_argument("--answer", help="the edited answer")
    edit.add_argument("--answer-file", metavar="FILE", help="read the edited answer from FILE (- for stdin)")
    a = actions.add_parser("reject", help="refuse the answer, saying why")
    a.add_argument("id")
    a.add_argument("--reason", required=True)
    for action in actions.choices.values():
        action.add_argument("--url", help="the gateway (default: server.host and server.port)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    answer = getattr(args, "answer", None)
    if getattr(args, "answer_file", None):
        try:
            answer = sys.stdin.read() if args.answer_file == "-" else Path(args.answer_file).read_text()
        except OSError as exc:
            print(f"seekgate: --answer-file: {exc.strerror}: {args.answer_file}", file=sys.stderr)
            return 2
    path = f"/admin/reviews/{quote(args.id, safe='')}" if hasattr(args, "id") else ""
    try:
        if args.action == "list":
            data = admin_call(settings, args.url, "GET", f"/admin/reviews?status={args.status}")["data"]
            for review in data:
                if args.json:
                    print(msgspec.json.encode(review).decode())
                else:
                    print(f"{review['id']}  {review['status']:8}  {review['task']:10}  {review['model']:20}  {_preview(review['candidate'])}")
            return 0
        if args.action == "show":
            print(msgspec.json.format(msgspec.json.encode(admin_call(settings, args.url, "GET", path))).decode())
            return 0
        if args.action == "approve":
            result = admin_call(settings, args.url, "POST", path + "/approve", {"answer": answer} if answer is not None else {})
        else:
            result = admin_call(settings, args.url, "POST", path + "/reject", {"reason": args.reason})
    except AdminCallFailed as exc:
        print(f"seekgate: {exc}", file=sys.stderr)
        return 1
    print(f"{result['id']}: {result['status']}")
    return 0


def _preview(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
