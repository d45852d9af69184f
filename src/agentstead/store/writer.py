"""The writer: every change, with the events that announce it, in group-committed transactions.

`Database.write(fn, *args, events=…)` queues a write here. The writer takes
everything queued (up to `batch_max`) into ONE transaction on the writer
connection: BEGIN IMMEDIATE, then per write a savepoint, `fn(conn, *args)`, its
events appended to the log (store/events.py), RELEASE; COMMIT. At low load a
write waits for nothing; under load one fsync covers hundreds. A write whose
`fn` raises is rolled back to its savepoint alone and its caller gets the
exception; the others in the batch stand. When the transaction itself fails
(BEGIN, COMMIT, a savepoint: the database's trouble), every write in it fails.

After COMMIT, on the event loop: the committed events go to the listener (the
bus's fan-out, bus/bus.py), then the callers' futures resolve. So a caller that
awaits its write finds its events durable and delivered.

Only one writer runs per process (SQLite serialises writers anyway; one queue
keeps "database is locked" away). Several processes on one file each have
theirs and take turns at a file lock first (write_gate.py), then BEGIN IMMEDIATE
under the busy timeout (issue "Scale out").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import sqlite3
import time
from typing import Any, Callable, Iterable, Union

from ..timeutil import now_iso
from . import events as event_log
from .connection import Worker
from .write_gate import WriteGate
from .write_health import LockWaits, WriteHealth, is_write_failure

log = logging.getLogger("agentstead.store")

# (topic or topics, event) pairs; an event object named on several topics is stored once.
# An event is anything with a `type` (its wire name) and a `data()` dict (bus/events.py).
Announced = Iterable[tuple[Union[str, tuple[str, ...]], Any]]
Events = Union[Announced, Callable[[Any], Announced]]


@dataclasses.dataclass(frozen=True)
class Committed:
    """A durable event, as the listener receives it."""
    seq: int
    topics: tuple[str, ...]
    type: str
    data: dict
    at: str


@dataclasses.dataclass
class _Write:
    fn: Callable[..., Any] | None
    args: tuple
    events: Events
    future: asyncio.Future
    # Set in the writer's thread:
    result: Any = None
    error: BaseException | None = None
    rows: list = dataclasses.field(default_factory=list)   # (topics, type, data)
    first: int = 0


def _consume(future: asyncio.Future) -> None:
    """A fire-and-forget write's failure is logged by the writer, not as 'never retrieved'."""
    if not future.cancelled():
        future.exception()


def _grouped(announced: Announced) -> list[tuple[tuple[str, ...], str, dict]]:
    """(topics, type, data) per event, in order of first mention."""
    order: dict[int, tuple[Any, list[str]]] = {}
    for topics, event in announced:
        named = order.setdefault(id(event), (event, []))[1]
        named.extend((topics,) if isinstance(topics, str) else topics)
    return [(tuple(dict.fromkeys(topics)), event.type, event.data()) for event, topics in order.values()]


def _stored(write: _Write, at: str) -> list[tuple]:
    """The write's events as log rows (its `rows` set for the listener)."""
    events = write.events(write.result) if callable(write.events) else write.events
    write.rows = _grouped(events)
    return [(topics, type_, json.dumps(data, separators=(",", ":")), at) for topics, type_, data in write.rows]


def _append(conn: sqlite3.Connection, write: _Write, at: str) -> None:
    stored = _stored(write, at)
    if stored:
        write.first = event_log.append(conn, stored)


def _announcement(write: _Write) -> bool:
    """Events alone, given as a list: nothing of it can fail but the transaction itself."""
    return write.fn is None and not callable(write.events)


def _announce_all(conn: sqlite3.Connection, writes: list[_Write], at: str) -> None:
    """Consecutive announcements (Bus.publish) in one append, without a savepoint each:
    what makes a burst of events cost one statement per table, not six per event. One
    whose events cannot be serialised fails alone, before anything is appended."""
    stored, kept = [], []
    for write in writes:
        try:
            rows = _stored(write, at)
        except Exception as exc:
            write.error, write.rows = exc, []
            continue
        stored.extend(rows)
        kept.append(write)
    if stored:
        first = event_log.append(conn, stored)
        for write in kept:
            write.first, first = first, first + len(write.rows)


def _run_one(conn: sqlite3.Connection, write: _Write, at: str) -> None:
    write.result = write.fn(conn, *write.args) if write.fn is not None else None
    _append(conn, write, at)


def _rollback(conn: sqlite3.Connection) -> None:
    # Also after a failed COMMIT (an I/O error may leave the transaction open): a
    # transaction left open on the writer would fail every later BEGIN.
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _each(conn: sqlite3.Connection, batch: list[_Write], at: str) -> None:
    """Several writes in one transaction, in order: each under a savepoint (a write whose `fn`
    raises is undone alone), runs of announcements appended together."""
    announcements: list[_Write] = []
    for write in batch:
        if _announcement(write):
            announcements.append(write)
            continue
        if announcements:
            _announce_all(conn, announcements, at)
            announcements = []
        conn.execute("SAVEPOINT write")
        try:
            _run_one(conn, write, at)
        except Exception as exc:
            conn.execute("ROLLBACK TO write")   # raises when the database lost the transaction
            conn.execute("RELEASE write")
            write.error, write.rows = exc, []
            continue
        conn.execute("RELEASE write")
    if announcements:
        _announce_all(conn, announcements, at)


