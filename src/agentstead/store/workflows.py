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


def create(conn: sqlite3.Connection, workflow_id: str, owner_id: str, definition: dict) -> Workflow:
    return _TABLE.create(conn, workflow_id, owner_id, definition)


def new_version(conn: sqlite3.Connection, workflow: Workflow, definition: dict) -> Workflow:
    return _TABLE.new_version(conn, workflow, definition)


def get_owned(conn: sqlite3.Connection, workflow_id: str, owner_id: str) -> Workflow | None:
    return _TABLE.get_owned(conn, workflow_id, owner_id)


@inline
def version(conn: sqlite3.Connection, workflow_id: str, number: int) -> WorkflowVersion | None:
    """A version by number, also of a deleted workflow (its runs keep it)."""
    return _TABLE.get_version(conn, workflow_id, number)


def list_owned(conn: sqlite3.Connection, owner_id: str, *, limit: int, before: str | None) -> list[Workflow]:
    return _TABLE.list_owned(conn, owner_id, limit=limit, before=before)


def soft_delete(conn: sqlite3.Connection, workflow_id: str) -> None:
    _TABLE.soft_delete(conn, workflow_id)
