"""Workflows: the rules. Definitions are validated when saved (JSON pointers into the
request body); every edit is a new version; runs pin the workflow version and the
versions of the agents it names when they are queued. Every query is scoped by owner."""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

from ..agents.tools import ASK_HUMAN, REGISTRY
from ..auth.access import Principal
from ..errors import Refused, invalid_all, not_found
from ..runner.runner import Runner
from ..store import agents as agent_store
from ..store import runs as run_store
from ..store import workflows as workflow_store
from ..store.db import Database
from ..store.runs import Run
from ..store.workflows import Workflow
from ..timeutil import now_iso
from ..workflows.definition import AgentStep, Definition
from ..workflows.validate import validate, validate_input
from .agents import Record

# What a tool step may call: every registered tool that runs on its own (ask_human
# pauses a chat for a person; in a workflow an approval step does that).
WORKFLOW_TOOLS = frozenset(name for name, tool in REGISTRY.items() if name != ASK_HUMAN and tool.run is not None)


def _check(conn: sqlite3.Connection, owner_id: str, definition: Any) -> None:
    problems = validate(definition, agents=frozenset(agent_store.current_versions(conn, owner_id)),
                        tools=WORKFLOW_TOOLS)
    if problems:
        raise invalid_all(("/definition" + p.pointer, p.message) for p in problems)


def _create(conn: sqlite3.Connection, workflow_id: str, owner_id: str, definition: Any,
            record: Record | None) -> Workflow:
    _check(conn, owner_id, definition)
    workflow = workflow_store.create(conn, workflow_id, owner_id, definition)
    if record is not None:
        record(conn, workflow)
    return workflow


def _update(conn: sqlite3.Connection, workflow_id: str, owner_id: str, definition: Any) -> Workflow:
    workflow = workflow_store.get_owned(conn, workflow_id, owner_id)
    if workflow is None:
        raise not_found("workflow")
    _check(conn, owner_id, definition)
    return workflow_store.new_version(conn, workflow, definition)


def _delete(conn: sqlite3.Connection, workflow_id: str, owner_id: str) -> None:
    if workflow_store.get_owned(conn, workflow_id, owner_id) is None:
        raise not_found("workflow")
    workflow_store.soft_delete(conn, workflow_id)


def _queued_run(conn: sqlite3.Connection, owner_id: str, workflow_id: str, run_input: Any) -> Run:
    """The checks, then the queued run (a refusal writes nothing). The run pins the current
    version of every agent it names."""
    workflow = workflow_store.get_owned(conn, workflow_id, owner_id)
    if workflow is None:
        raise not_found("workflow")
    definition = Definition.from_dict(workflow.current.definition)
    problems = validate_input(definition, run_input)
    if problems:
        raise invalid_all(("/input" + p.pointer, p.message) for p in problems)
    agents = agent_store.current_versions(conn, owner_id)
    pins = {}
    for name, step in definition.steps.items():
        if isinstance(step, AgentStep):
            if step.agent_id not in agents:
                raise Refused(409, "agent_deleted", f"step '{name}': agent {step.agent_id} was deleted; "
                              "edit the workflow to use another agent")
            pins[step.agent_id] = agents[step.agent_id]
    run = Run(id=str(uuid.uuid4()), owner_id=owner_id, status="queued", created_at=now_iso(), kind="workflow",
              workflow_id=workflow.id, workflow_version=workflow.current.version, input=dict(run_input), pins=pins)
    run_store.create(conn, run)
    return run


class WorkflowService:
    def __init__(self, db: Database, runner: Runner):
        self.db = db
        self.runner = runner

    async def create(self, p: Principal, definition: Any, record: Record | None = None) -> Workflow:
        """`record`: the request's Idempotency-Key and response, in the same transaction."""
        return await self.db.write(_create, str(uuid.uuid4()), p.user_id, definition, record)

    async def get(self, p: Principal, workflow_id: str) -> Workflow:
        workflow = await self.db.read(workflow_store.get_owned, workflow_id, p.user_id)
        if workflow is None:
            raise not_found("workflow")
        return workflow

    async def list(self, p: Principal, *, limit: int, before: str | None) -> list[Workflow]:
        return await self.db.read(workflow_store.list_owned, p.user_id, limit=limit, before=before)

    async def update(self, p: Principal, workflow_id: str, definition: Any) -> Workflow:
        return await self.db.write(_update, workflow_id, p.user_id, definition)

    async def delete(self, p: Principal, workflow_id: str) -> None:
        """Soft delete: runs keep the version they use (queued and running ones go on)."""
        await self.db.write(_delete, workflow_id, p.user_id)

    async def start_run(self, p: Principal, workflow_id: str, run_input: Any, record: Record | None = None) -> Run:
        """A queued run of the current version and its run.queued: one transaction."""
        return await self.runner.submit(p.user_id, lambda conn: _queued_run(conn, p.user_id, workflow_id, run_input),
                                        record)
