"""LangGraph's SQLite checkpointer on our store's write discipline, one round trip a call.

`AsyncSqliteSaver` (langgraph-checkpoint-sqlite) talks to SQLite through
aiosqlite one statement at a time: a checkpoint write is a cursor, an execute,
a commit and a close, each a hop to the connection's thread, under its own lock
on its own transaction. Here the hot calls keep its SQL and its serialisation
but run as one function in the writer's thread (`Database.transact`: the shared
write lock, BEGIN IMMEDIATE, COMMIT), so checkpoints are serialised with every
other write ("database is locked" cannot happen) and cost one hop instead of
four to eight. Reads go to the read-only pool: WAL shows them every committed
checkpoint and they never wait for the writer.

Held threads: a chat run runs its graph with durability "exit" and holds its
thread here (`hold`), so LangGraph's exit checkpoint stays in memory until the
runner decides what it is worth: a waiting run writes it in the transaction
that marks it waiting (`release`), a finished run drops it (`drop`). Nothing is
serialised or written for the many runs that just finish; resume after a crash
rebuilds from the run's stored messages (runner.py).

Everything not overridden (alist, delta-channel history) is the library's own
code on the writer connection, under `_TransactionLock`.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Sequence

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.checkpoint.sqlite.utils import load_pending_writes, pending_writes_sql

from .db import Database, Statement, execute_statements

_PUT = ("INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, "
        "type, checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)")
_WRITES = ("INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
_COLUMNS = "thread_id, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata"


class _TransactionLock:
    """The library's lock replaced by the shared write lock plus one BEGIN IMMEDIATE
    transaction, for the methods that still run the library's own code."""

    def __init__(self, db: Database):
        self.db = db

    async def __aenter__(self) -> None:
        await self.db._write_lock.acquire()
        try:
            await self.db._begin()
        except BaseException:
            self.db._write_lock.release()
            raise

    async def __aexit__(self, exc_type, exc, tb) -> None:
        try:
            if self.db._writer.in_transaction:   # the saver may have committed already
                await self.db._control("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.db._write_lock.release()


def _latest(conn: sqlite3.Connection, thread_id: str, ns: str, checkpoint_id: str | None):
    if checkpoint_id:
        row = conn.execute(f"SELECT {_COLUMNS} FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? "
                           "AND checkpoint_id = ?", (thread_id, ns, checkpoint_id)).fetchone()
    else:
        row = conn.execute(f"SELECT {_COLUMNS} FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? "
                           "ORDER BY checkpoint_id DESC LIMIT 1", (thread_id, ns)).fetchone()
    if row is None:
        return None, []
    writes = conn.execute(pending_writes_sql(True), (thread_id, ns, row[1])).fetchall()
    return tuple(row), [tuple(w) for w in writes]


def _put_writes(conn: sqlite3.Connection, sql: str, rows: list[tuple]) -> None:
    conn.executemany(sql, rows)


def _delete(conn: sqlite3.Connection, thread_id: str) -> None:
    conn.execute("DELETE FROM checkpoints WHERE thread_id = ?", (thread_id,))
    conn.execute("DELETE FROM writes WHERE thread_id = ?", (thread_id,))


class Saver(AsyncSqliteSaver):
    def __init__(self, db: Database):
        super().__init__(db._writer)
        self.db = db
        self.lock = _TransactionLock(db)
        self.is_setup = True   # the tables come from migration 0004
        self._held: dict[str, list[tuple]] = {}   # thread → ("put" | "writes", arguments), in call order
        self._fresh: set[str] = set()             # held threads known to have nothing stored

    # ---- held threads ----------------------------------------------------------

    def hold(self, thread_id: str, *, fresh: bool) -> None:
        """Keep this thread's writes in memory until `release` or `drop`. `fresh`: nothing
        is stored for it (a new run), so reading it needs no query."""
        self._held[thread_id] = []
        if fresh:
            self._fresh.add(thread_id)

    def release(self, thread_id: str) -> list[Statement]:
        """The held writes as statements for the caller's transaction (serialised now)."""
        held = self._held.get(thread_id)
        if not held:
            return []
        self._held[thread_id] = []
        self._fresh.discard(thread_id)
        statements: list[Statement] = []
        for kind, args in held:
            if kind == "put":
                statements.append(self.put_statement(*args))
            else:
                sql, rows = self.writes_statement(*args)
                statements.extend((sql, row) for row in rows)
        return statements

    def drop(self, thread_id: str) -> None:
        """Stop holding; what was held is forgotten."""
        self._held.pop(thread_id, None)
        self._fresh.discard(thread_id)

    # ---- the saver ---------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id = str(config["configurable"]["thread_id"])
        ns = config["configurable"].get("checkpoint_ns", "")
        if thread_id in self._held:
            if self._held[thread_id]:   # reads see held writes: store them first
                await self.db.transact(execute_statements, self.release(thread_id))
            elif thread_id in self._fresh:
                return None
        row, writes = await self.db.read_sync(_latest, thread_id, ns, get_checkpoint_id(config))
        if row is None:
            return None
        thread_id, checkpoint_id, parent_id, type_, checkpoint, metadata = row
        return CheckpointTuple(
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}},
            self.serde.loads_typed((type_, checkpoint)),
            json.loads(metadata) if metadata is not None else {},
            ({"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent_id}}
             if parent_id else None),
            load_pending_writes(writes, self.serde),
        )

    def put_statement(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata) -> Statement:
        c = config["configurable"]
        type_, blob = self.serde.dumps_typed(checkpoint)
        meta = json.dumps(get_checkpoint_metadata(config, metadata), ensure_ascii=False).encode("utf-8", "ignore")
        return _PUT, (str(c["thread_id"]), c["checkpoint_ns"], checkpoint["id"], c.get("checkpoint_id"),
                      type_, blob, meta)

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        thread_id = str(config["configurable"]["thread_id"])
        ns = config["configurable"]["checkpoint_ns"]
        held = self._held.get(thread_id)
        if held is not None:   # serialised only if released (LangGraph passes a copy it no longer changes)
            held.append(("put", (config, checkpoint, metadata)))
        else:
            await self.db.transact(execute_statements, [self.put_statement(config, checkpoint, metadata)])
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    def writes_statement(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                         task_path: str = "") -> tuple[str, list[tuple]]:
        """The SQL and serialised rows of `aput_writes`, for savers that add their own rows
        to the same transaction (runner/step_journal.py)."""
        # The library's rule: special channels replace, ordinary ones never overwrite.
        verb = "INSERT OR REPLACE " if all(w[0] in WRITES_IDX_MAP for w in writes) else "INSERT OR IGNORE "
        c = config["configurable"]
        rows = [(str(c["thread_id"]), str(c["checkpoint_ns"]), str(c["checkpoint_id"]), task_id, task_path,
                 WRITES_IDX_MAP.get(channel, idx), channel, *self.serde.dumps_typed(value))
                for idx, (channel, value) in enumerate(writes)]
        return verb + _WRITES, rows

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                          task_path: str = "") -> None:
        held = self._held.get(str(config["configurable"]["thread_id"]))
        if held is not None:
            held.append(("writes", (config, list(writes), task_id, task_path)))
            return
        await self.db.transact(_put_writes, *self.writes_statement(config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        await self.db.transact(_delete, str(thread_id))
