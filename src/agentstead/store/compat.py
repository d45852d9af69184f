"""SQL for the protocol adapters: agents by name, and the OpenAI endpoint's conversations."""

from __future__ import annotations

import sqlite3

from ..timeutil import now_iso
from . import agents as agent_store
from .agents import Agent


def agents_named(conn: sqlite3.Connection, owner_id: str, name: str) -> list[Agent]:
    """The owner's live agents whose current version has this name, newest first."""
    rows = conn.execute(
        agent_store._SELECT + " WHERE a.owner_id = ? AND a.deleted_at IS NULL AND v.name = ? "
        "ORDER BY a.created_at DESC LIMIT 5", (owner_id, name)).fetchall()
    return [agent_store._agent(r) for r in rows]


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
