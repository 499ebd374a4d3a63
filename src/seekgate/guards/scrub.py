"""No secrets in logs: a logging filter that rewrites a record before any handler writes it.

It replaces every value the guards found in recent requests (secrets and PII, remembered in a
bounded set, most recent kept) and anything secret-shaped the secret detector finds in the
line, so a value that never passed a guard (an upstream error quoting a header, a URL in an
access log) is caught as well. It sits on the handlers, not on a logger: a logger's filter
does not see records from its children or from uvicorn.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable

import msgspec

from seekgate.guards.secrets import find_secrets
from seekgate.guards.types import Action
from seekgate.guards.vault import apply

__all__ = ["LogScrubber"]

_LOGGERS = ("", "uvicorn", "uvicorn.access", "uvicorn.error")


class LogScrubber(logging.Filter):
    def __init__(self, capacity: int = 4096) -> None:
        super().__init__("seekgate-scrubber")
        self._capacity = capacity
        self._values: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()
        self._handlers: list[logging.Handler] = []

    def remember(self, values: Iterable[str]) -> None:
        with self._lock:
            for value in values:
                if len(value) >= 4:  # shorter values would scrub ordinary words
                    self._values[value] = None
                    self._values.move_to_end(value)
            while len(self._values) > self._capacity:
                self._values.popitem(last=False)

    def scrub(self, text: str) -> str:
        with self._lock:
            known = [v for v in self._values if v in text]
        for value in sorted(known, key=len, reverse=True):
            text = text.replace(value, "[REDACTED]")
        found = find_secrets(text)
        if found:
            text = apply(text, [msgspec.structs.replace(f, action=Action.MASK) for f in found], None)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set: format the traceback here, scrubbed.
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
        return True

    def install(self) -> None:
        """Attach to the handlers of the root and uvicorn loggers (those present now)."""
        for name in _LOGGERS:
            for handler in logging.getLogger(name).handlers:
                if self not in handler.filters:
                    handler.addFilter(self)
                    self._handlers.append(handler)

    def uninstall(self) -> None:
        for handler in self._handlers:
            handler.removeFilter(self)
        self._handlers.clear()
