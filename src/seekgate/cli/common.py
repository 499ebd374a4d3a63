"""Settings for a command: config file, --set overrides and the command's own flags."""

from __future__ import annotations

import argparse
import sys
import tomllib
from typing import Any

from seekgate.settings import ConfigError, Settings, load_settings, resolve_secret

__all__ = ["AdminCallFailed", "admin_call", "print_json_lines", "print_table", "settings_from_args"]


def print_json_lines(rows: list[dict[str, object]]) -> None:
    import msgspec

    for row in rows:
        sys.stdout.write(msgspec.json.encode(row).decode() + "\n")


def print_table(headers: tuple[str, ...], rows: list[list[str]]) -> None:
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def settings_from_args(args: argparse.Namespace, flags: dict[str, Any] | None = None) -> Settings:
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: write KEY=VALUE, for example --set server.port=9000")
        try:
            overrides[key.strip()] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            overrides[key.strip()] = value
    overrides.update({k: v for k, v in (flags or {}).items() if v is not None})
    return load_settings(args.config, overrides=overrides)


class AdminCallFailed(Exception):
    """The gateway refused or could not be reached; the message says which and why."""


def admin_call(settings: Settings, base_url: str | None, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call a running gateway's admin API with the key from the environment."""
    import json
    import urllib.error
    import urllib.request

    url = (base_url or f"http://{settings.server.host}:{settings.server.port}").rstrip("/") + path
    headers = {"Content-Type": "application/json"}
    key = resolve_secret(settings.admin.api_key)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=600) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read())["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = exc.reason
        raise AdminCallFailed(f"{method} {url}: {exc.code}: {message}") from None
    except urllib.error.URLError as exc:
        raise AdminCallFailed(f"cannot reach the gateway at {url}: {exc.reason}") from None
