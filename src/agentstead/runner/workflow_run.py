"""Workflow runs: a pinned workflow version compiled to LangGraph and driven like a chat run.

The runner's scheduler, limits, cancel and resume apply unchanged; this module
holds what differs. Each step is a node of the compiled graph, checkpointed with
the runner's saver (the single writer), so after a crash a resumed run goes on
from the last completed step and never repeats one. An agent step runs the
pinned agent version's own graph (runner/graph.py) on a fresh message list; a
tool step calls the tool registry with its limits. Every step writes its row in
`run_steps` first, then publishes step.* on `runs/{id}`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables.config import var_child_runnable_config
from langgraph.types import Command

from ..agents.tools import ASK_HUMAN, REGISTRY, ToolContext, run_tool
from ..bus import events as ev
from ..store import agents as agent_store
from ..store import runs as run_store
from ..store import workflows as workflow_store
from ..timeutil import now_iso
from ..workflows.compile import StepError, StepFailed, WorkflowError, compile_workflow, initial_state, reason_of
from ..workflows.definition import AgentStep, ApprovalStep, BranchStep, Definition, ParallelStep, Step, ToolStep
from . import graph as graphs
from .failures import RunFailure, failure_of

if TYPE_CHECKING:
    from .runner import Runner

log = logging.getLogger("agentstead.runner.workflows")

MAX_EVENT_OUTPUT = 16 * 1024
# Provider failures that another attempt cannot fix.
_FINAL_CODES = frozenset({"provider_auth_failed", "model_not_found", "budget_exceeded", "provider_not_configured",
                          "agent_missing"})
ASK_HUMAN_REFUSED = ("error: ask_human is not available inside a workflow step; the workflow's approval steps "
                     "are the way to ask a person")


def event_output(output: Any) -> tuple[Any, bool]:
    """A step's output for an event: as it is, or cut to MAX_EVENT_OUTPUT characters of text."""
    text = output if isinstance(output, str) else json.dumps(output, default=str)
    if len(text) <= MAX_EVENT_OUTPUT:
        return output, False
    return text[:MAX_EVENT_OUTPUT], True


@dataclasses.dataclass
class _Run:
    """One execution of a workflow run (a resume is a new one)."""
    run: run_store.Run
    definition: Definition
    attempts: dict[str, int] = dataclasses.field(default_factory=dict)
    started: dict[str, tuple[str, float]] = dataclasses.field(default_factory=dict)  # step -> (iso, perf)


