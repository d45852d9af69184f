"""SQL for the audit log."""

from __future__ import annotations

import dataclasses
import json

import sqlite3

from ..timeutil import now_iso


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    action: str
    outcome: str
    actor_id: str | None
    target: str
    ip: str
    user_agent: str
    details: dict


@dataclasses.dataclass(frozen=True)
class Record:
    """An entry to append; the store adds the id and time."""
    action: str
    outcome: str = "success"
    actor_id: str | None = None
    target: str = ""
    ip: str = ""
    user_agent: str = ""
    details: dict = dataclasses.field(default_factory=dict)


def append(conn: sqlite3.Connection, record: Record) -> None:
    conn.execute(
        "INSERT INTO audit_log (at, action, outcome, actor_id, target, ip, user_agent, details) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (now_iso(), record.action, record.outcome, record.actor_id, record.target, record.ip,
         record.user_agent[:512], json.dumps(record.details, sort_keys=True)))


def page(conn: sqlite3.Connection, *, limit: int, before_id: int | None = None, action: str | None = None,
               actor_id: str | None = None, outcome: str | None = None, since: str | None = None,
               until: str | None = None) -> list[AuditEntry]:
    """Newest first; `before_id` is the smallest id of the previous page."""
    where, args = [], []
    for clause, value in (("id < ?", before_id), ("action = ?", action), ("actor_id = ?", actor_id),
                          ("outcome = ?", outcome), ("at >= ?", since), ("at < ?", until)):
        if value is not None:
            where.append(clause)
            args.append(value)
    sql = ("SELECT id, at, action, outcome, actor_id, target, ip, user_agent, details FROM audit_log"
           + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id DESC LIMIT ?")
    rows = conn.execute(sql, (*args, limit)).fetchall()
    return [AuditEntry(*r[:8], json.loads(r[8])) for r in rows]


def purge_before(conn: sqlite3.Connection, cutoff: str) -> int:
    return conn.execute("DELETE FROM audit_log WHERE at < ?", (cutoff,)).rowcount
