"""One SQLite connection on a thread of its own: the event loop hands it a function, one hop.

Every store function is synchronous (`fn(conn, …)`); the loop must not wait on the
disk, so each connection lives in its own thread and runs one function per call:
a read of three queries or a transaction of ten statements costs one hop (~55 µs
here), not one per statement. The same as aiosqlite's thread, without its
statement-at-a-time API (bench/RESULTS.md, "One door": 1.7x cheaper per hop than
`loop.run_in_executor`).
"""

from __future__ import annotations

import asyncio
import queue
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def pragmas(busy_timeout_ms: int, *, readonly: bool) -> list[str]:
    """The pragmas every connection gets, in the order they must run."""
    statements = [
        # 1. First, so that everything below waits for locks instead of failing
        #    at once with SQLITE_BUSY (e.g. while Litestream checkpoints).
        f"PRAGMA busy_timeout = {int(busy_timeout_ms)}",
    ]
    if not readonly:
        statements += [
            # 2. WAL: readers never block the writer and Litestream can replicate.
            #    Persistent in the file; set by the writer only (readers cannot).
            "PRAGMA journal_mode = WAL",
        ]
    statements += [
        # 3. FULL, not NORMAL: in WAL mode NORMAL survives an application crash
        #    but may lose the last commits on power loss. Agentstead promises
        #    that nothing acknowledged is lost, so every commit syncs the WAL;
        #    writes are batched (store/writer.py) to keep the fsync count low.
        "PRAGMA synchronous = FULL",
        # 4. Enforce the REFERENCES clauses in the schema (off by default).
        "PRAGMA foreign_keys = ON",
    ]
    return statements


def connect(path: Path, *, readonly: bool, busy_timeout_ms: int) -> sqlite3.Connection:
    """A connection with our pragmas; isolation_level=None: transactions are explicit."""
    target = f"file:{path}?mode=ro" if readonly else f"file:{path}"
    conn = sqlite3.connect(target, uri=True, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    for statement in pragmas(busy_timeout_ms, readonly=readonly):
        conn.execute(statement)
    return conn


def inline(fn: Callable[..., T]) -> Callable[..., T]:
    """Marks a store function as a point lookup or a short page (microseconds): `Database.read`
    may run it on the event loop, saving the thread hop. Guarded: one that takes longer than
    db.INLINE_BUDGET, or finds the database busy, is abandoned and run on a reader."""
    fn.inline = True   # type: ignore[attr-defined]
    return fn


def _settle(future: asyncio.Future, ok: bool, value: Any) -> None:
    if not future.done():   # a cancelled caller: the work ran all the same
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class Worker:
    """A connection and the thread that owns it."""

    def __init__(self, conn: sqlite3.Connection, name: str):
        self.conn = conn
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                self.conn.close()
                return
            future, fn, args = job
            try:
                result, ok = fn(self.conn, *args), True
            except BaseException as exc:   # handed to the caller, never lost in the thread
                result, ok = exc, False
            future.get_loop().call_soon_threadsafe(_settle, future, ok, result)

    def run(self, fn: Callable[..., T], *args) -> "asyncio.Future[T]":
        """`fn(conn, *args)` in this connection's thread; the future has its result."""
        future = asyncio.get_running_loop().create_future()
        self._jobs.put((future, fn, args))
        return future

    async def close(self) -> None:
        """After the jobs queued so far; the thread closes the connection it owns."""
        self._jobs.put(None)
        await asyncio.to_thread(self._thread.join)