class WorkflowRuns:
    def __init__(self, runner: "Runner"):
        self.runner = runner

    # ---- the run's life ------------------------------------------------------------

    async def supervise(self, run: run_store.Run, *, resume: Any, resumed: bool) -> None:
        r = self.runner
        try:
            async with asyncio.timeout(r.settings.run_timeout_seconds):
                await self._execute(run, resume=resume, resumed=resumed)
        except asyncio.CancelledError:
            await asyncio.shield(self._finish_stopped(run, interrupted=r._stopping))
            raise
        except BaseException as exc:  # every failure ends as a failed row with a reason
            failure = self.failure_of(exc)
            if failure.code == "internal_error":
                log.exception("workflow run failed", extra={"run_id": run.id})
            else:
                log.warning("workflow run failed", extra={"run_id": run.id, "code": failure.code})
            await asyncio.shield(self._finish_failed(run, failure))

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
        state = _Run(run, Definition.from_dict(version.definition))
        await r._budget_left(run)
        async with r.db.write() as conn:
            await run_store.set_status(conn, run.id, "running", started=True)
            if not resumed:
                await run_store.count_run(conn, run)
        await r._publish(run, ev.RunStarted(run.id, None, resumed))

        graph = compile_workflow(state.definition, lambda name, step, rendered: self._step(state, name, step, rendered),
                                 checkpointer=r._saver,
                                 on_attempt_failed=lambda *a: self._attempt_failed(state, *a))
        config = {"configurable": {"thread_id": f"run:{run.id}"},
                  "recursion_limit": 2 * len(state.definition.steps) + 10}
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
            for node, update in chunk.items():
                await self._observe(state, node, update or {})

        outputs = (await graph.aget_state(config)).values.get("outputs", {})
        async with r.db.write() as conn:
            await run_store.set_output(conn, run.id, outputs)
            await run_store.set_status(conn, run.id, "succeeded", finished=True)
            await run_store.drop_checkpoints(conn, f"run:{run.id}")
        done = await run_store.get(r.db, run.id)
        await r._publish(run, ev.RunSucceeded(run.id, None, done.prompt_tokens, done.completion_tokens))

    async def _waiting(self, state: _Run, value: dict) -> None:
        """An approval step paused the graph: the row says so first, then the events."""
        r, run = self.runner, state.run
        step, prompt = str(value.get("step", "")), str(value.get("prompt", ""))
        async with r.db.write() as conn:
            await run_store.step_started(conn, run.id, step, "approval", 1, now_iso(), status="waiting")
            await run_store.set_status(conn, run.id, "waiting_for_input", waiting_prompt=prompt)
        await r._publish(run, ev.StepWaiting(run.id, step, prompt))
        await r._publish(run, ev.RunWaiting(run.id, None, prompt))

    async def _observe(self, state: _Run, node: str, update: dict) -> None:
        """Steps that do no work of their own (branch, approval, a parallel group) report
        here, from the graph's updates; agent and tool steps report in _step."""
        steps = state.definition.steps
        if node.endswith("-join") and node[:-5] in steps:
            name = node[:-5]
        elif isinstance(steps.get(node), ParallelStep):
            await self._started(state, node, "parallel", 1)
            return
        elif isinstance(steps.get(node), (BranchStep, ApprovalStep)):
            name = node
        else:
            return
        output = (update.get("outputs") or {}).get(name)
        started_iso, started = state.started.pop(name, (now_iso(), time.perf_counter()))
        await self._succeeded(state, name, steps[name].kind, 1, started_iso, started, output)

    # ---- steps ---------------------------------------------------------------------

    async def _started(self, state: _Run, name: str, kind: str, attempt: int) -> None:
        r, run = self.runner, state.run
        started_iso = now_iso()
        state.started[name] = (started_iso, time.perf_counter())
        async with r.db.write() as conn:
            await run_store.step_started(conn, run.id, name, kind, attempt, started_iso)
        await r._publish(run, ev.StepStarted(run.id, name, kind, attempt, started_iso))

    async def _succeeded(self, state: _Run, name: str, kind: str, attempt: int, started_iso: str, started: float,
                         output: Any, usage: tuple[int, int, str | None] = (0, 0, None)) -> None:
        r, run = self.runner, state.run
        finished_iso, duration = now_iso(), round((time.perf_counter() - started) * 1000, 3)
        prompt, completion, model = usage
        async with r.db.write() as conn:
            await run_store.step_finished(conn, run.id, name, kind, "succeeded", attempt=attempt,
                                          started_at=started_iso, finished_at=finished_iso, output=output,
                                          prompt_tokens=prompt, completion_tokens=completion)
            if prompt or completion:
                await run_store.add_usage(conn, run, prompt, completion, model=model)
        shown, truncated = event_output(output)
        await r._publish(run, ev.StepSucceeded(run.id, name, kind, attempt, started_iso, finished_iso, duration,
                                               shown, truncated))

    async def _step(self, state: _Run, name: str, step: Step, rendered: Any) -> Any:
        """execute_step for the compiled graph: one attempt of an agent or tool step."""
        attempt = state.attempts[name] = state.attempts.get(name, 0) + 1
        await self._started(state, name, step.kind, attempt)
        started_iso, started = state.started[name]
        usage: tuple[int, int, str | None] = (0, 0, None)
        if isinstance(step, AgentStep):
            output, usage = await self._agent(state.run, step, rendered)
        else:
            output = await self._tool(step, rendered)
        state.started.pop(name, None)
        await self._succeeded(state, name, step.kind, attempt, started_iso, started, output, usage)
        return output

    async def _attempt_failed(self, state: _Run, name: str, step: Step, attempt: int, exc: BaseException,
                              retry_in: float | None) -> None:
        r, run = self.runner, state.run
        error = reason_of(exc)
        started_iso, started = state.started.pop(name, (now_iso(), time.perf_counter()))
        finished_iso = now_iso()
        async with r.db.write() as conn:
            await run_store.step_finished(conn, run.id, name, step.kind, "retrying" if retry_in is not None else "failed",
                                          attempt=attempt, started_at=started_iso, finished_at=finished_iso,
                                          error=error)
        if retry_in is not None:
            await r._publish(run, ev.StepRetrying(run.id, name, step.kind, attempt, error, retry_in))
        else:
            await r._publish(run, ev.StepFailed(run.id, name, step.kind, attempt, started_iso, finished_iso,
                                                round((time.perf_counter() - started) * 1000, 3), error))

    async def _agent(self, run: run_store.Run, step: AgentStep, text: str) -> tuple[str, tuple[int, int, str]]:
        """The pinned agent version's graph on a fresh message list; no checkpoints of its own
        (a step interrupted by a crash runs again from its start)."""
        r = self.runner
        number = (run.pins or {}).get(step.agent_id)
        version = await agent_store.version(r.db, step.agent_id, number) if number else None
        if version is None:
            raise StepError("the agent version this run uses no longer exists", code="agent_missing", retryable=False)
        provider = r.providers.get(version.provider)
        if provider is None:
            raise StepError(f"no model provider named {version.provider!r} is configured",
                            code="provider_not_configured", retryable=False)
        try:
            await r._budget_left(run)
        except RunFailure as exc:
            raise StepError(exc.message, code=exc.code, retryable=False) from None
        tools = [REGISTRY[n] for n in version.tools if n in REGISTRY and n != ASK_HUMAN]
        llm = graphs.chat_model(base_url=provider["base_url"], api_key=provider["api_key"], model=version.model,
                                temperature=version.temperature, max_retries=r.settings.llm_max_retries)
        ctx = ToolContext(allowed_hosts=r.settings.http_get_allowed_hosts)
        allowed = {t.name for t in tools}
        graph = graphs.build(llm=llm, instructions=version.instructions, tools=tools,
                             execute_tool=lambda call: self._agent_tool(run, call, ctx, allowed),
                             checkpointer=False)
        try:
            # The agent's graph is not a subgraph of the workflow's: it starts from a clean config
            # (no inherited thread, checkpointer or durability) and keeps no checkpoints.
            outer = var_child_runnable_config.set(None)
            try:
                final = await graph.ainvoke({"messages": [HumanMessage(text)]},
                                            {"recursion_limit": version.max_steps * 2 + 1})
            finally:
                var_child_runnable_config.reset(outer)
        except Exception as exc:
            failure = failure_of(exc)
            if failure.code == "internal_error":
                log.exception("agent step failed", extra={"run_id": run.id})
            raise StepError(failure.message, code=failure.code,
                            retryable=failure.code not in _FINAL_CODES) from exc
        replies = [m for m in final["messages"] if isinstance(m, AIMessage)]
        prompt = sum((m.usage_metadata or {}).get("input_tokens", 0) for m in replies)
        completion = sum((m.usage_metadata or {}).get("output_tokens", 0) for m in replies)
        return (graphs.content_text(replies[-1].content) if replies else ""), (prompt, completion, version.model)

    async def _agent_tool(self, run: run_store.Run, call: dict, ctx: ToolContext, allowed: set[str]) -> ToolMessage:
        r = self.runner
        call_id, name, args = call["id"], call["name"], call.get("args") or {}
        await r._publish(run, ev.ToolCalled(run.id, None, call_id, name, args if isinstance(args, dict) else {}))
        if name == ASK_HUMAN:
            ok, output = False, ASK_HUMAN_REFUSED
        elif name not in allowed:
            ok, output = False, f"error: no tool named {name!r} is available to this agent"
        else:
            ok, output = await run_tool(REGISTRY[name], args, ctx, r.settings.tool_timeout_seconds)
        await r._publish(run, ev.ToolResult(run.id, None, call_id, name, ok, output))
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

    async def _finish_stopped(self, run: run_store.Run, *, interrupted: bool) -> None:
        r = self.runner
        async with r.db.write() as conn:
            if interrupted:  # shutdown: resumable from the checkpoint
                await run_store.steps_ended(conn, run.id, "interrupted")
                await run_store.set_status(conn, run.id, "interrupted", error=(
                    "interrupted", "the server stopped while this run was running; resume it"))
            else:
                await run_store.steps_ended(conn, run.id, "cancelled")
                await run_store.set_status(conn, run.id, "cancelled", finished=True)
                await run_store.drop_checkpoints(conn, f"run:{run.id}")
        await r._publish(run, ev.RunInterrupted(run.id, None) if interrupted else ev.RunCancelled(run.id, None))

    async def _finish_failed(self, run: run_store.Run, failure: RunFailure) -> None:
        r = self.runner
        async with r.db.write() as conn:
            await run_store.steps_ended(conn, run.id, "cancelled")  # e.g. a parallel sibling cut short
            await run_store.set_status(conn, run.id, "failed", error=(failure.code, failure.message), finished=True)
            await run_store.drop_checkpoints(conn, f"run:{run.id}")
        await r._publish(run, ev.RunFailed(run.id, None, failure.code, failure.message))
