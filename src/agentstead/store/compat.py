"""SQL for the protocol adapters: agents by name, and the OpenAI endpoint's conversations."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

from ..timeutil import now_iso
from . import agents as agent_store
from .agents import Agent


def agents_named(conn: sqlite3.Connection, owner_id: str, name: str) -> list[Agent]:
    """The owner's live agents whose current version has this name, newest first."""
    return agent_store.named(conn, owner_id, name)


def conversation(conn: sqlite3.Connection, owner_id: str, digest: str) -> tuple[str, str] | None:
    """(thread id, run id) of the conversation with this key."""
    row = conn.execute("SELECT thread_id, run_id FROM conversations WHERE owner_id = ? AND digest = ?",
                       (owner_id, digest)).fetchone()
    return (row[0], row[1]) if row else None


def remember(conn: sqlite3.Connection, owner_id: str, digest: str, thread_id: str, run_id: str) -> None:
    """The conversation with this key goes on in this thread (the newest answer wins)."""
    conn.execute("INSERT INTO conversations (owner_id, digest, thread_id, run_id, created_at) VALUES (?, ?, ?, ?, ?) "
                 "ON CONFLICT (owner_id, digest) DO UPDATE SET thread_id = excluded.thread_id, "
                 "run_id = excluded.run_id, created_at = excluded.created_at",
                 (owner_id, digest, thread_id, run_id, now_iso()))


@dataclasses.dataclass(frozen=True)
class LgThread:
    id: str
    owner_id: str
    metadata: dict
    created_at: str
    updated_at: str


def _lg(row) -> LgThread | None:
    return LgThread(row[0], row[1], json.loads(row[2]), row[3], row[4]) if row is not None else None


def lg_create(conn: sqlite3.Connection, thread_id: str, owner_id: str, metadata: dict) -> LgThread | None:
    """None when the id is taken (by anyone: ids are global)."""
    if conn.execute("SELECT 1 FROM threads WHERE id = ?", (thread_id,)).fetchone() is not None:
        return None
    now = now_iso()
    row = conn.execute("INSERT INTO lg_threads (id, owner_id, metadata, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT (id) DO NOTHING RETURNING id, owner_id, metadata, created_at, updated_at",
                       (thread_id, owner_id, json.dumps(metadata), now, now)).fetchone()
    return _lg(row)


def lg_get(conn: sqlite3.Connection, thread_id: str, owner_id: str) -> LgThread | None:
    return _lg(conn.execute("SELECT id, owner_id, metadata, created_at, updated_at FROM lg_threads "
                            "WHERE id = ? AND owner_id = ?", (thread_id, owner_id)).fetchone())


def lg_list(conn: sqlite3.Connection, owner_id: str, limit: int) -> list[LgThread]:
    rows = conn.execute("SELECT id, owner_id, metadata, created_at, updated_at FROM lg_threads WHERE owner_id = ? "
                        "ORDER BY updated_at DESC LIMIT ?", (owner_id, limit)).fetchall()
    return [_lg(r) for r in rows]


def lg_update(conn: sqlite3.Connection, thread_id: str, owner_id: str, metadata: dict) -> LgThread | None:
    row = conn.execute("UPDATE lg_threads SET metadata = ?, updated_at = ? WHERE id = ? AND owner_id = ? "
                       "RETURNING id, owner_id, metadata, created_at, updated_at",
                       (json.dumps(metadata), now_iso(), thread_id, owner_id)).fetchone()
    return _lg(row)


def lg_delete(conn: sqlite3.Connection, thread_id: str, owner_id: str) -> bool:
    return conn.execute("DELETE FROM lg_threads WHERE id = ? AND owner_id = ?", (thread_id, owner_id)).rowcount > 0


def lg_create_bound(conn: sqlite3.Connection, thread_id: str, owner_id: str) -> None:
    """A LangGraph row for a thread made through Agentstead's own API (to hold its metadata)."""
    now = now_iso()
    conn.execute("INSERT INTO lg_threads (id, owner_id, metadata, created_at, updated_at) VALUES (?, ?, '{}', ?, ?) "
                 "ON CONFLICT (id) DO NOTHING", (thread_id, owner_id, now, now))
