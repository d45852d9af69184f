"""How the database's writes have gone lately: counts in one-second buckets over a window.

/readyz and /metrics read it (a probe that happens to succeed while most writes
fail must not say "ready"); the runner's endings listen for the first write that
succeeds after failures, to settle what they keep in memory at once.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import logging
import sqlite3
import time
from typing import Callable

log = logging.getLogger("agentstead.store")

# Unready while the newest write failed, or when at least UNREADY_FAILURES of the window's
# writes failed and they are at least UNREADY_RATIO of them: a single failed write that the
# next one follows through is a blip (degraded), a stream of them is not.
UNREADY_RATIO = 0.1
UNREADY_FAILURES = 3


def is_write_failure(exc: BaseException) -> bool:
    """A failure of the database itself (I/O, full disk, locked, corrupt), not a domain
    error that a write function raised to roll its transaction back."""
    return isinstance(exc, (sqlite3.OperationalError, sqlite3.DatabaseError, OSError)) \
        and not isinstance(exc, sqlite3.IntegrityError)


@dataclasses.dataclass(frozen=True)
class Report:
    writes: int           # in the window
    failures: int         # in the window
    window: float
    last_failed: bool     # the newest write failed
    last_error: str | None
    since_failure: float | None   # seconds since the newest failure

    @property
    def ratio(self) -> float:
        return self.failures / self.writes if self.writes else 0.0

    @property
    def state(self) -> str:
        """ok, degraded (some failed, the rest went through) or failing."""
        if not self.failures:
            return "ok"
        if self.last_failed or (self.failures >= UNREADY_FAILURES and self.ratio >= UNREADY_RATIO):
            return "failing"
        return "degraded"


class WriteHealth:
    def __init__(self, window: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.window = window
        self._clock = clock
        self._buckets: collections.deque[list] = collections.deque()   # [second, ok, failed]
        self.total_ok = 0
        self.total_failed = 0
        self.last_failed = False
        self.last_error: str | None = None
        self.last_failure_at: float | None = None
        self._listeners: list[Callable[[], None]] = []
        self.lock_waits = LockWaits()

    def _bucket(self) -> list:
        now = int(self._clock())
        if not self._buckets or self._buckets[-1][0] != now:
            self._buckets.append([now, 0, 0])
            self._trim(now)
        return self._buckets[-1]

    def _trim(self, now: float) -> None:
        while self._buckets and self._buckets[0][0] <= now - self.window:
            self._buckets.popleft()

    def succeeded(self) -> None:
        self._bucket()[1] += 1
        self.total_ok += 1
        if self.last_failed:
            self.last_failed = False
            log.warning("database writes work again", extra={"last_error": self.last_error})
            for listener in list(self._listeners):
                try:
                    listener()
                except Exception:   # a listener never breaks a write
                    log.exception("write recovery listener failed")

    def failed(self, exc: BaseException) -> None:
        self._bucket()[2] += 1
        self.total_failed += 1
        if not self.last_failed:
            log.error("database write failed", extra={"error": f"{type(exc).__name__}: {exc}"})
        self.last_failed = True
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.last_failure_at = self._clock()

    def on_recovery(self, listener: Callable[[], None]) -> None:
        """Call `listener` (on the event loop) when a write succeeds after a failed one."""
        self._listeners.append(listener)

    def report(self) -> Report:
        now = self._clock()
        self._trim(int(now))
        ok = sum(b[1] for b in self._buckets)
        failed = sum(b[2] for b in self._buckets)
        since = now - self.last_failure_at if self.last_failure_at is not None else None
        return Report(ok + failed, failed, self.window, self.last_failed and failed > 0, self.last_error, since)


LOCK_WAIT_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                     2.5, 5.0)


class LockWaits:
    """How long each write transaction waited for the database's write lock (BEGIN IMMEDIATE):
    for another process's transaction (several instances on one file), a checkpoint, a backup
    drill. Counted per bucket in the writer's thread; /metrics exports it as a histogram."""

    def __init__(self) -> None:
        self.counts = [0] * (len(LOCK_WAIT_BUCKETS) + 1)   # the last: above the largest bucket
        self.sum = 0.0
        self.count = 0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LOCK_WAIT_BUCKETS, seconds)] += 1
        self.sum += seconds
        self.count += 1
