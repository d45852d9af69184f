"""SQL for agents and their versions."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

import aiosqlite

from ..timeutil import now_iso
from .db import Database, fetch_all, in_thread


@dataclasses.dataclass(frozen=True)
class AgentVersion:
    agent_id: str
    version: int
    name: str
    instructions: str
    provider: str
    model: str
    temperature: float
    tools: tuple[str, ...]
    max_steps: int
    created_at: str


@dataclasses.dataclass(frozen=True)
class Agent:
    id: str
    owner_id: str
    created_at: str
    updated_at: str
    current: AgentVersion


_SELECT = ("SELECT a.id, a.owner_id, a.created_at, a.updated_at, v.agent_id, v.version, v.name, v.instructions, "
           "v.provider, v.model, v.temperature, v.tools, v.max_steps, v.created_at "
           "FROM agents a JOIN agent_versions v ON v.agent_id = a.id AND v.version = a.current_version")


def _agent(row) -> Agent | None:
    if row is None:
        return None
    version = AgentVersion(row[4], row[5], row[6], row[7], row[8], row[9], row[10], tuple(json.loads(row[11])),
                           row[12], row[13])
    return Agent(row[0], row[1], row[2], row[3], version)


async def create(conn: aiosqlite.Connection, agent_id: str, owner_id: str, fields: dict) -> None:
    now = now_iso()
    await conn.execute("INSERT INTO agents (id, owner_id, current_version, created_at, updated_at, deleted_at) "
                       "VALUES (?, ?, 1, ?, ?, NULL)", (agent_id, owner_id, now, now))
    await _insert_version(conn, agent_id, 1, fields, now)


async def _insert_version(conn, agent_id: str, version: int, f: dict, now: str) -> None:
    await conn.execute(
        "INSERT INTO agent_versions (agent_id, version, name, instructions, provider, model, temperature, tools, "
        "max_steps, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (agent_id, version, f["name"], f["instructions"], f["provider"], f["model"], f["temperature"],
         json.dumps(list(f["tools"])), f["max_steps"], now))


async def new_version(conn: aiosqlite.Connection, agent: Agent, fields: dict) -> None:
    now = now_iso()
    version = agent.current.version + 1
    await _insert_version(conn, agent.id, version, fields, now)
    await conn.execute("UPDATE agents SET current_version = ?, updated_at = ? WHERE id = ?", (version, now, agent.id))


def get_owned_sync(conn: sqlite3.Connection, agent_id: str, owner_id: str) -> Agent | None:
    return _agent(conn.execute(_SELECT + " WHERE a.id = ? AND a.owner_id = ? AND a.deleted_at IS NULL",
                               (agent_id, owner_id)).fetchone())


async def get_owned(conn: aiosqlite.Connection, agent_id: str, owner_id: str) -> Agent | None:
    return await in_thread(conn, get_owned_sync, agent_id, owner_id)


async def get(db: Database, agent_id: str, owner_id: str) -> Agent | None:
    async with db.read() as conn:
        return await get_owned(conn, agent_id, owner_id)


def version_sync(conn: sqlite3.Connection, agent_id: str, number: int) -> AgentVersion | None:
    row = conn.execute("SELECT agent_id, version, name, instructions, provider, model, temperature, "
                       "tools, max_steps, created_at FROM agent_versions WHERE agent_id = ? AND version = ?",
                       (agent_id, number)).fetchone()
    if row is None:
        return None
    values = list(row)
    values[7] = tuple(json.loads(values[7]))
    return AgentVersion(*values)


async def version(db: Database, agent_id: str, number: int) -> AgentVersion | None:
    return await db.read_sync(version_sync, agent_id, number)


async def list_owned(db: Database, owner_id: str, *, limit: int, before: str | None) -> list[Agent]:
    sql = _SELECT + " WHERE a.owner_id = ? AND a.deleted_at IS NULL"
    args: list = [owner_id]
    if before:
        sql += " AND a.created_at < ?"
        args.append(before)
    async with db.read() as conn:
        rows = await fetch_all(conn, sql + " ORDER BY a.created_at DESC LIMIT ?", (*args, limit))
    return [_agent(r) for r in rows]


async def soft_delete(conn: aiosqlite.Connection, agent_id: str) -> None:
    await conn.execute("UPDATE agents SET deleted_at = ? WHERE id = ?", (now_iso(), agent_id))