def _transaction(conn: sqlite3.Connection, batch: list[_Write], at: str, waits: LockWaits,
                 gate: WriteGate | None, waited: float) -> bool:
    """The batch, in the writer's thread; a gate taken before (several instances) is let go
    after COMMIT or ROLLBACK. The wait for the write lock (the gate's `waited`, and BEGIN
    IMMEDIATE's under the busy timeout) is timed."""
    start = time.perf_counter()
    try:
        try:
            conn.execute("BEGIN IMMEDIATE")
        finally:
            waits.observe(waited + time.perf_counter() - start)
        return _in_transaction(conn, batch, at)
    finally:
        if gate is not None:
            gate.leave()


def _in_transaction(conn: sqlite3.Connection, batch: list[_Write], at: str) -> bool:
    """One transaction, each write under a savepoint. A lone write needs none: when its
    `fn` raises, the transaction is rolled back (False: nothing was committed) and its
    caller gets the exception."""
    try:
        if len(batch) == 1:
            write = batch[0]
            try:
                _run_one(conn, write, at)
            except Exception as exc:
                write.error, write.rows = exc, []
                _rollback(conn)
                return False
        else:
            _each(conn, batch, at)
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return True


class Writer:
    def __init__(self, worker: Worker, health: WriteHealth, *, batch_max: int = 1000,
                 gate: WriteGate | None = None):
        self.worker = worker
        self.health = health
        self.batch_max = batch_max
        self.gate = gate   # several instances on the file: take turns (write_gate.py)
        self.listeners: list[Callable[[list[Committed]], None]] = []
        self.appended = 0   # events committed to the log by this process
        self._queue: asyncio.Queue[_Write | None] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._serve(), name="database-writer")

    async def stop(self) -> None:
        """Commit everything queued so far, then stop (nothing acknowledged is dropped)."""
        if self._task is not None:
            self._queue.put_nowait(None)
            await self._task
            self._task = None

    def submit(self, fn: Callable[..., Any] | None, args: tuple, events: Events) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        future.add_done_callback(_consume)
        self._queue.put_nowait(_Write(fn, args, events, future))
        return future

    async def _serve(self) -> None:
        stopping = False
        while not stopping:
            batch: list[_Write] = []
            item = await self._queue.get()
            waited = 0.0
            if self.gate is not None:
                # The turn first, the batch after: what queues up while another instance
                # writes joins this transaction (one fsync), as it would in one process.
                waited = await asyncio.shield(self.worker.run(self.gate.take))
            while True:
                if item is None:
                    stopping = True
                else:
                    batch.append(item)
                if len(batch) >= self.batch_max:
                    break
                try:
                    item = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
            if batch:
                await self._commit(batch, waited)
            elif self.gate is not None:
                await self.worker.run(self.gate.leave)

    async def _commit(self, batch: list[_Write], waited: float) -> None:
        at = now_iso()
        try:
            # Shielded: a stopping writer still learns how its last transaction ended.
            committed_any = await asyncio.shield(self.worker.run(_transaction, batch, at, self.health.lock_waits,
                                                                  self.gate, waited))
        except Exception as exc:
            self._failed(batch, exc)
            return
        refused = next((w.error for w in batch if w.error is not None and is_write_failure(w.error)), None)
        if refused is not None:   # the database refused a statement of a write (one transaction's outcome)
            self.health.failed(refused)
        elif committed_any:
            self.health.succeeded()
        committed: list[Committed] = []
        for write in batch:
            for i, (topics, type_, data) in enumerate(write.rows):
                committed.append(Committed(write.first + i, topics, type_, data, at))
                if i == 0 and write.fn is None:   # an announcement alone: its result is its first event
                    write.result = committed[-1]
        self.appended += len(committed)
        if committed:
            for listener in self.listeners:
                try:
                    listener(committed)
                except Exception:   # a listener never undoes a commit
                    log.exception("commit listener failed")
        for write in batch:
            if not write.future.done():
                if write.error is not None:
                    write.future.set_exception(write.error)
                else:
                    write.future.set_result(write.result)

    def _failed(self, batch: list[_Write], exc: BaseException) -> None:
        if is_write_failure(exc):   # the database's trouble, counted and logged by its health
            self.health.failed(exc)
            log.warning("write transaction failed", extra={"error": f"{type(exc).__name__}: {exc}",
                                                           "writes": len(batch)})
        else:
            log.exception("write transaction failed", exc_info=exc)
        for write in batch:
            if not write.future.done():
                write.future.set_exception(exc)
