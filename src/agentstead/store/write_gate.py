"""Several writer processes on one SQLite file take turns at a file lock before BEGIN IMMEDIATE.

SQLite makes a writer that finds the write lock taken wait in its busy handler, which
sleeps and looks again: 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms. A lock let go
0.3 ms later can cost the waiter 25 ms or more, and meanwhile its queue grows. A blocking
`flock` on `<db>.write-lock` is woken by the kernel the moment the other process lets go.
The writer waits for its turn before it takes its batch from the queue (store/writer.py), so
the writes that queue up while the other instance writes join one transaction and one fsync,
as in a single process. Measured with two instances under a write-heavy load
(bench/scale/writers.py; bench/RESULTS.md, "Scale out").

Only instances of the app take the gate; anything else that writes to the file (the CLI,
Litestream's checkpoints, the restore drill) still meets them at BEGIN IMMEDIATE, under the
busy timeout, as before.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from pathlib import Path


class WriteGate:
    """An exclusive flock held from before BEGIN IMMEDIATE until after COMMIT or ROLLBACK.
    `take` and `leave` run in the writer's thread (Worker.run hands them its connection)."""

    def __init__(self, db_path: Path):
        self.path = Path(f"{db_path}.write-lock")
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def take(self, conn: sqlite3.Connection | None = None) -> float:
        """Wait for this instance's turn; the seconds waited."""
        start = time.perf_counter()
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        return time.perf_counter() - start

    def leave(self, conn: sqlite3.Connection | None = None) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._fd)
