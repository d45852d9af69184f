"""SQL for the event log."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from typing import Iterable


from .db import Database, Statement, fetch_all, fetch_one


@dataclasses.dataclass(frozen=True)
class StoredEvent:
    seq: int
    topic: str
    type: str
    data: dict
    at: str


def append_rows(conn: sqlite3.Connection, rows: list[tuple[str, str, str, str]]) -> int:
    """Insert (topic, type, data_json, at) rows; returns the first seq. Runs inside
    `Database.transact` (the writer's thread, one round trip for the whole batch).

    One writer and AUTOINCREMENT make the batch's sequence numbers contiguous."""
    conn.executemany("INSERT INTO events (topic, type, data, at) VALUES (?, ?, ?, ?)", rows)
    last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
    return last - len(rows) + 1


def _event(row) -> StoredEvent:
    return StoredEvent(row[0], row[1], row[2], json.loads(row[3]), row[4])


async def after(db: Database, topics: Iterable[str], seq: int, *, limit: int) -> list[StoredEvent]:
    """Events on exact topics with seq > `seq`, oldest first."""
    topics = list(topics)
    marks = ",".join("?" * len(topics))
    async with db.read() as conn:
        return [_event(r) for r in await fetch_all(
            conn,
                f"SELECT seq, topic, type, data, at FROM events WHERE topic IN ({marks}) AND seq > ? "
                "ORDER BY seq LIMIT ?", (*topics, seq, limit))]


async def after_prefix(db: Database, prefix: str, seq: int, *, limit: int) -> list[StoredEvent]:
    """Events whose topic starts with `prefix` (pattern subscriptions), oldest first."""
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    async with db.read() as conn:
        return [_event(r) for r in await fetch_all(
            conn,
                "SELECT seq, topic, type, data, at FROM events WHERE topic LIKE ? ESCAPE '\\' AND seq > ? "
                "ORDER BY seq LIMIT ?", (pattern, seq, limit))]


async def head(db: Database) -> int:
    """The newest sequence number ever assigned (0 when none)."""
    rows = await db.small("SELECT seq FROM sqlite_sequence WHERE name = 'events'")
    return rows[0][0] if rows else 0


async def floor(db: Database) -> int:
    return (await db.small("SELECT value FROM event_log_meta WHERE key = 'floor'"))[0][0]


async def purge(db: Database, *, older_than: str, keep_max: int) -> int:
    """Delete events older than a time or beyond the newest `keep_max`; raise the floor."""
    async with db.write() as conn:
        cutoff = (await fetch_one(
            conn,
                "SELECT max(seq) FROM events WHERE at < ? OR seq <= "
                "(SELECT coalesce(max(seq), 0) - ? FROM events)", (older_than, keep_max)))[0]
        if cutoff is None:
            return 0
        cur = await conn.execute("DELETE FROM events WHERE seq <= ?", (cutoff,))
        await conn.execute("UPDATE event_log_meta SET value = max(value, ?) WHERE key = 'floor'", (cutoff,))
        return cur.rowcount


def compact_deltas_statement(run_id: str, topics: tuple[str, ...]) -> Statement:
    """Drop a finished run's streamed deltas; its stored messages (message.created) carry the text."""
    marks = ",".join("?" * len(topics))
    return (f"DELETE FROM events WHERE topic IN ({marks}) AND type = 'message.delta' "
            "AND json_extract(data, '$.run_id') = ?", (*topics, run_id))
