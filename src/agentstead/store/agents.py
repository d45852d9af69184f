"""SQL for agents and their versions (the versioned shape: store/versioned.py)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

from .versioned import Versioned


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


_COLUMNS = ("name", "instructions", "provider", "model", "temperature", "tools", "max_steps")
_TABLE = Versioned(
    "agents", "agent_versions", "agent_id", _COLUMNS, AgentVersion, Agent,
    decode=lambda values: {**values, "tools": tuple(json.loads(values["tools"]))},
    encode=lambda f: tuple(json.dumps(list(f["tools"])) if c == "tools" else f[c] for c in _COLUMNS))


def create(conn: sqlite3.Connection, agent_id: str, owner_id: str, fields: dict) -> Agent:
    return _TABLE.create(conn, agent_id, owner_id, fields)


def new_version(conn: sqlite3.Connection, agent: Agent, fields: dict) -> Agent:
    return _TABLE.new_version(conn, agent, fields)


def get_owned(conn: sqlite3.Connection, agent_id: str, owner_id: str) -> Agent | None:
    return _TABLE.get_owned(conn, agent_id, owner_id)


def version(conn: sqlite3.Connection, agent_id: str, number: int) -> AgentVersion | None:
    """A version by number, also of a deleted agent (its runs keep it)."""
    return _TABLE.get_version(conn, agent_id, number)


def list_owned(conn: sqlite3.Connection, owner_id: str, *, limit: int, before: str | None) -> list[Agent]:
    return _TABLE.list_owned(conn, owner_id, limit=limit, before=before)


def current_versions(conn: sqlite3.Connection, owner_id: str) -> dict[str, int]:
    """The owner's live agents and their current versions (what a workflow may name and pins)."""
    rows = conn.execute("SELECT id, current_version FROM agents WHERE owner_id = ? AND deleted_at IS NULL",
                        (owner_id,)).fetchall()
    return {r["id"]: r["current_version"] for r in rows}


def soft_delete(conn: sqlite3.Connection, agent_id: str) -> None:
    _TABLE.soft_delete(conn, agent_id)
