"""`seekgate` command line: one module per command group, wired here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from seekgate import __version__
from seekgate.cli import capabilities, context, guards, mcp, models, requests, review, reviews, serve
from seekgate.settings import ConfigError

__all__ = ["main"]




def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seekgate", description="A gateway for local coding models.")
    parser.add_argument("--version", action="version", version=f"seekgate {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML file over config/default.toml (or set SEEKGATE_CONFIG)")
    parser.add_argument(
        "--set", metavar="KEY=VALUE", action="append", default=[], help="override one key, e.g. --set server.port=9000"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve.add_parser(sub)
    models.add_parsers(sub)
    capabilities.add_parser(sub)
    reviews.add_parser(sub)
    requests.add_parser(sub)
    context.add_parsers(sub)
    guards.add_parsers(sub)
    mcp.add_parser(sub)
    review.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except ConfigError as exc:
        print(f"seekgate: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
