"""LangGraph's checkpointer through the store's one door, one round trip a call.

langgraph-checkpoint-sqlite's `AsyncSqliteSaver` talks to SQLite through aiosqlite
one statement at a time, under its own lock, on its own transaction. This saver
keeps its SQL (`langgraph.checkpoint.sqlite.utils`) and its version scheme, but
writes with `Database.write` (serialised and committed with every other write:
"database is locked" cannot happen) and reads with `Database.read` (the reader
pool: WAL shows every committed checkpoint and readers never wait for the writer).

Held threads: a chat run runs its graph with durability "exit" and holds its
thread here (`hold`), so LangGraph's exit checkpoint stays in memory until the
runner decides what it is worth: a waiting run writes it in the transaction that
marks it waiting (`release` gives the function that writes it), a finished run
drops it (`drop`). Nothing is serialised or written for the many runs that just
finish; resume after a crash rebuilds from the run's stored messages.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any, AsyncIterator, Callable, Sequence

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.checkpoint.sqlite.utils import load_pending_writes, pending_writes_sql, search_where

from .db import Database

_PUT = ("INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, "
        "type, checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)")
_WRITES = ("INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
_COLUMNS = "thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata"

WriteStep = Callable[[sqlite3.Connection], None]


def delete_thread(conn: sqlite3.Connection, thread_id: str) -> None:
    """A finished run needs no checkpoint: resume is only for unfinished runs."""
    conn.execute("DELETE FROM checkpoints WHERE thread_id = ?", (thread_id,))
    conn.execute("DELETE FROM writes WHERE thread_id = ?", (thread_id,))


def _with_writes(conn: sqlite3.Connection, rows: list) -> list[tuple]:
    return [(tuple(row), [tuple(w) for w in conn.execute(pending_writes_sql(True), (row[0], row[1], row[2]))])
            for row in rows]


def _latest(conn: sqlite3.Connection, thread_id: str, ns: str, checkpoint_id: str | None):
    if checkpoint_id:
        row = conn.execute(f"SELECT {_COLUMNS} FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? "
                           "AND checkpoint_id = ?", (thread_id, ns, checkpoint_id)).fetchone()
    else:
        row = conn.execute(f"SELECT {_COLUMNS} FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ? "
                           "ORDER BY checkpoint_id DESC LIMIT 1", (thread_id, ns)).fetchone()
    return _with_writes(conn, [row])[0] if row is not None else None


def _list(conn: sqlite3.Connection, where: str, params: tuple, limit: int | None) -> list[tuple]:
    sql = f"SELECT {_COLUMNS} FROM checkpoints {where} ORDER BY checkpoint_id DESC"
    if limit is not None:
        sql, params = sql + " LIMIT ?", (*params, limit)
    return _with_writes(conn, conn.execute(sql, params).fetchall())


def _execute(conn: sqlite3.Connection, sql: str, rows: list[tuple]) -> None:
    conn.executemany(sql, rows)


class Saver(BaseCheckpointSaver):
    # String versions, as langgraph-checkpoint-sqlite writes them (checkpoints of waiting runs
    # written before an upgrade resume with the same scheme).
    get_next_version = AsyncSqliteSaver.get_next_version

    def __init__(self, db: Database):
        super().__init__()
        self.db = db
        self._held: dict[str, list[tuple]] = {}   # thread → ("put" | "writes", arguments), in call order
        self._fresh: set[str] = set()             # held threads known to have nothing stored

    # ---- held threads ----------------------------------------------------------

    def hold(self, thread_id: str, *, fresh: bool) -> None:
        """Keep this thread's writes in memory until `release` or `drop`. `fresh`: nothing
        is stored for it (a new run), so reading it needs no query."""
        self._held[thread_id] = []
        if fresh:
            self._fresh.add(thread_id)

    def release(self, thread_id: str) -> WriteStep:
        """The held writes as one write step for the caller's transaction (serialised now)."""
        held, self._held[thread_id] = self._held.get(thread_id) or [], []
        self._fresh.discard(thread_id)
        steps = [self._put_step(*args) if kind == "put" else self._writes_step(*args) for kind, args in held]

        def write(conn: sqlite3.Connection) -> None:
            for step in steps:
                step(conn)
        return write

    def drop(self, thread_id: str) -> None:
        """Stop holding; what was held is forgotten."""
        self._held.pop(thread_id, None)
        self._fresh.discard(thread_id)

    # ---- the saver ---------------------------------------------------------------

    def _tuple(self, found: tuple) -> CheckpointTuple:
        (thread_id, ns, checkpoint_id, parent_id, type_, checkpoint, metadata), writes = found
        return CheckpointTuple(
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}},
            self.serde.loads_typed((type_, checkpoint)),
            json.loads(metadata) if metadata is not None else {},
            ({"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": parent_id}}
             if parent_id else None),
            load_pending_writes(writes, self.serde),
        )

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id = str(config["configurable"]["thread_id"])
        ns = config["configurable"].get("checkpoint_ns", "")
        if thread_id in self._held:
            if self._held[thread_id]:   # reads see held writes: store them first
                await self.db.write(self.release(thread_id))
            elif thread_id in self._fresh:
                return None
        found = await self.db.read(_latest, thread_id, ns, get_checkpoint_id(config))
        return self._tuple(found) if found is not None else None

    async def alist(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
                    before: RunnableConfig | None = None, limit: int | None = None) -> AsyncIterator[CheckpointTuple]:
        where, params = search_where(config, filter, before)
        for found in await self.db.read(_list, where, tuple(params), limit):
            yield self._tuple(found)

    def _put_step(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata) -> WriteStep:
        c = config["configurable"]
        type_, blob = self.serde.dumps_typed(checkpoint)
        meta = json.dumps(get_checkpoint_metadata(config, metadata), ensure_ascii=False).encode("utf-8", "ignore")
        row = (str(c["thread_id"]), c["checkpoint_ns"], checkpoint["id"], c.get("checkpoint_id"), type_, blob, meta)
        return lambda conn: _execute(conn, _PUT, [row])

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        thread_id = str(config["configurable"]["thread_id"])
        ns = config["configurable"]["checkpoint_ns"]
        held = self._held.get(thread_id)
        if held is not None:   # serialised only if released (LangGraph passes a copy it no longer changes)
            held.append(("put", (config, checkpoint, metadata)))
        else:
            await self.db.write(self._put_step(config, checkpoint, metadata))
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint["id"]}}

    def _writes_step(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                     task_path: str = "") -> WriteStep:
        """`aput_writes` as a write step, for savers that add their own rows to the same
        transaction (runner/step_journal.py)."""
        # The library's rule: special channels replace, ordinary ones never overwrite.
        verb = "INSERT OR REPLACE " if all(w[0] in WRITES_IDX_MAP for w in writes) else "INSERT OR IGNORE "
        c = config["configurable"]
        rows = [(str(c["thread_id"]), str(c["checkpoint_ns"]), str(c["checkpoint_id"]), task_id, task_path,
                 WRITES_IDX_MAP.get(channel, idx), channel, *self.serde.dumps_typed(value))
                for idx, (channel, value) in enumerate(writes)]
        return lambda conn: _execute(conn, verb + _WRITES, rows)

    async def aput_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                          task_path: str = "") -> None:
        held = self._held.get(str(config["configurable"]["thread_id"]))
        if held is not None:
            held.append(("writes", (config, list(writes), task_id, task_path)))
            return
        await self.db.write(self._writes_step(config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        await self.db.write(delete_thread, str(thread_id))
