"""The work of a workflow's agent and tool steps (workflow_run.py drives the graph).

An agent step runs the pinned agent version's own graph (runner/graph.py) on a
fresh message list, with no checkpoints of its own (a step interrupted by a
crash runs again from its start); a tool step calls the tool registry with its
limits.
"""

from __future__ import annotations

import collections
import contextvars
import logging
from typing import Any

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.outputs import LLMResult
from langchain_core.runnables.config import var_child_runnable_config

from ..agents.mcp_tools import is_mcp
from ..agents.tools import ASK_HUMAN, REGISTRY, ToolContext, run_tool
from ..bus import events as ev
from ..store import agents as agent_store
from ..store.runs import Run
from ..workflows.compile import StepError
from ..workflows.definition import AgentStep, Step, ToolStep
from . import context
from . import graph as graphs
from .failures import RunFailure, failure_of
from .kinds import Toolkit

log = logging.getLogger("agentstead.runner.workflows")
GRAPH_CACHE = 64  # compiled graphs and pinned versions kept
CURRENT: contextvars.ContextVar = contextvars.ContextVar("workflow_run")   # the execution a node belongs to

# Provider failures that another attempt cannot fix.
_FINAL_CODES = frozenset({"provider_auth_failed", "model_not_found", "budget_exceeded", "provider_not_configured",
                          "agent_missing"})
ASK_HUMAN_REFUSED = ("error: ask_human is not available inside a workflow step; the workflow's approval steps "
                     "are the way to ask a person")
Usage = tuple[int, int, str | None]   # prompt tokens, completion tokens, the model they go under


def remember(cache: collections.OrderedDict, key, value) -> None:
    """A bounded cache (least recently added goes first)."""
    cache[key] = value
    while len(cache) > GRAPH_CACHE:
        cache.popitem(last=False)


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


class StepRunner:
    def __init__(self, tools: Toolkit):
        self.tools = tools
        self._graphs: collections.OrderedDict[tuple, Any] = collections.OrderedDict()
        self._versions: collections.OrderedDict[tuple[str, int], agent_store.AgentVersion] = \
            collections.OrderedDict()

    async def run(self, run: Run, step: Step, rendered: Any) -> tuple[Any, Usage]:
        """One attempt of an agent or tool step: its output and the tokens it used."""
        if isinstance(step, AgentStep):
            return await self._agent(run, step, rendered)
        return await self._tool(step, rendered), (0, 0, None)

    async def _agent(self, run: Run, step: AgentStep, text: str) -> tuple[str, Usage]:
        number = (run.pins or {}).get(step.agent_id)
        version = await self._version(step.agent_id, number) if number else None
        if version is None:
            raise StepError("the agent version this run uses no longer exists", code="agent_missing", retryable=False)
        provider = self.tools.providers.get(version.provider)
        if provider is None:
            raise StepError(f"no model provider named {version.provider!r} is configured",
                            code="provider_not_configured", retryable=False)
        try:
            await self.tools.check_budget(run)
        except RunFailure as exc:
            raise StepError(exc.message, code=exc.code, retryable=False) from None
        graph = self._graph(version, provider)
        counted = _Usage()
        try:
            # The agent's graph is not a subgraph of the workflow's: it starts from a clean config
            # (no inherited thread, checkpointer or durability) and keeps no checkpoints.
            outer = var_child_runnable_config.set(None)
            try:
                final = await graph.ainvoke({"messages": [HumanMessage(text)]},
                                            {"recursion_limit": version.max_steps * 2 + 1,
                                             "callbacks": [counted, *self.tools.traces.callbacks]})
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

    async def _version(self, agent_id: str, number: int) -> agent_store.AgentVersion | None:
        """A pinned agent version (immutable, so kept once read)."""
        key = (agent_id, number)
        version = self._versions.get(key)
        if version is None:
            version = await self.tools.db.read(agent_store.version, agent_id, number)
            if version is not None:
                remember(self._versions, key, version)
        return version

    def _graph(self, version: agent_store.AgentVersion, provider: dict):
        """The agent version's graph, built once per version and provider and shared by the
        steps and runs that use it; its tool calls find their run through CURRENT."""
        key = graphs.version_key(version, provider)
        graph = self._graphs.get(key)
        if graph is None:
            settings = self.tools.settings
            ctx = ToolContext(allowed_hosts=settings.http_get_allowed_hosts)
            allowed = {n for n in version.tools if n in REGISTRY and n != ASK_HUMAN}
            graph = graphs.for_version(
                version, provider, max_retries=settings.llm_max_retries,
                timeout=settings.llm_timeout_seconds, checkpointer=False,
                context_tokens=context.budget_of(provider, version.model, provider["context_default"]),
                # MCP tools are for chat runs only so far (docs/mcp.md): not shown to a step's model.
                leave_out=frozenset({ASK_HUMAN, *filter(is_mcp, version.tools)}),
                execute_tool=lambda call: self._agent_tool(CURRENT.get().run, call, ctx, allowed))
            remember(self._graphs, key, graph)
        return graph

    async def _agent_tool(self, run: Run, call: dict, ctx: ToolContext, allowed: set[str]) -> ToolMessage:
        """A tool an agent step calls: announced on the run, not journalled (the step is)."""
        call_id, name, args = call["id"], call["name"], call.get("args") or {}
        self.tools.write(run, None, events=[ev.ToolCalled(run.id, None, call_id, name,
                                                          args if isinstance(args, dict) else {})])
        with self.tools.traces.tool(name, call_id) as span:
            if name == ASK_HUMAN:
                ok, output = False, ASK_HUMAN_REFUSED
            elif name not in allowed:
                ok, output = False, f"error: no tool named {name!r} is available to this agent"
            else:
                ok, output = await run_tool(REGISTRY[name], args, ctx, self.tools.settings.tool_timeout_seconds)
            span.outcome(ok)
        self.tools.write(run, None, events=[ev.ToolResult(run.id, None, call_id, name, ok, output)])
        return ToolMessage(output, tool_call_id=call_id, name=name, status="success" if ok else "error")

    async def _tool(self, step: ToolStep, arguments: Any) -> str:
        tool = REGISTRY.get(step.tool)
        if tool is None or tool.run is None:
            raise StepError(f"no tool named {step.tool!r} can run in a workflow", retryable=False)
        ctx = ToolContext(allowed_hosts=self.tools.settings.http_get_allowed_hosts)
        with self.tools.traces.tool(tool.name) as span:
            ok, output = await run_tool(tool, arguments, ctx, self.tools.settings.tool_timeout_seconds)
            span.outcome(ok)
        if not ok:
            raise StepError(output.removeprefix("error: "))
        return output
