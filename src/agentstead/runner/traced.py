"""Spans of runs, model calls and tool calls (OpenTelemetry's GenAI semantic conventions).

A run's span is a child of the request that submitted it (its context is kept here while
the run waits in the queue), so one trace reads: POST → run → chat, execute_tool, chat.
The run outlives that request, as an asynchronous consumer outlives its producer: the
span simply ends later. A resumed run's span is a child of the resume request; a run
picked up after a restart starts a trace of its own. Model calls are timed by a LangChain
callback the kinds add to their graph's config; tool calls by `Traces.tool` around the
registry's `run_tool`. No prompt, reply, tool argument or tool output is recorded: model,
tokens, finish reasons, timings, names, ids and outcomes only (docs/monitoring.md, Tracing).

With tracing off (`tracer` None) every hook here is a no-op and no callback is added.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from typing import Any, Iterator
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from .failures import RunFailure, failure_of

ORIGINS_KEPT = 4096   # submitting contexts of queued runs kept (a run cancelled while queued never claims its own)


class RunSpan:
    """The span of one run; `ended` records how the run ended."""
    __slots__ = ("span",)

    def __init__(self, span: trace.Span | None) -> None:
        self.span = span

    def ended(self, status: str, failure: RunFailure | None = None) -> None:
        if self.span is None:
            return
        self.span.set_attribute("agentstead.run.status", status)
        if failure is not None:
            self.span.set_attributes({"agentstead.run.error_code": failure.code, "error.type": failure.code})
            self.span.set_status(StatusCode.ERROR, failure.message)


class ToolSpan:
    """The span of one tool call; `outcome` records whether it worked."""
    __slots__ = ("span",)

    def __init__(self, span: trace.Span | None) -> None:
        self.span = span

    def outcome(self, ok: bool) -> None:
        if self.span is None:
            return
        self.span.set_attribute("agentstead.tool.ok", ok)
        if not ok:   # the tool's error text is output the model sees: not recorded
            self.span.set_attribute("error.type", "tool_error")
            self.span.set_status(StatusCode.ERROR)


_NO_RUN, _NO_TOOL = RunSpan(None), ToolSpan(None)


class Traces:
    """What the runner and the kinds of run use to trace; all no-ops when `tracer` is None."""

    def __init__(self, tracer: trace.Tracer | None = None) -> None:
        self.tracer = tracer
        self.origins: collections.OrderedDict[str, otel_context.Context] = collections.OrderedDict()
        self.callbacks: list = [ModelSpans(tracer)] if tracer is not None else []

    def submitted(self, run_id: str) -> None:
        """Keep the submitting request's context for the run's span (the run may start later)."""
        if self.tracer is None:
            return
        self.origins[run_id] = otel_context.get_current()
        while len(self.origins) > ORIGINS_KEPT:
            self.origins.popitem(last=False)

    @contextlib.contextmanager
    def run(self, run, *, resumed: bool) -> Iterator[RunSpan]:
        """The current span while a run's task works: its model and tool calls are its children."""
        if self.tracer is None:
            yield _NO_RUN
            return
        attributes: dict[str, Any] = {"agentstead.run.id": run.id, "agentstead.run.kind": run.kind,
                                      "agentstead.run.resumed": resumed}
        if run.kind == "chat":
            attributes.update({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.id": run.agent_id or "",
                               "agentstead.agent.version": run.agent_version or 0,
                               "gen_ai.request.model": run.model or "", "gen_ai.conversation.id": run.thread_id or ""})
        else:
            attributes.update({"agentstead.workflow.id": run.workflow_id or "",
                               "agentstead.workflow.version": run.workflow_version or 0})
        with self.tracer.start_as_current_span(f"run {run.kind}", context=self.origins.pop(run.id, None),
                                               attributes=attributes, record_exception=False,
                                               set_status_on_exception=False) as span:
            yield RunSpan(span)

    @contextlib.contextmanager
    def tool(self, name: str, call_id: str | None = None) -> Iterator[ToolSpan]:
        """A tool call's span (execute_tool)."""
        if self.tracer is None:
            yield _NO_TOOL
            return
        attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name, "gen_ai.tool.type": "function"}
        if call_id:
            attributes["gen_ai.tool.call.id"] = call_id
        with self.tracer.start_as_current_span(f"execute_tool {name}", attributes=attributes, record_exception=False,
                                               set_status_on_exception=False) as span:
            yield ToolSpan(span)


