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
    tool_schemas: dict = dataclasses.field(default_factory=dict, hash=False, compare=False)


@dataclasses.dataclass(frozen=True)
class Agent:
    id: str
    owner_id: str
    created_at: str
    updated_at: str
    current: AgentVersion


_COLUMNS = ("name", "instructions", "provider", "model", "temperature", "tools", "max_steps", "tool_schemas")
_JSON = {"tools": lambda v: json.dumps(list(v)), "tool_schemas": lambda v: json.dumps(v or {})}


def _encode(f: dict) -> tuple:
    return tuple(_JSON[c](f.get(c)) if c in _JSON else f[c] for c in _COLUMNS)


_TABLE = Versioned(
    "agents", "agent_versions", "agent_id", _COLUMNS, AgentVersion, Agent,
    decode=lambda values: {**values, "tools": tuple(json.loads(values["tools"])),
                           "tool_schemas": json.loads(values["tool_schemas"] or "{}")},
    encode=_encode)

# The shared shape's functions, under this table's names: create(conn, agent_id, owner_id, fields),
# new_version(conn, agent, fields), get_owned(conn, agent_id, owner_id),
# list_owned(conn, owner_id, limit=, before=), soft_delete(conn, agent_id).
create, new_version, get_owned = _TABLE.create, _TABLE.new_version, _TABLE.get_owned
list_owned, soft_delete = _TABLE.list_owned, _TABLE.soft_delete


def version(conn: sqlite3.Connection, agent_id: str, number: int) -> AgentVersion | None:
    """A version by number, also of a deleted agent (its runs keep it)."""
    return _TABLE.get_version(conn, agent_id, number)


def current_versions(conn: sqlite3.Connection, owner_id: str) -> dict[str, int]:
    """The owner's live agents and their current versions (what a workflow may name and pins)."""
    rows = conn.execute("SELECT id, current_version FROM agents WHERE owner_id = ? AND deleted_at IS NULL",
                        (owner_id,)).fetchall()
    return {r["id"]: r["current_version"] for r in rows}


def named(conn: sqlite3.Connection, owner_id: str, name: str, *, limit: int = 5) -> list[Agent]:
    """The owner's live agents whose current version has this name, newest first."""
    rows = conn.execute(_TABLE.select() + " WHERE h.owner_id = ? AND h.deleted_at IS NULL AND v.name = ? "
                        "ORDER BY h.created_at DESC LIMIT ?", (owner_id, name, limit)).fetchall()
    return [_TABLE.built(r) for r in rows]
