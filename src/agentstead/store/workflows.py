"""SQL for workflows and their versions (versioned like agents: store/versioned.py)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3

from .connection import inline
from .versioned import Versioned


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


_TABLE = Versioned(
    "workflows", "workflow_versions", "workflow_id", ("name", "definition"), WorkflowVersion, Workflow,
    decode=lambda values: {**values, "definition": json.loads(values["definition"])},
    encode=lambda definition: (definition["name"], json.dumps(definition)))

# The shared shape's functions, under this table's names (as in store/agents.py).
create, new_version, get_owned = _TABLE.create, _TABLE.new_version, _TABLE.get_owned
list_owned, soft_delete = _TABLE.list_owned, _TABLE.soft_delete


@inline
def version(conn: sqlite3.Connection, workflow_id: str, number: int) -> WorkflowVersion | None:
    """A version by number, also of a deleted workflow (its runs keep it)."""
    return _TABLE.get_version(conn, workflow_id, number)
