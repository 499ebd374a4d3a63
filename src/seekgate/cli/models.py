"""`seekgate models` and `seekgate pull`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


from seekgate.backends.weights import describe_source, download, local_weights
from seekgate.cli.common import print_json_lines, AdminCallFailed, admin_call, print_table, settings_from_args
from seekgate.settings import AnthropicBackendSpec, FakeBackendSpec, OpenAIBackendSpec, Settings

__all__ = ["add_parsers", "admin_command", "models_command", "pull_command"]


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("models", help="list model aliases, where each runs, and whether its weights are here")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(run=models_command)
    actions = p.add_subparsers(dest="action", metavar="{pin,rollback,swap}")
    for name, help_text, args in (
        ("pin", "move a model family's pin to a version (running gateway)", ("family", "version")),
        ("rollback", "move a model family's pin back to its previous version", ("family",)),
        ("swap", "hot-swap an embedded model to other GGUF weights", ("alias", "path")),
    ):
        a = actions.add_parser(name, help=help_text)
        for arg in args:
            a.add_argument(arg)
        a.add_argument("--url", help="the gateway (default: server.host and server.port)")
        a.set_defaults(run=admin_command)
    p = sub.add_parser("pull", help="download a model's weights from the Hugging Face hub")
    p.add_argument("alias", help="a model alias from `seekgate models`")
    p.set_defaults(run=pull_command)


def _rows(settings: Settings) -> list[dict[str, object]]:
    rows = []
    for alias, spec in settings.models.items():
        backend = settings.backends[spec.backend]
        remote = isinstance(backend, OpenAIBackendSpec | AnthropicBackendSpec | FakeBackendSpec)
        weights = None if remote else local_weights(spec, settings.server.data_path)
        rows.append(
            {
                "alias": alias,
                "default": alias == settings.server.default_model,
                "backend": spec.backend,
                "type": type(backend).__struct_config__.tag,
                "source": describe_source(spec) if not remote else f"{getattr(backend, 'base_url', 'fake')} model {spec.upstream_model}",
                "weights": "server" if remote else ("present" if weights else "missing"),
                "path": str(weights) if weights else None,
                "description": spec.description,
            }
        )
    return rows


def models_command(args: argparse.Namespace) -> int:
    rows = _rows(settings_from_args(args))
    if args.json:
        print_json_lines(rows)
        return 0
    headers = ("alias", "backend", "type", "weights", "source")
    table = [[("*" if r["default"] else "") + str(r["alias"]), *(str(r[h]) for h in headers[1:])] for r in rows]
    print_table(headers, table)
    print("\n* default model. `seekgate pull ALIAS` fetches missing weights.")
    return 0


def admin_command(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if args.action == "pin":
        path, body = f"/admin/models/{args.family}/pin", {"version": args.version}
    elif args.action == "rollback":
        path, body = f"/admin/models/{args.family}/rollback", None
    else:
        path, body = f"/admin/models/{args.alias}/swap", {"path": str(Path(args.path).expanduser().resolve())}
    try:
        result = admin_call(settings, args.url, "POST", path, body)
    except AdminCallFailed as exc:
        print(f"seekgate: {exc}", file=sys.stderr)
        return 1
    name = result.get("family") or result.get("alias")
    print(f"{name}: {result['previous']} -> {result['current']}")
    return 0


def pull_command(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    spec = settings.models.get(args.alias)
    if spec is None:
        print(f"seekgate: unknown model {args.alias!r}; known: {', '.join(sorted(settings.models))}", file=sys.stderr)
        return 2
    present = local_weights(spec, settings.server.data_path)
    if present is not None:
        print(f"{args.alias}: weights already present at {present}")
        return 0
    if not (spec.hf_repo and spec.hf_file):
        print(f"seekgate: {args.alias} has nothing to download (source: {describe_source(spec) or 'a server'})", file=sys.stderr)
        return 2
    print(f"downloading {spec.hf_repo}/{spec.hf_file} into {settings.server.data_path / 'models'}")
    try:
        path = download(spec, settings.server.data_path)
    except Exception as exc:  # huggingface_hub raises many transport/HTTP errors; report them plainly
        print(f"seekgate: download failed: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"{args.alias}: saved {path}")
    return 0
