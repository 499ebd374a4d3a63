"""Reversible redaction: values out, placeholders in, and the way back, also mid-stream.

A placeholder names what it hides and is stable: `[GITHUB_TOKEN_3f9a1c]` is the same for the same
value in every request this gateway serves, also after a restart (an HMAC under a key kept in
data_dir/vault.key, or derived from guards.vault_key), so a conversation that sends the same
secret each turn keeps the same prompt prefix and its prefix cache, and the response cache still
finds an answer to a prompt that held a secret once the gateway restarted. Only placeholders of this request's vault are restored; anything else that looks like
one passes through as text.

Masking uses `[EMAIL_REDACTED]`-style placeholders that are never restored.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path

from seekgate.guards.types import Action, Finding

__all__ = ["PLACEHOLDER", "StreamRestorer", "Vault", "apply", "vault_key"]

PLACEHOLDER = re.compile(r"\[([A-Z][A-Z0-9_]{0,39})_([0-9a-f]{6,12})\]")
_LONGEST = 1 + 40 + 1 + 12 + 1
# Every proper prefix of a placeholder matches this; a stream holds such a tail back.
_PREFIX = re.compile(r"\[(?:[A-Z][A-Z0-9_]{0,40}(?:[0-9a-f]{0,12})?)?\Z")


_KEY_BYTES = 32


def vault_key(secret: str | None, path: Path) -> bytes:
    """The key placeholders are made with: derived from `secret` when one is configured (replicas
    share it), else read from `path`, which the first process to need it creates (mode 0600;
    workers starting together agree on one, since the file appears whole or not at all)."""
    if secret:
        return hashlib.sha256(b"seekgate vault\0" + secret.encode()).digest()
    for _ in range(50):
        with contextlib.suppress(FileNotFoundError):
            key = path.read_bytes()
            if len(key) == _KEY_BYTES:
                return key
            raise ValueError(f"{path} is not a vault key ({len(key)} bytes, expected {_KEY_BYTES}); delete it to make a new one")
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, os.urandom(_KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(draft, path)  # fails if another process got there first: then its key is used
        except FileExistsError:
            pass
        finally:
            draft.unlink()
        time.sleep(0.01)
    raise RuntimeError(f"could not read or create the vault key at {path}")


class Vault:
    """The values one request's guards replaced, by placeholder."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self.values: dict[str, str] = {}

    def placeholder(self, value: str, type_: str) -> str:
        label = re.sub(r"[^A-Z0-9_]", "_", type_.upper())[:40] or "SECRET"
        digest = hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()
        for width in (6, 8, 12):  # widen on the (rare) collision within one request
            token = f"[{label}_{digest[:width]}]"
            if self.values.setdefault(token, value) == value:
                return token
        raise AssertionError("an HMAC collision at 48 bits")

    def restore(self, text: str, *, json_string: bool = False) -> str:
        """Put the values back; inside a JSON string (tool-call arguments) they are escaped."""
        if not self.values or "[" not in text:
            return text

        def back(match: re.Match[str]) -> str:
            value = self.values.get(match.group(0))
            if value is None:
                return match.group(0)
            return json.dumps(value)[1:-1] if json_string else value

        return PLACEHOLDER.sub(back, text)


def apply(text: str, findings: Iterable[Finding], vault: Vault | None) -> str:
    """Replace the spans of REDACT, MASK and STRIP findings (sorted, non-overlapping)."""
    out: list[str] = []
    at = 0
    for f in findings:
        if f.action not in (Action.REDACT, Action.MASK, Action.STRIP) or f.start < at:
            continue
        out.append(text[at : f.start])
        value = text[f.start : f.end]
        if f.action is Action.REDACT and vault is not None:
            out.append(vault.placeholder(value, f.type))
        elif f.action is Action.STRIP:
            out.append("[removed: possible prompt injection]")
        else:
            out.append(f"[{f.type.upper()}_REDACTED]")
        at = f.end
    out.append(text[at:])
    return "".join(out)


class StreamRestorer:
    """Restores placeholders in a stream of text pieces, whatever the pieces' boundaries.

    A tail that could still become a placeholder (`[GITH`, `[GITHUB_TOKEN_3f`) is held until the
    next piece decides it; nothing else is held. `spans` lists where restored values sit in all
    the text released so far, so output checks can tell them from what the model wrote itself.
    """

    def __init__(self, vault: Vault, *, json_string: bool = False) -> None:
        self._vault = vault
        self._json = json_string
        self._held = ""
        self.released = 0
        self.spans: list[tuple[int, int]] = []

    def feed(self, piece: str) -> str:
        text = self._held + piece
        cut = len(text)
        start = text.rfind("[", max(0, len(text) - _LONGEST))
        if start >= 0 and _PREFIX.match(text, start):
            cut = start
        self._held = text[cut:]
        return self._release(text[:cut])

    def finish(self) -> str:
        text, self._held = self._held, ""
        return self._release(text)

    def _release(self, text: str) -> str:
        if not self._vault.values or "[" not in text:
            self.released += len(text)
            return text
        out: list[str] = []
        at = 0
        for match in PLACEHOLDER.finditer(text):
            value = self._vault.values.get(match.group(0))
            if value is None:
                continue
            if self._json:
                value = json.dumps(value)[1:-1]
            out.append(text[at : match.start()])
            begin = self.released + sum(map(len, out))
            self.spans.append((begin, begin + len(value)))
            out.append(value)
            at = match.end()
        out.append(text[at:])
        result = "".join(out)
        self.released += len(result)
        return result
