"""Workflow runs: a pinned workflow version compiled to LangGraph (runner/kinds.py: RunKind).

The runner's lifecycle applies unchanged; this module holds what differs. Each
step is a node of the compiled graph, checkpointed with the store's saver, so
after a crash a resumed run goes on from the last completed step and never
repeats one. An agent step runs the pinned agent version's own graph
(workflow_steps.py); a tool step calls the tool registry with its limits. Every
step writes its row in `run_steps` with its step.* event: the start's row in a
transaction of its own (while the step works), the outcome's row together with
LangGraph's writes of the step (step_journal.py). Approvals that wait too long:
approvals.py.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import sqlite3
import time
from typing import Any, Awaitable, Callable

from langgraph.types import Command

from ..bus import events as ev
from ..store import checkpoints
from ..store import runs as run_store
from ..store import steps as step_store
from ..store import usage as usage_store
from ..store import workflows as workflow_store
from ..store.runs import Run
from ..timeutil import now_iso
from ..workflows.compile import StepError, StepFailed, WorkflowError, compile_workflow, initial_state, reason_of
from ..workflows.definition import ApprovalStep, Definition, ParallelStep, Step
from .approvals import Approvals
from .failures import RunFailure, failure_of
from .kinds import Toolkit, end_event, over_budget
from .step_journal import Finished, Journal, StepSaver, event_output, write_all
from .workflow_steps import CURRENT, StepRunner, remember


@dataclasses.dataclass
class _Run:
    """One execution of a workflow run (a resume is a new one)."""
    run: Run
    definition: Definition
    journal: Journal
    attempts: dict[str, int] = dataclasses.field(default_factory=dict)
    running: dict[str, tuple[str, float]] = dataclasses.field(default_factory=dict)  # step -> (iso, perf)
    starting: dict[str, asyncio.Task] = dataclasses.field(default_factory=dict)  # rows of starts being written
    group_of: dict[str, str] = dataclasses.field(default_factory=dict)  # parallel member -> its group
    outputs: dict | None = None   # the steps' outputs once the graph finished


@dataclasses.dataclass(frozen=True)
class _Prepared:
    version: workflow_store.WorkflowVersion | None
    budget: tuple[int, int]
    steps: list[step_store.RunStep]


class WorkflowRuns:
    """The workflow kind of run."""
    eager = False   # queued first (its 202 says queued), started by its task

    def __init__(self, tools: Toolkit, endings):
        self.tools = tools
        self.states: dict[str, _Run] = {}  # run id -> the execution under way
        self.saver = StepSaver(tools.db)
        self.steps = StepRunner(tools)
        self.approvals = Approvals(tools, endings)
        # Compiling costs ~2.5 ms a step (LangGraph inspects every node function), so each
        # workflow version is compiled once; its nodes find their run through CURRENT.
        self._graphs: collections.OrderedDict[tuple[str, int], Any] = collections.OrderedDict()

    # ---- the protocol ------------------------------------------------------------

    def prepare(self, conn: sqlite3.Connection, run: Run) -> _Prepared:
        return _Prepared(workflow_store.version(conn, run.workflow_id, run.workflow_version),
                         usage_store.budget(conn, run.owner_id, self.tools.settings.daily_token_budget),
                         step_store.of_run(conn, run.id))

    def refusal(self, run: Run, prepared: _Prepared) -> RunFailure | None:
        if prepared.version is None:
            return RunFailure("workflow_missing", "the workflow version this run uses no longer exists")
        return over_budget(prepared.budget)

    def started(self, conn: sqlite3.Connection, run: Run, *, resumed: bool, answered: bool) -> None:
        pass   # the checkpoint stays: a resumed run goes on after its last completed step

    def resuming(self, conn: sqlite3.Connection, run: Run, answer: Any) -> list[ev.Event]:
        return []   # the approval's answer goes to the graph (Command(resume=…))

    def failure_of(self, exc: BaseException) -> RunFailure:
        """A failed step names itself: code step_failed (or the step's own final code, e.g.
        budget_exceeded), message "step 'x': …"."""
        if isinstance(exc, StepFailed):
            code = exc.cause.code if isinstance(exc.cause, StepError) and exc.cause.code != "step_failed" \
                and not exc.cause.retryable else "step_failed"
            return RunFailure(code, str(exc))
        if isinstance(exc, WorkflowError):
            return RunFailure("step_failed", str(exc))
        return failure_of(exc)

    def finished(self, run: Run) -> None:
        self.states.pop(run.id, None)
        self.saver.journals.pop(f"run:{run.id}", None)

    async def start(self) -> None:
        await self.approvals.start()

    def stop(self) -> None:
        self.approvals.stop()

    async def drain(self) -> None:
        pass

    async def execute(self, run: Run, prepared: _Prepared, *, resume: Any, resumed: bool) -> bool:
        definition = Definition.from_dict(prepared.version.definition)
        journal = Journal(run, {name: step.kind for name, step in definition.steps.items()})
        state = self.states[run.id] = _Run(run, definition, journal)
        for name, step in definition.steps.items():
            if isinstance(step, ParallelStep):
                state.group_of.update((member, name) for member in step.steps)
        for row in prepared.steps:  # a resumed approval keeps when it began
            journal.started_at[row.step] = (row.started_at, time.perf_counter())
        graph = self._graph(run, definition)
        self.saver.journals[f"run:{run.id}"] = journal
        CURRENT.set(state)  # the node tasks LangGraph starts below inherit it
        config = {"configurable": {"thread_id": f"run:{run.id}"}, "recursion_limit": 2 * len(definition.steps) + 10}
        if resume is not None:
            graph_input: Any = Command(resume=resume)
        elif resumed and (await graph.aget_state(config)).values:
            graph_input = None  # go on from the last checkpoint: completed steps are not run again
        else:
            graph_input = initial_state(run.input or {})
        # durability "sync": a step's checkpoint is committed before the next step starts, so a
        # crash at any moment resumes after the last completed step (and never repeats it).
        async for chunk in graph.astream(graph_input, config, stream_mode="updates", durability="sync"):
            if "__interrupt__" in chunk:
                await self._waiting(state, chunk["__interrupt__"][0].value)
                return True
        state.outputs = (await graph.aget_state(config)).values.get("outputs", {})
        return False

    def ending(self, run: Run, status: str, failure: RunFailure | None) -> Callable[[], Awaitable[Any]]:
        state = self.states.get(run.id)
        taken: tuple[list, list] | None = None

        async def attempt() -> None:
            nonlocal taken
            if taken is None:   # once: starts still being written land first, then the journal
                await self._settle(state)
                taken = state.journal.take() if state is not None else ([], [])
            outputs = state.outputs if state is not None else None
            await self.tools.write(run, _end, run, status, failure, outputs, taken[0],
                                   events=lambda tokens: [*taken[1], end_event(run, status, failure, tokens)]
                                   if tokens is not None else [])
        return attempt

    # ---- executing -------------------------------------------------------------

    def _graph(self, run: Run, definition: Definition):
        key = (run.workflow_id, run.workflow_version)
        graph = self._graphs.get(key)
        if graph is None:
            graph = compile_workflow(definition, lambda name, step, rendered: self._step(CURRENT.get(), name, step,
                                                                                       rendered),
                                     checkpointer=self.saver,
                                     on_attempt_failed=lambda *a: self._attempt_failed(CURRENT.get(), *a))
            remember(self._graphs, key, graph)
        return graph

    async def _waiting(self, state: _Run, value: dict) -> None:
        """An approval step paused the graph: its row, the run's status and their events."""
        run = state.run
        step, prompt = str(value.get("step", "")), str(value.get("prompt", ""))
        started_at = now_iso()
        taken = state.journal.take()
        await state.journal.settle(taken, self.tools.write(
            run, _waiting, run.id, step, started_at, prompt, taken[0],
            events=[*taken[1], ev.StepWaiting(run.id, step, prompt), ev.RunWaiting(run.id, None, prompt)]))
        approval = state.definition.steps.get(step)
        if isinstance(approval, ApprovalStep) and approval.timeout_seconds:
            self.approvals.arm(run.id, step, started_at, approval.timeout_seconds)

    async def _write_started(self, state: _Run, name: str, kind: str, attempt: int, started_at: str,
                             given: Any) -> None:
        """The start's row with its event (a parallel group starts with its first member)."""
        run = state.run
        group = state.group_of.get(name)
        opens_group = group is not None and group not in state.journal.started_at
        if opens_group:
            state.journal.started_at[group] = (started_at, time.perf_counter())
        events = [ev.StepStarted(run.id, group, "parallel", 1, started_at)] if opens_group else []
        started = ev.StepStarted(run.id, name, kind, attempt, started_at, event_output(given)[0])
        await self.tools.write(run, _step_started, run.id, group if opens_group else None, name, kind, attempt,
                               started_at, given, events=[*events, started])

    async def _start_written(self, state: _Run, name: str) -> None:
        task = state.starting.pop(name, None)
        if task is not None:
            await asyncio.shield(task)

    async def _step(self, state: _Run, name: str, step: Step, rendered: Any) -> Any:
        """execute_step for the compiled graph: one attempt of an agent or tool step. The start's
        row is written while the step works; the outcome's row goes with LangGraph's writes."""
        attempt = state.attempts[name] = state.attempts.get(name, 0) + 1
        started_at, began = state.running[name] = (now_iso(), time.perf_counter())
        state.starting[name] = asyncio.create_task(self._write_started(state, name, step.kind, attempt, started_at,
                                                                       rendered))
        output, usage = await self.steps.run(state.run, step, rendered)
        await self._start_written(state, name)
        state.running.pop(name, None)
        state.journal.finished[name] = Finished(step.kind, attempt, started_at,
                                                round((time.perf_counter() - began) * 1000, 3), usage)
        return output

    async def _attempt_failed(self, state: _Run, name: str, step: Step, attempt: int, exc: BaseException,
                              retry_in: float | None) -> None:
        run = state.run
        error = reason_of(exc)
        await self._start_written(state, name)
        started_at, began = state.running.pop(name, (now_iso(), time.perf_counter()))
        finished_at = now_iso()
        usage = getattr(exc, "usage", None) or (0, 0, None)
        took = round((time.perf_counter() - began) * 1000, 3)
        if retry_in is not None:
            event: ev.Event = ev.StepRetrying(run.id, name, step.kind, attempt, error, retry_in, started_at,
                                              finished_at, took)
        else:
            event = ev.StepFailed(run.id, name, step.kind, attempt, started_at, finished_at, took, error)
        await self.tools.write(run, _attempt_failed, run, name, step.kind, "retrying" if retry_in is not None
                               else "failed", attempt, started_at, finished_at, error, usage, events=[event])

    @staticmethod
    async def _settle(state: _Run | None) -> None:
        """Before a final status: starts still being written land first."""
        if state is None:
            return
        for task in list(state.starting.values()):
            with contextlib.suppress(BaseException):
                await asyncio.shield(task)
        state.starting.clear()


