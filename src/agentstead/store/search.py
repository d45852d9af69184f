"""SQL for full-text search (messages_fts, threads_fts: migration 0009, kept by triggers in
the same transaction as every message and thread change). Always scoped by owner."""

from __future__ import annotations

import dataclasses
import sqlite3

# Private-use code points around each match in a snippet: never HTML, split apart by the service.
OPEN, CLOSE = "\ue000", "\ue001"


@dataclasses.dataclass(frozen=True)
class MessageHit:
    seq: int
    id: str
    thread_id: str
    thread_title: str
    role: str
    created_at: str
    snippet: str


@dataclasses.dataclass(frozen=True)
class ThreadHit:
    id: str
    title: str
    updated_at: str
    highlighted: str


def messages(conn: sqlite3.Connection, owner_id: str, match: str, *, limit: int) -> list[MessageHit]:
    """The owner's messages matching an FTS5 query, newest first, with a snippet. Newest first
    because FTS5 walks its index in rowid (= seq) order and stops at `limit` owned matches:
    ranking (bm25) a common word's every match, and making each one's snippet before the
    sort, took 1–3 s over 100,000 messages (bench/search/run.py)."""
    rows = conn.execute(
        "SELECT m.seq, m.id, m.thread_id, t.title AS thread_title, m.role, m.created_at,"
        "       snippet(messages_fts, 0, ?, ?, '…', 24) AS snippet"
        " FROM messages_fts JOIN messages m ON m.seq = messages_fts.rowid"
        " JOIN threads t ON t.id = m.thread_id"
        " WHERE messages_fts MATCH ? AND t.owner_id = ?"
        " ORDER BY messages_fts.rowid DESC LIMIT ?", (OPEN, CLOSE, match, owner_id, limit)).fetchall()
    return [MessageHit(**dict(zip(r.keys(), r))) for r in rows]


def threads(conn: sqlite3.Connection, owner_id: str, match: str, *, limit: int) -> list[ThreadHit]:
    """The owner's threads whose title matches, newest first (as messages)."""
    rows = conn.execute(
        "SELECT t.id, t.title, t.updated_at, highlight(threads_fts, 0, ?, ?) AS highlighted"
        " FROM threads_fts JOIN threads t ON t.rowid = threads_fts.rowid"
        " WHERE threads_fts MATCH ? AND t.owner_id = ?"
        " ORDER BY threads_fts.rowid DESC LIMIT ?", (OPEN, CLOSE, match, owner_id, limit)).fetchall()
    return [ThreadHit(**dict(zip(r.keys(), r))) for r in rows]
