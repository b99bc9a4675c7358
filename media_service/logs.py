"""Logging for the service's processes: one JSON object per line (or plain text), and the context every line
of a job or a request carries (media id, attempt, kind; request id) without anyone passing it along.

``process_media`` binds the job's context with ``job_context``; the API's request middleware binds the
request id with ``request_context``. Both live in context variables, so every line logged inside a job (the
pipelines', the tool runner's) or a request names them.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from typing import Any

FORMATS = ("json", "text")
# The fields a line may carry from the context, in the order they are written.
CONTEXT_FIELDS = ("media_id", "attempt", "kind", "request_id")

_context: ContextVar[dict[str, Any] | None] = ContextVar("media_log_context", default=None)


def current_context() -> dict[str, Any]:
    return dict(_context.get() or {})


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Every line logged in this block (in this thread or task) carries ``fields``."""
    merged = {**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def job_context(media_id: str, *, attempt: int | None = None, kind: str | None = None) -> Any:
    return bound(media_id=media_id, attempt=attempt, kind=kind)


def bind(**fields: Any) -> None:
    """Add fields to the current context (for a value learned halfway, like the attempt after a claim)."""
    _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}})


def push(**fields: Any) -> Token[dict[str, Any] | None]:
    """Like ``bound`` for code that enters and leaves in two calls (signal handlers): give the token to
    ``pop``."""
    return _context.set({**(_context.get() or {}), **{k: v for k, v in fields.items() if v is not None}})


def pop(token: Token[dict[str, Any] | None]) -> None:
    _context.reset(token)


def request_context(request_id: str) -> Any:
    return bound(request_id=request_id)


class ContextFilter(logging.Filter):
    """Copies the context onto the record (``record.media_id`` …) so text formats can use them too."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the context fields, exception text."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = _context.get() or {}
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, context.get(key))
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The usual line, with the context appended as ``key=value`` when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = _context.get() or {}
        extra = [f"{k}={getattr(record, k, context.get(k))}" for k in CONTEXT_FIELDS
                 if getattr(record, k, context.get(k)) is not None]
        if not extra:
            return line
        first, nl, rest = line.partition("\n")
        return f"{first} [{' '.join(extra)}]{nl}{rest}"


def make_formatter(fmt: str) -> logging.Formatter:
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return JsonFormatter() if fmt == "json" else TextFormatter()


def configure_logging(fmt: str, level: str | int = "INFO", stream: Any = None) -> None:
    """Replace the root logger's handlers with one stream handler in ``fmt``; uvicorn's and Celery's loggers
    propagate to it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(make_formatter(fmt))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "celery.task", "celery.worker"):
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
