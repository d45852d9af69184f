"""The database: the one door. `read(fn)` on read-only connections, `write(fn, events=…)`
on the one writer (store/writer.py), both with plain synchronous `fn(conn, *args)`.

Readers are opened read-only (mode=ro) and see committed data only, through WAL;
they never wait for the writer. Writes are serialised and group-committed by the
writer, each with the events that announce it, so SQLite never has two writers
of ours racing for the lock ("database is locked" is the usual failure of apps
that let every task write).

Checkpoint policy: the app never runs `PRAGMA wal_checkpoint` itself (no
RESTART or TRUNCATE that would fight Litestream). SQLite's automatic
checkpoint (PASSIVE, every 1000 pages) stays on: a PASSIVE checkpoint never
blocks, never truncates the WAL, and keeps the WAL bounded when Litestream is
stopped or its storage is down. Litestream holds a read transaction on the WAL
while it copies frames, so a checkpoint cannot overtake it; at worst a race
makes Litestream start a new generation with a fresh snapshot, which costs
upload bandwidth, not data. Litestream runs its own TRUNCATE checkpoints.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from pathlib import Path
from typing import Callable, TypeVar

from .connection import Worker, connect, inline, pragmas  # noqa: F401 (inline: the marker for store modules)
from .write_gate import WriteGate
from .write_health import WriteHealth
from .writer import Committed, Events, Writer

T = TypeVar("T")
INLINE_BUDGET = 0.002  # seconds an inline read (@inline) may hold the event loop before it moves to a reader


class Database:
    """Owns the writer and the readers of one SQLite file."""

    def __init__(self, path: Path, *, readers: int = 4, busy_timeout_ms: int = 5000,
                 health_window: float = 30.0, batch_max: int = 1000, shared: bool = False):
        self.path = Path(path)
        self._shared = shared   # other instances write to this file too: take turns at a WriteGate
        self.health = WriteHealth(health_window)   # outcomes of recent writes (/readyz, /metrics, the runner)
        self._n_readers = readers
        self._busy_timeout_ms = busy_timeout_ms
        self._batch_max = batch_max
        self._writer: Writer | None = None
        self._gate: WriteGate | None = None
        self._readers: asyncio.Queue[Worker] = asyncio.Queue()
        self._all_readers: list[Worker] = []
        self._inline: sqlite3.Connection | None = None
        self._listeners: list[Callable[[list[Committed]], None]] = []
        self.inline_fallbacks = 0

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        worker = Worker(await asyncio.to_thread(connect, self.path, readonly=False,
                                                busy_timeout_ms=self._busy_timeout_ms), "database-writer")
        self._gate = WriteGate(self.path) if self._shared else None
        self._writer = Writer(worker, self.health, batch_max=self._batch_max, gate=self._gate)
        self._writer.listeners = self._listeners
        self._writer.start()
        # On the event loop nothing may wait: no busy timeout, and a budget per query (read()).
        self._inline = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False)
        self._inline.row_factory = sqlite3.Row
        for statement in pragmas(0, readonly=True):
            self._inline.execute(statement)
        for i in range(self._n_readers):
            reader = Worker(connect(self.path, readonly=True, busy_timeout_ms=self._busy_timeout_ms),
                            f"database-reader-{i}")
            self._all_readers.append(reader)
            self._readers.put_nowait(reader)

    async def close(self) -> None:
        """Commits what is queued, then closes every connection."""
        if self._writer is not None:
            await self._writer.stop()
            await self._writer.worker.close()
            self._writer = None
        if self._gate is not None:
            self._gate.close()
            self._gate = None
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        for reader in self._all_readers:
            await reader.close()
        self._all_readers.clear()

    @property
    def appended(self) -> int:
        """Events this process committed to the log (for /metrics)."""
        return self._writer.appended if self._writer is not None else 0

    def on_commit(self, listener: Callable[[list[Committed]], None]) -> None:
        """`listener(events)` is called on the event loop after each commit that appended
        events, before the writes' callers resume (the bus's fan-out)."""
        self._listeners.append(listener)

    def write(self, fn: Callable[..., T] | None, *args, events: Events = (), **kwargs) -> "asyncio.Future[T]":
        """`fn(conn, *args, **kwargs)` and the `events` that announce it (topic, event pairs, or
        a function of fn's result that returns them) in one transaction. Queued at once, in
        call order; await the future for fn's result (or its exception: nothing of the
        write was kept); with no `fn`, the first event as committed (its seq). Never await the network inside `fn`: it runs in the writer's thread."""
        assert self._writer is not None, "database is not open"
        return self._writer.submit(functools.partial(fn, **kwargs) if kwargs else fn, args, events)

    async def read(self, fn: Callable[..., T], *args, **kwargs) -> T:
        """`fn(conn, *args, **kwargs)` on a read-only connection: committed data only."""
        if getattr(fn, "inline", False) and self._inline is not None:
            conn = self._inline
            deadline = time.perf_counter() + INLINE_BUDGET
            conn.set_progress_handler(lambda: int(time.perf_counter() > deadline), 500)
            try:
                return fn(conn, *args, **kwargs)
            except sqlite3.OperationalError as exc:
                if "interrupted" not in str(exc) and "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                self.inline_fallbacks += 1
            finally:
                conn.set_progress_handler(None, 0)
        reader = await self._readers.get()
        try:
            return await reader.run(functools.partial(fn, **kwargs) if kwargs else fn, *args)
        finally:
            self._readers.put_nowait(reader)
