"""SQL for workflows and their versions (versioned like agents: every edit is a new version)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

import aiosqlite

from ..timeutil import now_iso
from .db import Database, fetch_all, in_thread


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


async def create(conn: aiosqlite.Connection, workflow_id: str, owner_id: str, definition: dict) -> None:
    now = now_iso()
    await conn.execute("INSERT INTO workflows (id, owner_id, current_version, created_at, updated_at, deleted_at) "
                       "VALUES (?, ?, 1, ?, ?, NULL)", (workflow_id, owner_id, now, now))
    await _insert_version(conn, workflow_id, 1, definition, now)


async def _insert_version(conn, workflow_id: str, version: int, definition: dict, now: str) -> None:
    await conn.execute("INSERT INTO workflow_versions (workflow_id, version, name, definition, created_at) "
                       "VALUES (?, ?, ?, ?, ?)", (workflow_id, version, definition["name"], json.dumps(definition), now))


async def new_version(conn: aiosqlite.Connection, workflow: Workflow, definition: dict) -> None:
    now = now_iso()
    version = workflow.current.version + 1
    await _insert_version(conn, workflow.id, version, definition, now)
    await conn.execute("UPDATE workflows SET current_version = ?, updated_at = ? WHERE id = ?",
                       (version, now, workflow.id))


def get_owned_sync(conn: sqlite3.Connection, workflow_id: str, owner_id: str) -> Workflow | None:
    return _workflow(conn.execute(_SELECT + " WHERE w.id = ? AND w.owner_id = ? AND w.deleted_at IS NULL",
                                  (workflow_id, owner_id)).fetchone())


async def get_owned(conn: aiosqlite.Connection, workflow_id: str, owner_id: str) -> Workflow | None:
    return await in_thread(conn, get_owned_sync, workflow_id, owner_id)


async def get(db: Database, workflow_id: str, owner_id: str) -> Workflow | None:
    async with db.read() as conn:
        return await get_owned(conn, workflow_id, owner_id)


async def version(db: Database, workflow_id: str, number: int) -> WorkflowVersion | None:
    """A version by number, also of a deleted workflow (its runs keep it)."""
    rows = await db.small("SELECT workflow_id, version, name, definition, created_at FROM workflow_versions "
                          "WHERE workflow_id = ? AND version = ?", (workflow_id, number))
    if not rows:
        return None
    row = rows[0]
    return WorkflowVersion(row[0], row[1], row[2], json.loads(row[3]), row[4])


async def list_owned(db: Database, owner_id: str, *, limit: int, before: str | None) -> list[Workflow]:
    sql = _SELECT + " WHERE w.owner_id = ? AND w.deleted_at IS NULL"
    args: list = [owner_id]
    if before:
        sql += " AND w.created_at < ?"
        args.append(before)
    async with db.read() as conn:
        rows = await fetch_all(conn, sql + " ORDER BY w.created_at DESC LIMIT ?", (*args, limit))
    return [_workflow(r) for r in rows]


async def soft_delete(conn: aiosqlite.Connection, workflow_id: str) -> None:
    await conn.execute("UPDATE workflows SET deleted_at = ? WHERE id = ?", (now_iso(), workflow_id))


def agent_versions_sync(conn: sqlite3.Connection, owner_id: str) -> dict[str, int]:
    """The caller's live agents and their current versions: what a definition may name."""
    rows = conn.execute("SELECT id, current_version FROM agents WHERE owner_id = ? AND deleted_at IS NULL",
                        (owner_id,)).fetchall()
    return {r[0]: r[1] for r in rows}


async def agent_versions(conn: aiosqlite.Connection, owner_id: str) -> dict[str, int]:
    return await in_thread(conn, agent_versions_sync, owner_id)
