"""A validated definition as a LangGraph `StateGraph`.

The state is the run's `input`, `outputs` (step → output) and `attempts`
(step → attempts used); both maps merge through a reducer so the members of a
parallel group, which finish in the same superstep, all land. Steps do no I/O
of their own: agent and tool steps call the injected `execute_step`, so the
runner decides what running an agent or a tool means (and which events that
publishes), and these graphs stay testable with a fake.

Each node is one step, which is what makes checkpoints useful: after a resume
(an approval answered, a restart) LangGraph replays nothing that finished.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Awaitable, Callable, Mapping, TypedDict

from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from . import expressions
from .definition import AgentStep, ApprovalStep, BranchStep, Definition, ParallelStep, Step, ToolStep
from .references import context
from .templates import TemplateError, render, render_value

# execute_step(step name, step, rendered input) -> output. The rendered input is
# the agent's input text for an agent step and the arguments object for a tool step.
ExecuteStep = Callable[[str, Step, Any], Awaitable[Any]]


class WorkflowError(Exception):
    """A workflow run cannot go on; the message names the step."""

    def __init__(self, step: str, message: str):
        super().__init__(f"step '{step}': {message}")
        self.step = step


class StepError(Exception):
    """A failure `execute_step` explains in its own words (no exception class name in
    the message). `retryable=False` ends the step at once (e.g. a used-up budget)."""

    def __init__(self, message: str, *, code: str = "step_failed", retryable: bool = True):
        super().__init__(message)
        self.code, self.retryable = code, retryable


def reason_of(cause: BaseException) -> str:
    if isinstance(cause, TimeoutError):
        return "timed out"
    if isinstance(cause, StepError):
        return str(cause)
    return f"{type(cause).__name__}: {cause}"


# on_attempt_failed(step name, step, attempt, exception, retry_in): awaited after each failed
# attempt; retry_in is the backoff before the next attempt, or None when the step has failed.
AttemptFailed = Callable[[str, Step, int, BaseException, "float | None"], Awaitable[None]]


class StepFailed(WorkflowError):
    """An agent or tool step failed on every attempt."""

    def __init__(self, step: str, attempts: int, cause: BaseException):
        reason = reason_of(cause)
        super().__init__(step, f"failed after {attempts} attempt{'s' if attempts != 1 else ''} ({reason})")
        self.attempts, self.cause = attempts, cause


def _merge(left: Mapping[str, Any] | None, right: Mapping[str, Any] | None) -> dict[str, Any]:
    return {**(left or {}), **(right or {})}


class WorkflowState(TypedDict):
    input: dict[str, Any]
    outputs: Annotated[dict[str, Any], _merge]
    attempts: Annotated[dict[str, int], _merge]


def initial_state(run_input: Mapping[str, Any]) -> dict[str, Any]:
    return {"input": dict(run_input), "outputs": {}, "attempts": {}}


def join_node(group: str) -> str:
    # Step names are identifiers; the dash keeps join nodes apart from them.
    return f"{group}-join"


def compile_workflow(definition: Definition, execute_step: ExecuteStep, *, checkpointer=None,
                     default_timeout: float | None = None, sleep=asyncio.sleep,
                     on_attempt_failed: AttemptFailed | None = None):
    """The compiled graph; invoke it with `initial_state(input)` and a thread id.
    `default_timeout` bounds agent and tool steps that set no `timeout_seconds`;
    `on_attempt_failed` hears of every failed attempt (for retry and failure events)."""
    graph = StateGraph(WorkflowState)
    members = {m for s in definition.steps.values() if isinstance(s, ParallelStep) for m in s.steps}

    # Nodes first: a multiple-source edge needs all its sources to exist.
    for name, step in definition.steps.items():
        if isinstance(step, (AgentStep, ToolStep)):
            graph.add_node(name, _work_node(name, step, execute_step, default_timeout, sleep, on_attempt_failed))
        elif isinstance(step, BranchStep):
            graph.add_node(name, _branch_node(name, step))
        elif isinstance(step, ApprovalStep):
            graph.add_node(name, _approval_node(name, step))
        elif isinstance(step, ParallelStep):
            graph.add_node(name, _fan_out)
            graph.add_node(join_node(name), _join_node(name, step))

    graph.add_edge(START, definition.start)
    for name, step in definition.steps.items():
        if isinstance(step, (AgentStep, ToolStep)):
            if name not in members:  # a member continues at its group's join
                graph.add_edge(name, step.next or END)
        elif isinstance(step, BranchStep):
            targets = list(dict.fromkeys([c.next for c in step.cases] + [step.default]))
            graph.add_conditional_edges(name, _chosen(name), targets)
        elif isinstance(step, ApprovalStep):
            graph.add_conditional_edges(name, _approval_route(name, step), [step.on_approve, step.on_reject or END])
        elif isinstance(step, ParallelStep):
            for member in step.steps:
                graph.add_edge(name, member)
            # A multiple-source edge: the join runs once, after every member finished.
            graph.add_edge(list(step.steps), join_node(name))
            graph.add_edge(join_node(name), step.next or END)
    return graph.compile(checkpointer=checkpointer)


def _context(state: Mapping[str, Any]) -> dict:
    return context(state.get("input") or {}, state.get("outputs") or {})


def _work_node(name: str, step: AgentStep | ToolStep, execute_step: ExecuteStep, default_timeout: float | None,
               sleep, on_attempt_failed: AttemptFailed | None = None):
    timeout = step.timeout_seconds or default_timeout

    async def node(state: WorkflowState) -> dict:
        try:
            ctx = _context(state)
            rendered = render(step.input, ctx) if isinstance(step, AgentStep) else render_value(step.arguments, ctx)
        except TemplateError as exc:
            raise WorkflowError(name, f"cannot render its input: {exc}") from None
        attempts = max(1, step.retry.max_attempts)
        for attempt in range(1, attempts + 1):
            try:
                async with asyncio.timeout(timeout):
                    output = await execute_step(name, step, rendered)
                return {"outputs": {name: output}, "attempts": {name: attempt}}
            except GraphBubbleUp:
                raise  # an interrupt inside the step (e.g. an agent asking a human) is not a failure
            except Exception as exc:
                final = attempt == attempts or (isinstance(exc, StepError) and not exc.retryable)
                # Exponential backoff: backoff, 2×backoff, 4×backoff, …
                delay = None if final else step.retry.backoff_seconds * 2 ** (attempt - 1)
                if on_attempt_failed is not None:
                    await on_attempt_failed(name, step, attempt, exc, delay)
                if delay is None:
                    raise StepFailed(name, attempt, exc) from exc
                await sleep(delay)
        raise AssertionError("unreachable")

    return node


def _branch_node(name: str, step: BranchStep):
    conditions = [(expressions.parse(case.when), case.next) for case in step.cases]

    async def node(state: WorkflowState) -> dict:
        ctx = _context(state)
        for i, (condition, target) in enumerate(conditions):
            try:
                if expressions.evaluate(condition, ctx):
                    return {"outputs": {name: target}}
            except expressions.ExpressionError as exc:
                raise WorkflowError(name, f"case {i}: {exc}") from None
        return {"outputs": {name: step.default}}

    return node


def _chosen(name: str):
    # The branch node records its choice as its output; the edge just follows it,
    # so a replay from a checkpoint takes the same way.
    def route(state: WorkflowState) -> str:
        return state["outputs"][name]
    return route


def _approval_node(name: str, step: ApprovalStep):
    async def node(state: WorkflowState) -> dict:
        try:
            prompt = render(step.prompt, _context(state))
        except TemplateError as exc:
            raise WorkflowError(name, f"cannot render its prompt: {exc}") from None
        # On resume LangGraph re-enters this node and interrupt() returns the answer.
        answer = interrupt({"kind": "approval", "step": name, "prompt": prompt})
        return {"outputs": {name: decision(name, answer)}}
    return node


def decision(step: str, answer: Any) -> dict[str, Any]:
    """The resumed answer as {"approved": bool, "comment": str}; anything else is refused."""
    if isinstance(answer, bool):
        return {"approved": answer, "comment": ""}
    if isinstance(answer, Mapping) and isinstance(answer.get("approved"), bool):
        comment = answer.get("comment") or ""
        if isinstance(comment, str):
            return {"approved": answer["approved"], "comment": comment}
    raise WorkflowError(step, 'the approval answer must be {"approved": true|false, "comment": "…"}')


def _approval_route(name: str, step: ApprovalStep):
    def route(state: WorkflowState) -> str:
        return step.on_approve if state["outputs"][name]["approved"] else (step.on_reject or END)
    return route


async def _fan_out(state: WorkflowState) -> dict:
    return {}


def _join_node(name: str, step: ParallelStep):
    async def node(state: WorkflowState) -> dict:
        outputs = state["outputs"]
        return {"outputs": {name: {m: outputs.get(m) for m in step.steps}}}
    return node
