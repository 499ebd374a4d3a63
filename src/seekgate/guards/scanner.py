"""Run a guard profile's detectors over a text and decide what to do with each finding.

Shared by the request guards and `seekgate guard scan`, so what the command reports is what the
gateway does.
"""

from __future__ import annotations

import threading

import msgspec

from seekgate.guards.commands import find_commands
from seekgate.guards.injection import find_injections
from seekgate.guards.pii import NameDetector, find_pii
from seekgate.guards.secrets import find_secrets
from seekgate.guards.types import Action, Finding, without_overlaps
from seekgate.settings import GuardProfile

__all__ = ["Scanner", "resolve"]

_ACTIONS = {"redact": Action.REDACT, "mask": Action.MASK, "flag": Action.FLAG, "strip": Action.STRIP, "block": Action.BLOCK}


class Scanner:
    """Holds the one NER model (loaded on first use, when a profile asks for names)."""

    def __init__(self) -> None:
        self._names: NameDetector | None = None
        self._lock = threading.Lock()

    def names(self) -> NameDetector:
        with self._lock:
            if self._names is None:
                self._names = NameDetector()
            return self._names

    def scan(self, text: str, profile: GuardProfile, *, injection: bool = False, commands: bool = False) -> list[Finding]:
        """Findings with the profile's actions, sorted and without overlaps.

        `injection` screens for prompt injection (retrieved context, tool results); `commands`
        looks for dangerous shell commands (answers; the scan command).
        """
        layers: list[list[Finding]] = []
        if profile.secrets != "off":
            layers.append(_act(find_secrets(text), profile.secrets))
        if profile.pii != "off":
            wanted = set(profile.pii_types)
            found = [f for f in find_pii(text, private_ips=profile.private_ips) if f.type in wanted]
            if profile.names and "person" in wanted:
                found += self.names().find(text)
            layers.append(_act(sorted(found), profile.pii))
        if injection and profile.injection != "off":
            layers.append(_act(find_injections(text), profile.injection))
        if commands and profile.output_commands != "off":
            layers.append(_act(find_commands(text), profile.output_commands))
        return resolve(layers)


def resolve(layers: list[list[Finding]]) -> list[Finding]:
    """Earlier layers win where spans overlap (a secret inside an email-like string stays a
    secret); a flag never hides a redaction, because flags do not change the text."""
    acting = [(rank, f) for rank, layer in enumerate(layers) for f in layer if f.action is not Action.FLAG]
    flags = [f for layer in layers for f in layer if f.action is Action.FLAG]
    return sorted(without_overlaps(acting) + flags)


def _act(findings: list[Finding], mode: str) -> list[Finding]:
    action = _ACTIONS[mode]
    return [msgspec.structs.replace(f, action=action) for f in findings]
