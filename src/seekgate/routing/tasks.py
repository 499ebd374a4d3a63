"""Which coding task a request is: header, then body metadata, then a fast rule-based guess."""

from __future__ import annotations

import re
from collections.abc import Mapping

from seekgate import errors
from seekgate.core.types import ChatRequest, Request
from seekgate.settings import TaskProfile

__all__ = ["TaskChoice", "choose_task", "classify"]

# Rules in priority order; each is cheap and anchored on strong signals, because a wrong guess
# costs more than falling back to chat.
_DIFF = re.compile(r"^(diff --git |--- a/|\+\+\+ b/|@@ -\d+(,\d+)? \+\d+(,\d+)? @@)", re.MULTILINE)
_TESTS = re.compile(
    r"\b(write|add|generate|create)\b[^.?!\n]{0,40}\b(unit |integration )?tests?\b|\btest cases? for\b|\b(pytest|jest|junit|unittest)\b",
    re.IGNORECASE,
)
_EDITOR = re.compile(
    r"\b(fix|improve|tighten|correct|polish)\b[^.?!\n]{0,30}\b(wording|grammar|spelling|typos?|phrasing|prose|copy)\b"
    r"|\b(proofread|copy-?edit|rephrase|reword)\b",
    re.IGNORECASE,
)
_REFACTOR = re.compile(r"\brefactor|\bextract\b[^.?!\n]{0,40}\b(hook|function|method|class|module)\b", re.IGNORECASE)


def classify(request: Request) -> str | None:
    """A task for the last user message, or None when no rule is sure."""
    if not isinstance(request, ChatRequest):
        return None
    text = next((m.text for m in reversed(request.messages) if m.role == "user"), "")
    if _DIFF.search(text):
        return "ci"
    if _TESTS.search(text):
        return "tests"
    if _EDITOR.search(text):
        return "editor"
    if _REFACTOR.search(text):
        return "refactor"
    return None


class TaskChoice:
    __slots__ = ("name", "profile", "source")

    def __init__(self, name: str, profile: TaskProfile, source: str) -> None:
        self.name = name
        self.profile = profile
        self.source = source
        """header, metadata, classifier or default: how the task was chosen."""


def choose_task(
    request: Request, header: str | None, tasks: Mapping[str, TaskProfile], default: str, use_classifier: bool
) -> TaskChoice:
    if header:
        return _named(header.strip().lower(), tasks, "header", "X-Task-Type")
    metadata = request.metadata.get("task_type") if isinstance(request, ChatRequest) else None
    if metadata:
        return _named(metadata.strip().lower(), tasks, "metadata", "metadata.task_type")
    if use_classifier:
        guess = classify(request)
        if guess is not None and guess in tasks:
            return TaskChoice(guess, tasks[guess], "classifier")
    return TaskChoice(default, tasks.get(default, TaskProfile()), "default")


def _named(name: str, tasks: Mapping[str, TaskProfile], source: str, param: str) -> TaskChoice:
    profile = tasks.get(name)
    if profile is None:
        raise errors.InvalidRequest(
            f"unknown task type {name!r}; allowed task types: {', '.join(sorted(tasks))}", param=param, code="unknown_task_type"
        )
    return TaskChoice(name, profile, source)
