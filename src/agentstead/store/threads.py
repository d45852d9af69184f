"""SQL for threads and their messages."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import uuid

from ..timeutil import now_iso
from .connection import inline


@dataclasses.dataclass(frozen=True)
class Thread:
    id: str
    owner_id: str
    agent_id: str
    title: str
    created_at: str
    updated_at: str
    model: str | None = None     # the model its turns use; None: its agent's (PATCH /api/threads/{id})


@dataclasses.dataclass(frozen=True)
class Message:
    seq: int
    id: str
    thread_id: str
    run_id: str | None
    role: str
    content: str
    tool_calls: list | None
    tool_call_id: str | None
    partial: bool
    created_at: str


_T = "id, owner_id, agent_id, title, created_at, updated_at, model"
_M = "seq, id, thread_id, run_id, role, content, tool_calls, tool_call_id, partial, created_at"


def message_json(m: Message) -> dict:
    """A message as clients see it (REST and message.created)."""
    return {"id": m.id, "seq": m.seq, "thread_id": m.thread_id, "run_id": m.run_id, "role": m.role,
            "content": m.content, "tool_calls": m.tool_calls, "tool_call_id": m.tool_call_id,
            "partial": m.partial, "created_at": m.created_at}


def _thread(row) -> Thread | None:
    return Thread(**dict(zip(row.keys(), row))) if row is not None else None


def _message(row) -> Message:
    values = dict(zip(row.keys(), row))
    values["tool_calls"] = json.loads(values["tool_calls"]) if values["tool_calls"] else None
    values["partial"] = bool(values["partial"])
    return Message(**values)


def create(conn: sqlite3.Connection, owner_id: str, agent_id: str, title: str, thread_id: str | None = None) -> Thread:
    """A new thread (under a given id: a LangGraph thread's first run, services/compat_langgraph.py)."""
    now = now_iso()
    thread = Thread(thread_id or str(uuid.uuid4()), owner_id, agent_id, title, now, now)
    conn.execute(f"INSERT INTO threads ({_T}) VALUES (?, ?, ?, ?, ?, ?, NULL)",
                 (thread.id, owner_id, agent_id, title, now, now))
    return thread


@inline
def get_owned(conn: sqlite3.Connection, thread_id: str, owner_id: str) -> Thread | None:
    row = conn.execute(f"SELECT {_T} FROM threads WHERE id = ? AND owner_id = ?", (thread_id, owner_id)).fetchone()
    return _thread(row)


def list_owned(conn: sqlite3.Connection, owner_id: str, *, limit: int, before: str | None) -> list[Thread]:
    sql, args = f"SELECT {_T} FROM threads WHERE owner_id = ?", [owner_id]
    if before:
        sql += " AND updated_at < ?"
        args.append(before)
    return [_thread(r) for r in conn.execute(sql + " ORDER BY updated_at DESC LIMIT ?", (*args, limit))]


def rename(conn: sqlite3.Connection, thread_id: str, owner_id: str, title: str) -> Thread | None:
    """A new title (the thread keeps its place in the list: updated_at is its last message)."""
    row = conn.execute(f"UPDATE threads SET title = ? WHERE id = ? AND owner_id = ? RETURNING {_T}",
                       (title, thread_id, owner_id)).fetchone()
    return _thread(row)


def choose(conn: sqlite3.Connection, thread_id: str, owner_id: str, agent_id: str, model: str | None) -> Thread | None:
    """The agent and model the thread's turns use from now on (services/turn_choice.py: choose checked them)."""
    row = conn.execute(f"UPDATE threads SET agent_id = ?, model = ? WHERE id = ? AND owner_id = ? RETURNING {_T}",
                       (agent_id, model, thread_id, owner_id)).fetchone()
    return _thread(row)


def delete(conn: sqlite3.Connection, thread_id: str) -> bool:
    """False when it was gone already (a delete that lost a race with another)."""
    return conn.execute("DELETE FROM threads WHERE id = ?", (thread_id,)).rowcount > 0


def add_message(conn: sqlite3.Connection, thread_id: str, role: str, content: str, *,
                     message_id: str | None = None, run_id: str | None = None, tool_calls: list | None = None,
                     tool_call_id: str | None = None, partial: bool = False) -> Message | None:
    """Insert a message (and touch its thread); a given `message_id` makes it idempotent:
    None when that message is already stored."""
    now = now_iso()
    row = conn.execute(
        "INSERT INTO messages (id, thread_id, run_id, role, content, tool_calls, tool_call_id, partial, created_at) "
        f"VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING RETURNING {_M}",
        (message_id or str(uuid.uuid4()), thread_id, run_id, role, content,
         json.dumps(tool_calls) if tool_calls else None, tool_call_id, int(partial), now)).fetchone()
    if row is None:
        return None
    conn.execute("UPDATE threads SET updated_at = ? WHERE id = ?", (now, thread_id))
    return _message(row)


def messages(conn: sqlite3.Connection, thread_id: str, *, after_seq: int = 0, before_seq: int | None = None,
                  limit: int = 1000) -> list[Message]:
    """Oldest first, after a seq (paging forward), and before another when given (a window)."""
    rows = conn.execute(f"SELECT {_M} FROM messages WHERE thread_id = ? AND seq > ? AND seq < ? ORDER BY seq LIMIT ?",
                        (thread_id, after_seq, 2**62 if before_seq is None else before_seq, limit)).fetchall()
    return [_message(r) for r in rows]


def newest(conn: sqlite3.Connection, thread_id: str, *, before_seq: int | None = None,
                limit: int = 100) -> list[Message]:
    """The newest `limit` messages before a seq (all when None), NEWEST FIRST: an indexed
    range read whatever the thread's length (messages_thread is (thread_id, seq))."""
    rows = conn.execute(f"SELECT {_M} FROM messages WHERE thread_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
                        (thread_id, 2**62 if before_seq is None else before_seq, limit)).fetchall()
    return [_message(r) for r in rows]


def last_of_role(conn: sqlite3.Connection, thread_id: str, role: str) -> Message | None:
    """The thread's newest message of a role (the one a regenerate answers again)."""
    row = conn.execute(f"SELECT {_M} FROM messages WHERE thread_id = ? AND role = ? ORDER BY seq DESC LIMIT 1",
                       (thread_id, role)).fetchone()
    return _message(row) if row is not None else None


def message_in(conn: sqlite3.Connection, thread_id: str, message_id: str) -> Message | None:
    row = conn.execute(f"SELECT {_M} FROM messages WHERE thread_id = ? AND id = ?", (thread_id, message_id)).fetchone()
    return _message(row) if row is not None else None


def remove_from(conn: sqlite3.Connection, thread_id: str, from_seq: int) -> int:
    """Delete the thread's messages from a seq on (a regenerate or an edit truncates the thread:
    search's index follows by trigger); how many went."""
    return conn.execute("DELETE FROM messages WHERE thread_id = ? AND seq >= ?", (thread_id, from_seq)).rowcount


def seq_of(conn: sqlite3.Connection, message_id: str) -> int | None:
    row = conn.execute("SELECT seq FROM messages WHERE id = ?", (message_id,)).fetchone()
    return row[0] if row else None


def run_messages_after(conn: sqlite3.Connection, thread_id: str, after_seq: int, run_id: str) -> list[Message]:
    """What a run stored after its input (its replies and tool results; not partial text)."""
    rows = conn.execute(f"SELECT {_M} FROM messages WHERE thread_id = ? AND seq > ? AND run_id = ? AND partial = 0 "
                        "ORDER BY seq", (thread_id, after_seq, run_id)).fetchall()
    return [_message(r) for r in rows]


def page(conn: sqlite3.Connection, thread_id: str, *, after_seq: int | None, before_seq: int | None,
         limit: int) -> list[Message]:
    """A page of a thread, oldest first: after a seq (paging forward, up to before_seq when
    given), else the newest `limit` before a seq (or the newest of all, paging back)."""
    if after_seq is not None:
        return messages(conn, thread_id, after_seq=after_seq, before_seq=before_seq, limit=limit)
    return newest(conn, thread_id, before_seq=before_seq, limit=limit)[::-1]
