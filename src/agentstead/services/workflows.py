"""Workflows: the rules. Definitions are validated when saved (JSON pointers into the
request body); every edit is a new version; runs pin the workflow version and the
versions of the agents it names when they are queued. Every query is scoped by owner."""

from __future__ import annotations

import uuid
from typing import Any, Callable

from ..agents.tools import ASK_HUMAN, REGISTRY
from ..auth.access import Principal
from ..bus.bus import Bus
from ..runner.runner import Runner
from ..store import runs as run_store
from ..store import workflows as workflow_store
from ..store.db import Database, in_thread
from ..timeutil import now_iso
from ..workflows.definition import AgentStep, Definition
from ..workflows.validate import validate, validate_input

# What a tool step may call: every registered tool that runs on its own (ask_human
# pauses a chat for a person; in a workflow an approval step does that).
WORKFLOW_TOOLS = frozenset(name for name, tool in REGISTRY.items() if name != ASK_HUMAN and tool.run is not None)


Record = Callable[[Any, Any], None]   # http/idempotency.py recorder: called inside the change's transaction


class WorkflowServiceError(Exception):
    def __init__(self, status: int, code: str, message: str, errors: list[dict] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors


def _invalid(problems: list, prefix: str) -> WorkflowServiceError:
    errors = [{"pointer": prefix + p.pointer, "message": p.message} for p in problems]
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return WorkflowServiceError(422, "validation_failed", f"{first['pointer']}: {first['message']}{more}", errors)


class WorkflowService:
    def __init__(self, db: Database, bus: Bus, runner: Runner):
        self.db = db
        self.bus = bus
        self.runner = runner

    async def _check(self, conn, p: Principal, definition: Any) -> None:
        agents = await workflow_store.agent_versions(conn, p.user_id)
        problems = validate(definition, agents=frozenset(agents), tools=WORKFLOW_TOOLS)
        if problems:
            raise _invalid(problems, "/definition")

    async def create(self, p: Principal, definition: Any, record: Record | None = None) -> workflow_store.Workflow:
        """`record`: the request's Idempotency-Key and response, in the same transaction."""
        workflow_id = str(uuid.uuid4())
        async with self.db.write() as conn:
            await self._check(conn, p, definition)
            await workflow_store.create(conn, workflow_id, p.user_id, definition)
            workflow = await workflow_store.get_owned(conn, workflow_id, p.user_id)
            if record is not None:
                await in_thread(conn, record, workflow)
        return workflow

    async def get(self, p: Principal, workflow_id: str) -> workflow_store.Workflow:
        workflow = await workflow_store.get(self.db, workflow_id, p.user_id)
        if workflow is None:
            raise WorkflowServiceError(404, "not_found", "no such workflow")
        return workflow

    async def list(self, p: Principal, *, limit: int, before: str | None) -> list[workflow_store.Workflow]:
        return await workflow_store.list_owned(self.db, p.user_id, limit=limit, before=before)

    async def update(self, p: Principal, workflow_id: str, definition: Any) -> workflow_store.Workflow:
        async with self.db.write() as conn:
            workflow = await workflow_store.get_owned(conn, workflow_id, p.user_id)
            if workflow is None:
                raise WorkflowServiceError(404, "not_found", "no such workflow")
            await self._check(conn, p, definition)
            await workflow_store.new_version(conn, workflow, definition)
        return await self.get(p, workflow_id)

    async def delete(self, p: Principal, workflow_id: str) -> None:
        """Soft delete: runs keep the version they use (queued and running ones go on)."""
        async with self.db.write() as conn:
            if await workflow_store.get_owned(conn, workflow_id, p.user_id) is None:
                raise WorkflowServiceError(404, "not_found", "no such workflow")
            await workflow_store.soft_delete(conn, workflow_id)

    async def start_run(self, p: Principal, workflow_id: str, run_input: Any,
                        record: Record | None = None) -> run_store.Run:
        """A queued run of the current version and its run.queued: one transaction."""
        run = await self.runner.queue(_queue_run, p.user_id, workflow_id, run_input, record)
        self.runner.submit(run)
        return run


def _queue_run(conn, owner_id: str, workflow_id: str, run_input: Any, record: Record | None) -> run_store.Run:
    """In the writer's thread: the checks, then the queued run (a WorkflowServiceError
    writes nothing). The run pins the current version of every agent it names."""
    workflow = workflow_store.get_owned_sync(conn, workflow_id, owner_id)
    if workflow is None:
        raise WorkflowServiceError(404, "not_found", "no such workflow")
    definition = Definition.from_dict(workflow.current.definition)
    problems = validate_input(definition, run_input)
    if problems:
        raise _invalid(problems, "/input")
    agents = workflow_store.agent_versions_sync(conn, owner_id)
    pins = {}
    for name, step in definition.steps.items():
        if isinstance(step, AgentStep):
            if step.agent_id not in agents:
                raise WorkflowServiceError(
                    409, "agent_deleted", f"step '{name}': agent {step.agent_id} was deleted; "
                    "edit the workflow to use another agent")
            pins[step.agent_id] = agents[step.agent_id]
    run = run_store.Run(str(uuid.uuid4()), None, owner_id, None, None, "queued", None, None, None, None, 0, 0,
                        None, now_iso(), None, None, kind="workflow", workflow_id=workflow.id,
                        workflow_version=workflow.current.version, input=dict(run_input), pins=pins)
    conn.execute(*run_store.create_statement(run))
    if record is not None:
        record(conn, run)
    return run
