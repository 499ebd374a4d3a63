"""Settings for a command: config file, --set overrides and the command's own flags."""

from __future__ import annotations

import argparse
import tomllib
from typing import Any

from seekgate.settings import ConfigError, Settings, load_settings

__all__ = ["settings_from_args"]


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
