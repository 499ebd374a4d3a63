"""Model versions and pins. An alias may name a dated version, `family@version`
(`ds-coder-v2@2024-06-17`); the bare family resolves to its current pin. Pins move and roll back
through the admin API, and are kept in the data directory so a restart keeps them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from seekgate import errors

__all__ = ["Pins", "split_alias"]


def split_alias(alias: str) -> tuple[str, str | None]:
    family, sep, version = alias.partition("@")
    return (family, version) if sep else (alias, None)


class Pins:
    def __init__(self, aliases: Iterable[str], path: Path) -> None:
        self._path = path
        self.versions: dict[str, list[str]] = {}
        for alias in aliases:
            family, version = split_alias(alias)
            if version is not None:
                self.versions.setdefault(family, []).append(version)
        for versions in self.versions.values():
            versions.sort()
        # Default pin: the newest version (dates and v-numbers sort); saved state overrides it.
        self._current = {family: versions[-1] for family, versions in self.versions.items()}
        self._history: dict[str, list[str]] = {family: [] for family in self.versions}
        self._load()

    def _load(self) -> None:
        try:
            saved = json.loads(self._path.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError):
            return  # a damaged file: fall back to the newest versions rather than refuse to start
        for family, state in saved.items():
            if family in self.versions and state.get("current") in self.versions[family]:
                self._current[family] = state["current"]
                self._history[family] = [v for v in state.get("history", []) if v in self.versions[family]]

    def _save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        state = {f: {"current": self._current[f], "history": self._history[f]} for f in self.versions}
        fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".pins-")
        with os.fdopen(fd, "w") as out:
            json.dump(state, out, indent=2)
        os.replace(tmp, self._path)  # atomic: a crash leaves the old file or the new one

    def resolve(self, name: str) -> str | None:
        """The alias a requested name means: itself if versioned, else its family's pin."""
        family, version = split_alias(name)
        if version is None and family in self._current:
            return f"{family}@{self._current[family]}"
        return None

    def current(self, family: str) -> str:
        self._family(family)
        return self._current[family]

    def state(self) -> dict[str, dict[str, object]]:
        return {f: {"current": self._current[f], "versions": list(v), "history": list(self._history[f])} for f, v in self.versions.items()}

    def pin(self, family: str, version: str) -> tuple[str, str]:
        versions = self._family(family)
        if version not in versions:
            raise errors.InvalidRequest(f"{family} has no version {version!r}; versions: {', '.join(versions)}", param="version")
        previous = self._current[family]
        if version != previous:
            self._history[family].append(previous)
            self._current[family] = version
            self._save()
        return previous, version

    def rollback(self, family: str) -> tuple[str, str]:
        self._family(family)
        if not self._history[family]:
            raise errors.InvalidRequest(f"{family} has no earlier pin to roll back to (current: {self._current[family]})")
        previous = self._current[family]
        self._current[family] = self._history[family].pop()
        self._save()
        return previous, self._current[family]

    def _family(self, family: str) -> list[str]:
        if family not in self.versions:
            raise errors.NotFound(
                f"no versioned model family {family!r}; families: {', '.join(sorted(self.versions)) or 'none (name aliases family@version)'}"
            )
        return self.versions[family]