def _step_started(conn: sqlite3.Connection, run_id: str, group: str | None, name: str, kind: str, attempt: int,
                  started_at: str, given: Any) -> None:
    if group is not None:
        step_store.started(conn, run_id, group, "parallel", 1, started_at)
    step_store.started(conn, run_id, name, kind, attempt, started_at, input=given)


def _attempt_failed(conn: sqlite3.Connection, run: Run, name: str, kind: str, status: str, attempt: int,
                    started_at: str, finished_at: str, error: str, usage: tuple) -> None:
    prompt, completion, model = usage
    step_store.finished(conn, run.id, name, kind, status, attempt=attempt, started_at=started_at,
                        finished_at=finished_at, error=error, prompt_tokens=prompt, completion_tokens=completion)
    if prompt or completion:  # a failed attempt's model calls count towards usage and budgets
        usage_store.add(conn, run, prompt, completion, model=model)


def _waiting(conn: sqlite3.Connection, run_id: str, step: str, started_at: str, prompt: str, journal: list) -> None:
    write_all(conn, journal)
    step_store.started(conn, run_id, step, "approval", 1, started_at, status="waiting", input=prompt)
    run_store.set_status(conn, run_id, "waiting_for_input", waiting_prompt=prompt)


def _end(conn: sqlite3.Connection, run: Run, status: str, failure: RunFailure | None, outputs: dict | None,
         journal: list) -> tuple[int, int] | None:
    """A workflow run's last transaction: the journal's rows, the steps cut short, the status.
    None when the run has finished already."""
    if run_store.status_of(conn, run.id) in run_store.FINISHED:
        return None
    write_all(conn, journal)
    if status == "succeeded":
        run_store.set_output(conn, run.id, outputs or {})
        run_store.set_status(conn, run.id, status, finished=True)
    elif status == "interrupted":   # shutdown: resumable from the checkpoint
        step_store.ended(conn, run.id, "interrupted")
        run_store.set_status(conn, run.id, status, error=(failure.code, failure.message) if failure
                             else run_store.INTERRUPTED)
        return usage_store.tokens_of(conn, run.id)
    else:   # cancelled, failed: e.g. a parallel sibling cut short
        step_store.ended(conn, run.id, "cancelled")
        run_store.set_status(conn, run.id, status, finished=True,
                             error=(failure.code, failure.message) if failure is not None else None)
    checkpoints.delete_thread(conn, f"run:{run.id}")
    return usage_store.tokens_of(conn, run.id)
