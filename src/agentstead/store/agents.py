"""SQL for agents and their versions."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

from ..timeutil import now_iso


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
    tool_schemas: dict = dataclasses.field(default_factory=dict, hash=False, compare=False)


@dataclasses.dataclass(frozen=True)
class Agent:
    id: str
    owner_id: str
    created_at: str
    updated_at: str
    current: AgentVersion


_SELECT = ("SELECT a.id, a.owner_id, a.created_at, a.updated_at, v.agent_id, v.version, v.name, v.instructions, "
           "v.provider, v.model, v.temperature, v.tools, v.max_steps, v.created_at, v.tool_schemas "
           "FROM agents a JOIN agent_versions v ON v.agent_id = a.id AND v.version = a.current_version")


def _agent(row) -> Agent | None:
    if row is None:
        return None
    version = AgentVersion(row[4], row[5], row[6], row[7], row[8], row[9], row[10], tuple(json.loads(row[11])),
                           row[12], row[13], json.loads(row[14]))
    return Agent(row[0], row[1], row[2], row[3], version)


def create(conn: sqlite3.Connection, agent_id: str, owner_id: str, fields: dict) -> Agent:
    now = now_iso()
    conn.execute("INSERT INTO agents (id, owner_id, current_version, created_at, updated_at, deleted_at) "
                 "VALUES (?, ?, 1, ?, ?, NULL)", (agent_id, owner_id, now, now))
    _insert_version(conn, agent_id, 1, fields, now)
    return get_owned(conn, agent_id, owner_id)


def _insert_version(conn: sqlite3.Connection, agent_id: str, version: int, f: dict, now: str) -> None:
    conn.execute(
        "INSERT INTO agent_versions (agent_id, version, name, instructions, provider, model, temperature, tools, "
        "max_steps, created_at, tool_schemas) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (agent_id, version, f["name"], f["instructions"], f["provider"], f["model"], f["temperature"],
         json.dumps(list(f["tools"])), f["max_steps"], now, json.dumps(f.get("tool_schemas") or {})))


def new_version(conn: sqlite3.Connection, agent: Agent, fields: dict) -> Agent:
    now = now_iso()
    version = agent.current.version + 1
    _insert_version(conn, agent.id, version, fields, now)
    conn.execute("UPDATE agents SET current_version = ?, updated_at = ? WHERE id = ?", (version, now, agent.id))
    return get_owned(conn, agent.id, agent.owner_id)


def get_owned(conn: sqlite3.Connection, agent_id: str, owner_id: str) -> Agent | None:
    return _agent(conn.execute(_SELECT + " WHERE a.id = ? AND a.owner_id = ? AND a.deleted_at IS NULL",
                               (agent_id, owner_id)).fetchone())


def version(conn: sqlite3.Connection, agent_id: str, number: int) -> AgentVersion | None:
    """A version by number, also of a deleted agent (its runs keep it)."""
    row = conn.execute("SELECT agent_id, version, name, instructions, provider, model, temperature, "
                       "tools, max_steps, created_at, tool_schemas FROM agent_versions WHERE agent_id = ? AND version = ?",
                       (agent_id, number)).fetchone()
    if row is None:
        return None
    values = dict(zip(row.keys(), row))
    values["tools"] = tuple(json.loads(values["tools"]))
    values["tool_schemas"] = json.loads(values["tool_schemas"])
    return AgentVersion(**values)


def list_owned(conn: sqlite3.Connection, owner_id: str, *, limit: int, before: str | None) -> list[Agent]:
    sql = _SELECT + " WHERE a.owner_id = ? AND a.deleted_at IS NULL"
    args: list = [owner_id]
    if before:
        sql += " AND a.created_at < ?"
        args.append(before)
    return [_agent(r) for r in conn.execute(sql + " ORDER BY a.created_at DESC LIMIT ?", (*args, limit))]


def current_versions(conn: sqlite3.Connection, owner_id: str) -> dict[str, int]:
    """The owner's live agents and their current versions (what a workflow may name and pins)."""
    rows = conn.execute("SELECT id, current_version FROM agents WHERE owner_id = ? AND deleted_at IS NULL",
                        (owner_id,)).fetchall()
    return {r[0]: r[1] for r in rows}


def soft_delete(conn: sqlite3.Connection, agent_id: str) -> None:
    conn.execute("UPDATE agents SET deleted_at = ? WHERE id = ?", (now_iso(), agent_id))
