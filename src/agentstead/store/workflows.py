"""SQL for workflows and their versions (versioned like agents: every edit is a new version)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

from ..timeutil import now_iso
from .connection import inline


@dataclasses.dataclass(frozen=True)
class WorkflowVersion:
    workflow_id: str
    version: int
    name: str
    definition: dict
    created_at: str


@dataclasses.dataclass(frozen=True)
class Workflow:
    id: str
    owner_id: str
    created_at: str
    updated_at: str
    current: WorkflowVersion


_SELECT = ("SELECT w.id, w.owner_id, w.created_at, w.updated_at, v.workflow_id, v.version, v.name, v.definition, "
           "v.created_at FROM workflows w "
           "JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.current_version")


def _workflow(row) -> Workflow | None:
    if row is None:
        return None
    version = WorkflowVersion(row[4], row[5], row[6], json.loads(row[7]), row[8])
    return Workflow(row[0], row[1], row[2], row[3], version)


def create(conn: sqlite3.Connection, workflow_id: str, owner_id: str, definition: dict) -> Workflow:
    now = now_iso()
    conn.execute("INSERT INTO workflows (id, owner_id, current_version, created_at, updated_at, deleted_at) "
                 "VALUES (?, ?, 1, ?, ?, NULL)", (workflow_id, owner_id, now, now))
    _insert_version(conn, workflow_id, 1, definition, now)
    return get_owned(conn, workflow_id, owner_id)


def _insert_version(conn: sqlite3.Connection, workflow_id: str, version: int, definition: dict, now: str) -> None:
    conn.execute("INSERT INTO workflow_versions (workflow_id, version, name, definition, created_at) "
                 "VALUES (?, ?, ?, ?, ?)", (workflow_id, version, definition["name"], json.dumps(definition), now))


def new_version(conn: sqlite3.Connection, workflow: Workflow, definition: dict) -> Workflow:
    now = now_iso()
    version = workflow.current.version + 1
    _insert_version(conn, workflow.id, version, definition, now)
    conn.execute("UPDATE workflows SET current_version = ?, updated_at = ? WHERE id = ?",
                 (version, now, workflow.id))
    return get_owned(conn, workflow.id, workflow.owner_id)


def get_owned(conn: sqlite3.Connection, workflow_id: str, owner_id: str) -> Workflow | None:
    return _workflow(conn.execute(_SELECT + " WHERE w.id = ? AND w.owner_id = ? AND w.deleted_at IS NULL",
                                  (workflow_id, owner_id)).fetchone())


@inline
def version(conn: sqlite3.Connection, workflow_id: str, number: int) -> WorkflowVersion | None:
    """A version by number, also of a deleted workflow (its runs keep it)."""
    row = conn.execute("SELECT workflow_id, version, name, definition, created_at FROM workflow_versions "
                       "WHERE workflow_id = ? AND version = ?", (workflow_id, number)).fetchone()
    return WorkflowVersion(row[0], row[1], row[2], json.loads(row[3]), row[4]) if row else None


def list_owned(conn: sqlite3.Connection, owner_id: str, *, limit: int, before: str | None) -> list[Workflow]:
    sql = _SELECT + " WHERE w.owner_id = ? AND w.deleted_at IS NULL"
    args: list = [owner_id]
    if before:
        sql += " AND w.created_at < ?"
        args.append(before)
    return [_workflow(r) for r in conn.execute(sql + " ORDER BY w.created_at DESC LIMIT ?", (*args, limit))]


def soft_delete(conn: sqlite3.Connection, workflow_id: str) -> None:
    conn.execute("UPDATE workflows SET deleted_at = ? WHERE id = ?", (now_iso(), workflow_id))
