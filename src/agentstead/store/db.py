"""The database: one writer connection, a small pool of read-only readers.

Every write goes through `Database.write()`, which serialises writers on an
asyncio lock and wraps them in BEGIN IMMEDIATE, so SQLite never has two
writers racing for the lock ("database is locked" is the usual failure of
apps that let every task write). Readers are opened read-only (mode=ro) and
see committed data only, through WAL.

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
import contextlib
import sqlite3
import time
from pathlib import Path
from typing import AsyncIterator, Callable, TypeVar

import aiosqlite

from .write_health import WriteHealth, is_write_failure


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
        #    writes are batched (events, tokens) to keep the fsync count low.
        "PRAGMA synchronous = FULL",
        # 4. Enforce the REFERENCES clauses in the schema (off by default).
        "PRAGMA foreign_keys = ON",
    ]
    return statements


T = TypeVar("T")
Statement = tuple[str, tuple]   # SQL and its parameters, for Database.transact(execute_statements, …)


def execute_statements(conn: sqlite3.Connection, statements: list[Statement]) -> None:
    """Runs inside `Database.transact`: several writes, one round trip."""
    for sql, args in statements:
        conn.execute(sql, args)


def _in_transaction(conn: sqlite3.Connection, fn: Callable[..., T], args: tuple) -> T:
    """Runs in the writer's thread (see Database.transact)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
        conn.execute("COMMIT")
    except BaseException:
        # Also when COMMIT failed (an I/O error may leave the transaction open): a
        # transaction left open on the writer would fail every later BEGIN.
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return result


INLINE_BUDGET = 0.002  # seconds a read may hold the event loop before it moves to a thread


