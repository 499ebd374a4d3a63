"""Log output: JSON lines (one object per record) or plain text, and one line per API request.

A request's line carries its figures as fields (task, model, backend, status, latency, tokens,
cache, guards, request id) and never prompt text: prompts and answers go only to the request
log, and only with `telemetry.log_prompts`. The guards' scrubber (guards/scrub.py) filters
every handler, so a value a guard found never reaches a log in either format.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any, Literal

import msgspec

from seekgate.telemetry.record import RequestRecord

__all__ = ["JsonFormatter", "RequestLogLine", "configure_logging"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_OMITTED = ("prompt", "answer")
# Attributes every LogRecord has; anything else was passed with `extra=` and becomes a field.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the fields passed
    with `extra=`, and the traceback as `exc` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(level: str, fmt: Literal["json", "text"]) -> None:
    """The root handler for the process (uvicorn's loggers propagate to it)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class RequestLogLine:
    """An observer that logs each finished request on `seekgate.requests`."""

    def __init__(self) -> None:
        self.log = logging.getLogger("seekgate.requests")

    def observe(self, record: RequestRecord) -> None:
        if not self.log.isEnabledFor(logging.INFO):
            return
        fields = {k: v for k, v in msgspec.structs.asdict(record).items() if k not in _OMITTED}
        fields["latency_ms"] = round(record.latency_ms, 1)
        if record.ttft_ms is not None:
            fields["ttft_ms"] = round(record.ttft_ms, 1)
        summary = (
            f"{record.endpoint} {record.status} task={record.task or '-'} model={record.model or '-'} "
            f"{fields['latency_ms']} ms tokens={record.input_tokens}/{record.output_tokens} cache={record.cache} id={record.id}"
        )
        self.log.info(summary, extra={"request": fields})
