"""Logging: JSON lines (journald) or text, each carrying the request id."""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import os
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


class AccessLog:
    """The access log, kept off the logging machinery: one json.dumps per request
    into a buffer, written to stderr in one call every FLUSH_SECONDS (or when
    large). Measured: the logging path cost 40-75 us a request (bench/RESULTS.md).

    A write that fails (a full pipe to the journal, EAGAIN, EPIPE while it restarts)
    keeps what was not written and tries again on the next flush, FLUSH_SECONDS later
    at the latest; bytes go to the file descriptor directly, so a partial write
    neither loses nor repeats a line. What waits is bounded (MAX_PENDING bytes): past
    that the oldest whole lines are dropped and counted (`dropped`)."""

    FLUSH_SECONDS = 0.25
    MAX_LINES = 512
    MAX_PENDING = 4 * 1024 * 1024

    def __init__(self, fmt: str = "json", enabled: bool = True, stream=None):
        self.fmt = fmt
        self.enabled = enabled
        self.stream = stream
        self._lines: list[str] = []
        self._pending = b""          # encoded lines a failed write left
        self._timer = None
        self.failures = 0            # writes that failed (and were kept)
        self.dropped = 0             # lines dropped because too much was waiting

    @property
    def waiting(self) -> int:
        """Bytes a failed write left, still to be written."""
        return len(self._pending)

    def write(self, entry: dict) -> None:
        if not self.enabled:
            return
        if self.fmt == "json":
            line = json.dumps(entry, separators=(",", ":"), default=str)
        else:
            line = (f"{entry['time']} access {entry['request_id']} {entry['method']} {entry['path']} "
                    f"{entry['status']} {entry['duration_ms']}ms")
        self._lines.append(line)
        if len(self._lines) >= self.MAX_LINES:
            self.flush()
        else:
            self._schedule()

    def _schedule(self) -> None:
        if self._timer is None:
            import asyncio

            with contextlib.suppress(RuntimeError):   # no loop (a flush at exit): the next write retries
                self._timer = asyncio.get_running_loop().call_later(self.FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._lines:
            self._pending += ("\n".join(self._lines) + "\n").encode()
            self._lines = []
        if not self._pending:
            return
        written = self._write(self._pending)
        self._pending = self._pending[written:]
        if self._pending:
            self.failures += 1
            if len(self._pending) > self.MAX_PENDING:
                cut = self._pending.find(b"\n", len(self._pending) - self.MAX_PENDING) + 1
                self.dropped += self._pending.count(b"\n", 0, cut)
                self._pending = self._pending[cut:]
            self._schedule()

    def _write(self, data: bytes) -> int:
        """Bytes written (all, some or none)."""
        stream = self.stream or sys.stderr
        try:
            fd = stream.fileno()
        except (AttributeError, OSError, ValueError):   # not a file (a test's capture): write text
            try:
                stream.write(data.decode())
                stream.flush()
            except (OSError, ValueError):
                return 0
            return len(data)
        with contextlib.suppress(AttributeError, OSError, ValueError):
            stream.flush()   # whatever the stream itself buffered goes first
        done = 0
        while done < len(data):
            try:
                done += os.write(fd, data[done:])
            except InterruptedError:
                continue
            except OSError:   # EAGAIN on a full pipe, EPIPE, EIO: the rest waits for the next flush
                break
        return done


def configure(level: str = "info", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