class Database:
    """Owns the writer connection and the reader pool of one SQLite file."""

    def __init__(self, path: Path, *, readers: int = 4, busy_timeout_ms: int = 5000,
                 health_window: float = 30.0):
        self.path = Path(path)
        self.health = WriteHealth(health_window)   # outcomes of recent writes (/readyz, /metrics, the runner)
        self._n_readers = readers
        self._busy_timeout_ms = busy_timeout_ms
        self._writer: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self._readers: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all_readers: list[aiosqlite.Connection] = []
        self._inline: sqlite3.Connection | None = None
        self.inline_fallbacks = 0

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = await self._connect(readonly=False)
        self._inline = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None,
                                       check_same_thread=False)
        self._inline.row_factory = sqlite3.Row
        # On the event loop nothing may wait: no busy timeout, and a budget per query (below).
        for statement in pragmas(0, readonly=True):
            self._inline.execute(statement)
        for _ in range(self._n_readers):
            conn = await self._connect(readonly=True)
            self._all_readers.append(conn)
            self._readers.put_nowait(conn)

    async def _connect(self, *, readonly: bool) -> aiosqlite.Connection:
        target = f"file:{self.path}?mode=ro" if readonly else f"file:{self.path}"
        # isolation_level=None: we issue BEGIN/COMMIT ourselves.
        conn = await aiosqlite.connect(target, uri=True, isolation_level=None,
                                       check_same_thread=False)
        conn.row_factory = sqlite3.Row
        for statement in pragmas(self._busy_timeout_ms, readonly=readonly):
            await conn.execute(statement)
        return conn

    async def close(self) -> None:
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        for conn in self._all_readers:
            await conn.close()
        self._all_readers.clear()
        if self._writer is not None:
            await self._writer.close()
            self._writer = None

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """A short write transaction (BEGIN IMMEDIATE ... COMMIT), serialised.

        Never await network I/O inside it: the lock is held until it ends.
        """
        assert self._writer is not None, "database is not open"
        async with self._write_lock:
            try:
                await self._begin()
                try:
                    yield self._writer
                    await self._control("COMMIT")
                except BaseException:
                    await self._abandon()
                    raise
            except BaseException as exc:
                if is_write_failure(exc):
                    self.health.failed(exc)
                raise
            self.health.succeeded()

    async def transact(self, fn: Callable[..., T], *args) -> T:
        """`fn(sqlite3_connection, *args)` as one write transaction in ONE round trip to
        the writer's thread (BEGIN IMMEDIATE, fn, COMMIT; ROLLBACK if fn raises), serialised
        with every other write. For hot paths: `write()` costs a thread hop per statement
        plus two for BEGIN and COMMIT (~80 µs each here). `fn` runs off the event loop: it
        must only touch the connection it is given."""
        assert self._writer is not None, "database is not open"
        async with self._write_lock:
            done = asyncio.ensure_future(self._writer._execute(_in_transaction, self._writer._conn, fn, args))
            try:
                result = await asyncio.shield(done)
            except asyncio.CancelledError:
                # The thread finishes the transaction either way; hold the lock until it has.
                with contextlib.suppress(Exception):
                    await done
                raise
            except Exception as exc:
                if is_write_failure(exc):
                    self.health.failed(exc)
                raise
            self.health.succeeded()
            return result

    async def read_sync(self, fn: Callable[..., T], *args) -> T:
        """`fn(sqlite3_connection, *args)` on a pooled read-only connection, one round trip."""
        async with self.read() as conn:
            return await conn._execute(fn, conn._conn, *args)

    async def _control(self, sql: str) -> None:
        """BEGIN/COMMIT/ROLLBACK run to completion even when the caller is cancelled:
        a half-done transaction left on the shared writer would break every later write."""
        assert self._writer is not None
        done = asyncio.ensure_future(self._writer.execute(sql))
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            await done
            raise

    async def _abandon(self) -> None:
        """Roll back whatever transaction is open on the writer (after a failed statement or
        COMMIT); a failing ROLLBACK is logged by the caller's error, not raised over it."""
        if self._writer is not None and self._writer.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                await self._control("ROLLBACK")

    async def _begin(self) -> None:
        try:
            await self._control("BEGIN IMMEDIATE")
        except asyncio.CancelledError:
            if self._writer is not None and self._writer.in_transaction:
                await self._control("ROLLBACK")
            raise

    async def small(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        """A small indexed read run inline on the event loop (microseconds, no thread hop).

        Guarded: a query that takes longer than INLINE_BUDGET, or finds the database
        busy, is abandoned and re-run on the reader pool, so the loop is never held up.
        Only for point lookups and short pages; everything else uses read()."""
        conn = self._inline
        if conn is not None:
            deadline = time.perf_counter() + INLINE_BUDGET
            conn.set_progress_handler(lambda: int(time.perf_counter() > deadline), 500)
            try:
                return conn.execute(sql, args).fetchall()
            except sqlite3.OperationalError as exc:
                if "interrupted" not in str(exc) and "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                self.inline_fallbacks += 1
            finally:
                conn.set_progress_handler(None, 0)
        async with self.read() as pooled:
            return list(await pooled.execute_fetchall(sql, args))

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        """A read-only connection from the pool."""
        conn = await self._readers.get()
        try:
            yield conn
        finally:
            self._readers.put_nowait(conn)


async def in_thread(conn: aiosqlite.Connection, fn: Callable[..., T], *args) -> T:
    """A synchronous store function (`fn(sqlite3_connection, *args)`) on an aiosqlite
    connection's own thread, in one hop: the same SQL serves `Database.transact`,
    `Database.read_sync`, `Bus.commit` and `async with db.write()` callers."""
    return await conn._execute(fn, conn._conn, *args)


async def fetch_one(conn: aiosqlite.Connection, sql: str, args: tuple = ()) -> sqlite3.Row | None:
    """One round trip to the connection's thread (execute + fetch together)."""
    rows = await conn.execute_fetchall(sql, args)
    return rows[0] if rows else None


async def fetch_all(conn: aiosqlite.Connection, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
    return list(await conn.execute_fetchall(sql, args))


def checkpoint_saver(db: Database):
    """LangGraph's SQLite saver on our writer connection and write discipline
    (store/checkpoints.py). Its tables come from migration 0004."""
    from .checkpoints import Saver

    return Saver(db)
