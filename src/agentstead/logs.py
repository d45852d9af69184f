"""Logging: JSON lines (journald) or text, each carrying the request id."""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import atexit
import logging
import logging.handlers
import queue
import sys

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


_base_factory = logging.getLogRecordFactory()


def _record_factory(*args, **kwargs) -> logging.LogRecord:
    # Every record carries the id of the request being handled when it was made.
    record = _base_factory(*args, **kwargs)
    record.request_id = request_id.get()
    return record


logging.setLogRecordFactory(_record_factory)


class JsonFormatter(logging.Formatter):
    _SKIP = set(logging.makeLogRecord({}).__dict__) | {"request_id", "message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in self._SKIP})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """For a terminal: time, level, logger, request id, message, then the extras."""

    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in JsonFormatter._SKIP)
        line = (f"{self.formatTime(record)} {record.levelname:<7} {record.name} "
                f"[{getattr(record, 'request_id', '-')}] {record.getMessage()}" + (f" {extras}" if extras else ""))
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _DeferredQueueHandler(logging.handlers.QueueHandler):
    """Hands the record to the writer thread unformatted: formatting and the
    write to stderr happen off the event loop (the access log is on the hot path)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


_listener: logging.handlers.QueueListener | None = None


def configure(level: str = "info", fmt: str = "json") -> None:
    global _listener
    if _listener is not None:
        _listener.stop()
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    records: queue.SimpleQueue = queue.SimpleQueue()
    _listener = logging.handlers.QueueListener(records, handler)
    _listener.start()
    atexit.register(_listener.stop)  # drains what is queued at exit
    root = logging.getLogger()
    root.handlers[:] = [_DeferredQueueHandler(records)]
    root.setLevel(level.upper())
