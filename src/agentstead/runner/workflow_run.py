"""Workflow runs: a pinned workflow version compiled to LangGraph and driven like a chat run.

The runner's scheduler, limits, cancel and resume apply unchanged; this module
holds what differs. Each step is a node of the compiled graph, checkpointed with
the runner's saver (the single writer), so after a crash a resumed run goes on
from the last completed step and never repeats one. An agent step runs the
pinned agent version's own graph (runner/graph.py) on a fresh message list; a
tool step calls the tool registry with its limits. Every step writes its row in
`run_steps` first, then publishes step.* on `runs/{id}`: the start's row in a
transaction of its own (while the step works), the outcome's row together with
LangGraph's writes of the step (step_journal.py).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables.config import var_child_runnable_config
from langgraph.types import Command

from ..agents.tools import ASK_HUMAN, REGISTRY, ToolContext, run_tool
from ..bus import events as ev
from ..store import agents as agent_store
from ..store import runs as run_store
from ..store import workflows as workflow_store
from .. import timeutil
from ..timeutil import now_iso
from ..workflows.compile import StepError, StepFailed, WorkflowError, compile_workflow, initial_state, reason_of
from ..workflows.definition import AgentStep, ApprovalStep, Definition, ParallelStep, Step, ToolStep
from . import context
from . import graph as graphs
from .failures import RunFailure, failure_of
from .step_journal import Finished, Journal, StepSaver

if TYPE_CHECKING:
    from .runner import Runner

log = logging.getLogger("agentstead.runner.workflows")
GRAPH_CACHE = 64  # compiled workflow versions kept
_CURRENT: contextvars.ContextVar["_Run"] = contextvars.ContextVar("workflow_run")


def _remember(cache: collections.OrderedDict, key, value) -> None:
    """A bounded cache (least recently added goes first)."""
    cache[key] = value
    while len(cache) > GRAPH_CACHE:
        cache.popitem(last=False)


# Provider failures that another attempt cannot fix.
_FINAL_CODES = frozenset({"provider_auth_failed", "model_not_found", "budget_exceeded", "provider_not_configured",
                          "agent_missing"})
ASK_HUMAN_REFUSED = ("error: ask_human is not available inside a workflow step; the workflow's approval steps "
                     "are the way to ask a person")


class _Usage(AsyncCallbackHandler):
    """Tokens of every model call of one agent step, also when the step then fails."""

    def __init__(self) -> None:
        self.prompt = self.completion = 0

    async def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        for generations in response.generations:
            for generation in generations:
                usage = getattr(getattr(generation, "message", None), "usage_metadata", None) or {}
                self.prompt += usage.get("input_tokens", 0)
                self.completion += usage.get("output_tokens", 0)


@dataclasses.dataclass
class _Run:
    """One execution of a workflow run (a resume is a new one)."""
    run: run_store.Run
    definition: Definition
    journal: Journal
    attempts: dict[str, int] = dataclasses.field(default_factory=dict)
    running: dict[str, tuple[str, float]] = dataclasses.field(default_factory=dict)  # step -> (iso, perf)
    starting: dict[str, asyncio.Task] = dataclasses.field(default_factory=dict)  # rows of starts being written
    group_of: dict[str, str] = dataclasses.field(default_factory=dict)  # parallel member -> its group


class WorkflowRuns:
    def __init__(self, runner: "Runner"):
        self.runner = runner
        self.states: dict[str, _Run] = {}  # run id -> the execution under way
        self._saver: StepSaver | None = None
        self._deadlines: dict[str, asyncio.TimerHandle] = {}  # run id -> its approval's timeout
        self._expiring: set[asyncio.Task] = set()
        # Compiling costs ~2.5 ms a step (LangGraph inspects every node function), so each
        # workflow version is compiled once; its nodes find their run through _CURRENT.
        self._graphs: collections.OrderedDict[tuple[str, int], Any] = collections.OrderedDict()
        self._agent_graphs: collections.OrderedDict[tuple, Any] = collections.OrderedDict()
        self._versions: collections.OrderedDict[tuple[str, int], agent_store.AgentVersion] = collections.OrderedDict()

    def saver(self) -> StepSaver:
        if self._saver is None:
            self._saver = StepSaver(self.runner.db)
        return self._saver

    def _graph(self, run: run_store.Run, definition: Definition):
        key = (run.workflow_id, run.workflow_version)
        graph = self._graphs.get(key)
        if graph is None:
            graph = compile_workflow(
                definition, lambda name, step, rendered: self._step(_CURRENT.get(), name, step, rendered),
                checkpointer=self.saver(),
                on_attempt_failed=lambda *a: self._attempt_failed(_CURRENT.get(), *a))
            _remember(self._graphs, key, graph)
        return graph

    def _emit(self, run: run_store.Run, event: ev.Event) -> None:
        """Step events are queued in order (the bus appends them in batches); run.* events are awaited."""
        self.runner.bus.publish_nowait(f"runs/{run.id}", event)

    # ---- the run's life ------------------------------------------------------------

    async def supervise(self, run: run_store.Run, *, resume: Any, resumed: bool) -> None:
        try:
            await self._supervise(run, resume=resume, resumed=resumed)
        finally:
            self.states.pop(run.id, None)
            if self._saver is not None:
                self._saver.journals.pop(f"run:{run.id}", None)

    async def _supervise(self, run: run_store.Run, *, resume: Any, resumed: bool) -> None:
        r = self.runner
        try:
            async with asyncio.timeout(r.settings.run_timeout_seconds):
                await self._execute(run, resume=resume, resumed=resumed)
        except asyncio.CancelledError:
            # Endings are written whatever the database does (endings.py).
            interrupted = r._stopping
            await asyncio.shield(r.endings.write(run.id, lambda: self._finish_stopped(run, interrupted=interrupted)))
            raise
        except BaseException as exc:  # every failure ends as a failed row with a reason
            failure = self.failure_of(exc)
            if failure.code == "internal_error":
                log.exception("workflow run failed", extra={"run_id": run.id})
            else:
                log.warning("workflow run failed", extra={"run_id": run.id, "code": failure.code})
            await asyncio.shield(r.endings.write(run.id, lambda: self._finish_failed(run, failure)))

    @staticmethod
    def failure_of(exc: BaseException) -> RunFailure:
        """A failed step names itself: code step_failed (or the step's own final code, e.g.
        budget_exceeded), message "step 'x': …"."""
        if isinstance(exc, StepFailed):
            code = exc.cause.code if isinstance(exc.cause, StepError) and exc.cause.code != "step_failed" \
                and not exc.cause.retryable else "step_failed"
            return RunFailure(code, str(exc))
        if isinstance(exc, WorkflowError):
            return RunFailure("step_failed", str(exc))
        return failure_of(exc)

    async def _execute(self, run: run_store.Run, *, resume: Any, resumed: bool) -> None:
        r = self.runner
        version = await workflow_store.version(r.db, run.workflow_id, run.workflow_version)
        if version is None:
            raise RunFailure("workflow_missing", "the workflow version this run uses no longer exists")
        definition = Definition.from_dict(version.definition)
        journal = Journal(run, lambda event: self._emit(run, event),
                          {name: step.kind for name, step in definition.steps.items()})
        state = self.states[run.id] = _Run(run, definition, journal)
        for name, step in definition.steps.items():
            if isinstance(step, ParallelStep):
                state.group_of.update((member, name) for member in step.steps)
        for row in await run_store.steps(r.db, run.id):  # a resumed approval keeps when it began
            journal.started_at[row.step] = (row.started_at, time.perf_counter())
        await r.check_budget(run)
        async with r.db.write() as conn:
            await run_store.set_status(conn, run.id, "running", started=True, lease=r.leases.lease())
            if not resumed:
                await run_store.count_run(conn, run)
        await r.publish(run, ev.RunStarted(run.id, None, resumed))

        graph = self._graph(run, definition)
        self.saver().journals[f"run:{run.id}"] = journal
        _CURRENT.set(state)  # the node tasks LangGraph starts below inherit it
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
                return
        outputs = (await graph.aget_state(config)).values.get("outputs", {})
        await r.endings.write(run.id, lambda: self._succeeded(run, journal, outputs))

    async def _succeeded(self, run: run_store.Run, journal: Journal, outputs: dict) -> None:
        """The end of a run that succeeded (safe to write again: endings.py)."""
        r = self.runner
        async with r.db.write() as conn:
            taken = await journal.write(conn)
            await run_store.set_output(conn, run.id, outputs)
            await run_store.set_status(conn, run.id, "succeeded", finished=True)
            await run_store.drop_checkpoints(conn, f"run:{run.id}")
        journal.committed(taken)
        done = await run_store.get(r.db, run.id)
        await r.publish(run, ev.RunSucceeded(run.id, None, done.prompt_tokens, done.completion_tokens))

    async def _waiting(self, state: _Run, value: dict) -> None:
        """An approval step paused the graph: the row says so first, then the events."""
        r, run = self.runner, state.run
        step, prompt = str(value.get("step", "")), str(value.get("prompt", ""))
        started_at = now_iso()
        async with r.db.write() as conn:
            taken = await state.journal.write(conn)
            await run_store.step_started(conn, run.id, step, "approval", 1, started_at, status="waiting")
            await run_store.set_status(conn, run.id, "waiting_for_input", waiting_prompt=prompt)
        state.journal.committed(taken)
        self._emit(run, ev.StepWaiting(run.id, step, prompt))
        await r.publish(run, ev.RunWaiting(run.id, None, prompt))
        approval = state.definition.steps.get(step)
        if isinstance(approval, ApprovalStep) and approval.timeout_seconds:
            self._arm(run.id, step, started_at, approval.timeout_seconds)

    # ---- approvals that wait too long ------------------------------------------------

    async def start(self) -> None:
        """At startup: waiting approvals that have a timeout get their deadlines back."""
        r = self.runner
        for run_id, step, started_at in await run_store.waiting_steps(r.db):
            run = await run_store.get(r.db, run_id)
            version = await workflow_store.version(r.db, run.workflow_id, run.workflow_version) if run else None
            approval = Definition.from_dict(version.definition).steps.get(step) if version else None
            if isinstance(approval, ApprovalStep) and approval.timeout_seconds:
                self._arm(run_id, step, started_at, approval.timeout_seconds)

    def stop(self) -> None:
        for handle in self._deadlines.values():
            handle.cancel()
        self._deadlines.clear()

    def _arm(self, run_id: str, step: str, started_at: str, timeout: float) -> None:
        waited = (timeutil.now() - timeutil.parse(started_at)).total_seconds()
        loop = asyncio.get_running_loop()

        def expire() -> None:
            self._deadlines.pop(run_id, None)
            task = loop.create_task(self._expire(run_id, step, started_at, timeout), name=f"approval-timeout-{run_id}")
            self._expiring.add(task)
            task.add_done_callback(self._expiring.discard)

        old = self._deadlines.pop(run_id, None)
        if old is not None:
            old.cancel()
        self._deadlines[run_id] = loop.call_later(max(0.0, timeout - waited), expire)

    async def _expire(self, run_id: str, step: str, started_at: str, timeout: float) -> None:
        """Nobody answered in time: the run fails (written whatever the database does meanwhile:
        endings.py), unless it was answered or cancelled meanwhile."""
        await self.runner.endings.write(run_id, lambda: self._expire_once(run_id, step, started_at, timeout))

    async def _expire_once(self, run_id: str, step: str, started_at: str, timeout: float) -> None:
        r = self.runner
        error = f"no answer within {timeout:g} s"
        finished_at = timeutil.now_iso()
        async with r.db.write() as conn:
            run = await run_store.get_in(conn, run_id)
            if run is None or run.status != "waiting_for_input" or \
                    await run_store.step_status_in(conn, run_id, step) != ("waiting", started_at):
                return
            await run_store.step_finished(conn, run_id, step, "approval", "failed", started_at=started_at,
                                          finished_at=finished_at, error=error)
            await run_store.set_status(conn, run_id, "failed", finished=True,
                                       error=("approval_timed_out", f"step '{step}': {error}"))
            await run_store.drop_checkpoints(conn, f"run:{run_id}")
        duration = round((timeutil.parse(finished_at) - timeutil.parse(started_at)).total_seconds() * 1000, 3)
        self._emit(run, ev.StepFailed(run_id, step, "approval", 1, started_at, finished_at, duration, error))
        await r.publish(run, ev.RunFailed(run_id, None, "approval_timed_out", f"step '{step}': {error}"))

    # ---- steps ---------------------------------------------------------------------

    async def _write_started(self, state: _Run, name: str, kind: str, attempt: int, started_at: str) -> None:
        """The start's row, then its event (a parallel group starts with its first member)."""
        r, run = self.runner, state.run
        group = state.group_of.get(name)
        opens_group = group is not None and group not in state.journal.started_at
        if opens_group:
            state.journal.started_at[group] = (started_at, time.perf_counter())
        async with r.db.write() as conn:
            if opens_group:
                await run_store.step_started(conn, run.id, group, "parallel", 1, started_at)
            await run_store.step_started(conn, run.id, name, kind, attempt, started_at)
        if opens_group:
            self._emit(run, ev.StepStarted(run.id, group, "parallel", 1, started_at))
        self._emit(run, ev.StepStarted(run.id, name, kind, attempt, started_at))

    async def _start_written(self, state: _Run, name: str) -> None:
        task = state.starting.pop(name, None)
        if task is not None:
            await asyncio.shield(task)

    async def _step(self, state: _Run, name: str, step: Step, rendered: Any) -> Any:
        """execute_step for the compiled graph: one attempt of an agent or tool step. The start's
        row is written while the step works; the outcome's row goes with LangGraph's writes."""
        attempt = state.attempts[name] = state.attempts.get(name, 0) + 1
        started_at, began = state.running[name] = (now_iso(), time.perf_counter())
        state.starting[name] = asyncio.create_task(self._write_started(state, name, step.kind, attempt, started_at))
        usage: tuple[int, int, str | None] = (0, 0, None)
        if isinstance(step, AgentStep):
            output, usage = await self._agent(state.run, step, rendered)
        else:
            output = await self._tool(step, rendered)
        await self._start_written(state, name)
        state.running.pop(name, None)
        state.journal.finished[name] = Finished(step.kind, attempt, started_at,
                                                round((time.perf_counter() - began) * 1000, 3), usage)
        return output

    async def _attempt_failed(self, state: _Run, name: str, step: Step, attempt: int, exc: BaseException,
                              retry_in: float | None) -> None:
        r, run = self.runner, state.run
        error = reason_of(exc)
        await self._start_written(state, name)
        started_at, began = state.running.pop(name, (now_iso(), time.perf_counter()))
        finished_at = now_iso()
        prompt, completion, model = getattr(exc, "usage", None) or (0, 0, None)
        async with r.db.write() as conn:
            await run_store.step_finished(conn, run.id, name, step.kind, "retrying" if retry_in is not None else "failed",
                                          attempt=attempt, started_at=started_at, finished_at=finished_at,
                                          error=error, prompt_tokens=prompt, completion_tokens=completion)
            if prompt or completion:  # a failed attempt's model calls count towards usage and budgets
                await run_store.add_usage(conn, run, prompt, completion, model=model)
        if retry_in is not None:
            self._emit(run, ev.StepRetrying(run.id, name, step.kind, attempt, error, retry_in))
        else:
            self._emit(run, ev.StepFailed(run.id, name, step.kind, attempt, started_at, finished_at,
                                          round((time.perf_counter() - began) * 1000, 3), error))

    async def _agent(self, run: run_store.Run, step: AgentStep, text: str) -> tuple[str, tuple[int, int, str]]:
        """The pinned agent version's graph on a fresh message list; no checkpoints of its own
        (a step interrupted by a crash runs again from its start)."""
        r = self.runner
        number = (run.pins or {}).get(step.agent_id)
        version = await self._agent_version(step.agent_id, number) if number else None
        if version is None:
            raise StepError("the agent version this run uses no longer exists", code="agent_missing", retryable=False)
        provider = r.providers.get(version.provider)
        if provider is None:
            raise StepError(f"no model provider named {version.provider!r} is configured",
                            code="provider_not_configured", retryable=False)
        try:
            await r.check_budget(run)
        except RunFailure as exc:
            raise StepError(exc.message, code=exc.code, retryable=False) from None
        graph = self._agent_graph(version, provider)
        counted = _Usage()
        try:
            # The agent's graph is not a subgraph of the workflow's: it starts from a clean config
            # (no inherited thread, checkpointer or durability) and keeps no checkpoints.
            outer = var_child_runnable_config.set(None)
            try:
                final = await graph.ainvoke({"messages": [HumanMessage(text)]},
                                            {"recursion_limit": version.max_steps * 2 + 1, "callbacks": [counted]})
            finally:
                var_child_runnable_config.reset(outer)
        except Exception as exc:
            failure = failure_of(exc)
            if failure.code == "internal_error":
                log.exception("agent step failed", extra={"run_id": run.id})
            error = StepError(failure.message, code=failure.code, retryable=failure.code not in _FINAL_CODES)
            error.usage = (counted.prompt, counted.completion, version.model)  # spent all the same
            raise error from exc
        replies = [m for m in final["messages"] if isinstance(m, AIMessage)]
        return (graphs.content_text(replies[-1].content) if replies else ""), \
            (counted.prompt, counted.completion, version.model)

    async def _agent_version(self, agent_id: str, number: int) -> agent_store.AgentVersion | None:
        """A pinned agent version (immutable, so kept once read)."""
        key = (agent_id, number)
        version = self._versions.get(key)
        if version is None:
            version = await agent_store.version(self.runner.db, agent_id, number)
            if version is not None:
                _remember(self._versions, key, version)
        return version

    def _agent_graph(self, version: agent_store.AgentVersion, provider: dict):
        """The agent version's graph (runner/graph.py), built once per version and provider and
        shared by the steps and runs that use it; its tool calls find their run through _CURRENT."""
        key = graphs.version_key(version, provider)
        graph = self._agent_graphs.get(key)
        if graph is None:
            r = self.runner
            ctx = ToolContext(allowed_hosts=r.settings.http_get_allowed_hosts)
            allowed = {n for n in version.tools if n in REGISTRY and n != ASK_HUMAN}
            graph = graphs.for_version(
                version, provider, max_retries=r.settings.llm_max_retries,
                timeout=r.settings.llm_timeout_seconds, checkpointer=False,
                context_tokens=context.budget_of(provider, version.model, provider["context_default"]),
                leave_out=frozenset({ASK_HUMAN}),
                execute_tool=lambda call: self._agent_tool(_CURRENT.get().run, call, ctx, allowed))
            _remember(self._agent_graphs, key, graph)
        return graph

    async def _agent_tool(self, run: run_store.Run, call: dict, ctx: ToolContext, allowed: set[str]) -> ToolMessage:
        r = self.runner
        call_id, name, args = call["id"], call["name"], call.get("args") or {}
        self._emit(run, ev.ToolCalled(run.id, None, call_id, name, args if isinstance(args, dict) else {}))
        if name == ASK_HUMAN:
            ok, output = False, ASK_HUMAN_REFUSED
        elif name not in allowed:
            ok, output = False, f"error: no tool named {name!r} is available to this agent"
        else:
            ok, output = await run_tool(REGISTRY[name], args, ctx, r.settings.tool_timeout_seconds)
        self._emit(run, ev.ToolResult(run.id, None, call_id, name, ok, output))
        return ToolMessage(output, tool_call_id=call_id, name=name, status="success" if ok else "error")

    async def _tool(self, step: ToolStep, arguments: Any) -> str:
        r = self.runner
        tool = REGISTRY.get(step.tool)
        if tool is None or tool.run is None:
            raise StepError(f"no tool named {step.tool!r} can run in a workflow", retryable=False)
        ctx = ToolContext(allowed_hosts=r.settings.http_get_allowed_hosts)
        ok, output = await run_tool(tool, arguments, ctx, r.settings.tool_timeout_seconds)
        if not ok:
            raise StepError(output.removeprefix("error: "))
        return output

    # ---- endings -------------------------------------------------------------------

    async def _settle(self, run: run_store.Run):
        """Before a final status: starts still being written land first; the journal's rows go
        into the caller's transaction (returns the journal, or None)."""
        state = self.states.get(run.id)
        if state is None:
            return None
        for task in list(state.starting.values()):
            with contextlib.suppress(BaseException):
                await asyncio.shield(task)
        state.starting.clear()
        return state.journal

    async def _finish_stopped(self, run: run_store.Run, *, interrupted: bool) -> None:
        r = self.runner
        journal = await self._settle(run)
        async with r.db.write() as conn:
            taken = await journal.write(conn) if journal else None
            if interrupted:  # shutdown: resumable from the checkpoint
                await run_store.steps_ended(conn, run.id, "interrupted")
                await run_store.set_status(conn, run.id, "interrupted", error=(
                    "interrupted", "the server stopped while this run was running; resume it"))
            else:
                await run_store.steps_ended(conn, run.id, "cancelled")
                await run_store.set_status(conn, run.id, "cancelled", finished=True)
                await run_store.drop_checkpoints(conn, f"run:{run.id}")
        if journal and taken:
            journal.committed(taken)
        await r.publish(run, ev.RunInterrupted(run.id, None) if interrupted else ev.RunCancelled(run.id, None))

    async def _finish_failed(self, run: run_store.Run, failure: RunFailure) -> None:
        r = self.runner
        journal = await self._settle(run)
        async with r.db.write() as conn:
            taken = await journal.write(conn) if journal else None
            await run_store.steps_ended(conn, run.id, "cancelled")  # e.g. a parallel sibling cut short
            await run_store.set_status(conn, run.id, "failed", error=(failure.code, failure.message), finished=True)
            await run_store.drop_checkpoints(conn, f"run:{run.id}")
        if journal and taken:
            journal.committed(taken)
        await r.publish(run, ev.RunFailed(run.id, None, failure.code, failure.message))