class ModelSpans(BaseCallbackHandler):
    """A client span per model call (gen_ai.operation.name "chat"), from LangChain's callbacks.

    Synchronous and inline: LangChain calls it directly in the model's task, once per token
    too (only the first token is noted), with no executor hop and no coroutine per token.
    Its parent is the current span where the call starts: the run's."""

    run_inline = True
    raise_error = False
    ignore_chain = ignore_agent = ignore_retriever = ignore_retry = ignore_custom_event = True

    def __init__(self, tracer: trace.Tracer) -> None:
        super().__init__()
        self.tracer = tracer
        self.open: dict[UUID, list] = {}   # LangChain's run id -> [span, start (ns), first token (ns) or 0]

    def on_chat_model_start(self, serialized: dict, messages: list, *, run_id: UUID, metadata: dict | None = None,
                            **kwargs: Any) -> None:
        meta = metadata or {}
        params = kwargs.get("invocation_params") or {}
        model = str(params.get("model") or params.get("model_name") or meta.get("ls_model_name") or "")
        attributes: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                                      "gen_ai.system": "openai", "gen_ai.request.model": model}
        if isinstance(params.get("temperature"), (int, float)):
            attributes["gen_ai.request.temperature"] = float(params["temperature"])
        if params.get("tools"):
            attributes["agentstead.tools_offered"] = len(params["tools"])
        span = self.tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes)
        self.open[run_id] = [span, time.monotonic_ns(), 0]

    def on_llm_new_token(self, token: str, *, run_id: UUID, **kwargs: Any) -> None:
        call = self.open.get(run_id)
        if call is not None and not call[2]:
            call[2] = time.monotonic_ns()
            call[0].add_event("gen_ai.first_token")

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        call = self.open.pop(run_id, None)
        if call is None:
            return
        span, start, first = call
        generation = response.generations[0][0] if response.generations and response.generations[0] else None
        info = (generation.generation_info if generation is not None else None) or {}
        message = getattr(generation, "message", None)
        usage = getattr(message, "usage_metadata", None) or {}
        attributes: dict[str, Any] = {"gen_ai.usage.input_tokens": usage.get("input_tokens", 0),
                                      "gen_ai.usage.output_tokens": usage.get("output_tokens", 0)}
        if info.get("finish_reason"):
            attributes["gen_ai.response.finish_reasons"] = [str(info["finish_reason"])]
        if info.get("model_name"):
            attributes["gen_ai.response.model"] = str(info["model_name"])
        if first:
            attributes["gen_ai.response.time_to_first_chunk"] = (first - start) / 1e9
        calls = getattr(message, "tool_calls", None)
        if calls:
            attributes["agentstead.tool_calls"] = len(calls)
        span.set_attributes(attributes)
        span.end()

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        call = self.open.pop(run_id, None)
        if call is None:
            return
        span = call[0]
        if isinstance(error, asyncio.CancelledError):   # the run was cancelled or timed out: not the model's failure
            span.set_attribute("error.type", "cancelled")
        else:
            failure = failure_of(error)
            status = getattr(error, "status_code", None)   # the provider's HTTP status, else the error's class
            span.set_attributes({"error.type": str(status) if isinstance(status, int) else type(error).__qualname__,
                                 "agentstead.error_code": failure.code})
            span.set_status(StatusCode.ERROR, failure.message)
        span.end()
