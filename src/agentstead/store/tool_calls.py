"""SQL for tool calls as they happen: started, then finished or failed (or unverified
after a crash: never run again silently)."""

from __future__ import annotations

import json
import sqlite3

from ..timeutil import now_iso


def started(conn: sqlite3.Connection, call_id: str, run_id: str, name: str, arguments: dict) -> None:
    conn.execute("INSERT OR REPLACE INTO tool_calls (id, run_id, name, arguments, status, result, started_at, "
                 "finished_at) VALUES (?, ?, ?, ?, 'started', NULL, ?, NULL)",
                 (call_id, run_id, name, json.dumps(arguments), now_iso()))


def finished(conn: sqlite3.Connection, call_id: str, result: str, ok: bool) -> None:
    conn.execute("UPDATE tool_calls SET status = ?, result = ?, finished_at = ? WHERE id = ?",
                 ("finished" if ok else "failed", result, now_iso(), call_id))


def get(conn: sqlite3.Connection, call_id: str) -> dict | None:
    row = conn.execute("SELECT id, run_id, name, arguments, status, result FROM tool_calls WHERE id = ?",
                       (call_id,)).fetchone()
    return dict(zip(row.keys(), row)) if row else None


def open_call(conn: sqlite3.Connection, run_id: str, tool_name: str) -> tuple[str, dict] | None:
    """(id, arguments) of the run's `tool_name` call that has no result yet (a waiting
    run's question), from the run's last stored reply that called tools; or None."""
    row = conn.execute("SELECT tool_calls FROM messages WHERE run_id = ? AND role = 'assistant' "
                       "AND tool_calls IS NOT NULL ORDER BY seq DESC LIMIT 1", (run_id,)).fetchone()
    for call in json.loads(row[0]) if row else []:
        if call.get("name") == tool_name and conn.execute(
                "SELECT 1 FROM tool_calls WHERE id = ? AND status != 'started'", (call["id"],)).fetchone() is None:
            return call["id"], call.get("args") or {}
    return None
