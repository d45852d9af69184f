"""Agentstead's agents, threads, runs and messages in the LangGraph API's shapes
(langgraph_sdk/schema.py: Assistant, Thread, ThreadState, Run; messages as LangChain
serialises them)."""

from __future__ import annotations

from typing import Any

from ..services.compat_langgraph import View
from ..store.agents import Agent
from ..store.runs import Run
from ..store.threads import message_json as stored_json

GRAPH_ID = "agent"
# Agentstead's run statuses as LangGraph's (docs/protocols.md)
RUN_STATUS = {"queued": "pending", "running": "running", "waiting_for_input": "interrupted", "succeeded": "success",
              "failed": "error", "cancelled": "interrupted", "interrupted": "error"}
STATUS_FILTER = {"pending": "queued", "running": "running", "success": "succeeded", "error": "failed",
                 "interrupted": "waiting_for_input", "timeout": "failed"}


def assistant_json(a: Agent) -> dict:
    c = a.current
    return {"assistant_id": a.id, "graph_id": GRAPH_ID, "name": c.name, "description": c.instructions or None,
            "version": c.version, "config": {}, "context": {},
            "metadata": {"provider": c.provider, "model": c.model, "tools": list(c.tools), "created_by": "agentstead"},
            "created_at": a.created_at, "updated_at": a.updated_at}


def message_json(m: dict) -> dict:
    """A stored message (store/threads.py: message_json) as LangChain's dict of it."""
    base = {"content": m["content"], "additional_kwargs": {}, "response_metadata": {}, "name": None, "id": m["id"]}
    if m["role"] == "user":
        return {**base, "type": "human", "example": False}
    if m["role"] == "tool":
        return {**base, "type": "tool", "tool_call_id": m["tool_call_id"] or "", "status": "success",
                "artifact": None}
    calls = [{"id": c["id"], "name": c["name"], "args": c["args"], "type": "tool_call"} for c in m["tool_calls"] or []]
    return {**base, "type": "ai", "example": False, "tool_calls": calls, "invalid_tool_calls": [],
            "usage_metadata": None}


def interrupts(run: Run | None) -> list[dict]:
    """The ask_human question a run waits on, as LangGraph's Interrupt."""
    if run is None or run.status != "waiting_for_input":
        return []
    return [{"value": {"question": run.waiting_prompt or ""}, "id": run.id}]


def values(v: View, messages: list[dict] | None = None) -> dict:
    """The thread's state values (with __interrupt__ when it waits, as `wait` and `join` answer)."""
    out: dict[str, Any] = {"messages": messages if messages is not None else
                           [message_json(_stored(m)) for m in v.messages]}
    if interrupts(v.latest):
        out["__interrupt__"] = interrupts(v.latest)
    return out


def _stored(m) -> dict:
    return stored_json(m)


def thread_json(v: View) -> dict:
    found = interrupts(v.latest)
    state = values(v)
    state.pop("__interrupt__", None)
    return {"thread_id": v.id, "created_at": v.created_at, "updated_at": v.updated_at, "metadata": v.metadata,
            "status": v.status, "values": state if v.agent_id else {},
            "interrupts": {v.latest.id: found} if found else {}}


def _checkpoint(thread_id: str, checkpoint_id: str | None) -> dict:
    return {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": checkpoint_id, "checkpoint_map": None}


def state_json(v: View, upto: int | None = None) -> dict:
    """The thread's state after its first `upto` messages (all when None): a checkpoint per
    message, named by that message's id."""
    msgs = v.messages if upto is None else v.messages[:upto]
    newest = upto is None or upto == len(v.messages)
    found = interrupts(v.latest) if newest else []
    parent = msgs[-2].id if len(msgs) > 1 else None
    return {"values": {"messages": [message_json(_stored(m)) for m in msgs]},
            "next": ["tools"] if found else [],
            "checkpoint": _checkpoint(v.id, msgs[-1].id if msgs else None),
            "metadata": {**v.metadata, "step": len(msgs)},
            "created_at": msgs[-1].created_at if msgs else v.created_at,
            "parent_checkpoint": _checkpoint(v.id, parent) if parent else None,
            "tasks": [{"id": v.latest.id, "name": "tools", "error": None, "interrupts": found, "checkpoint": None,
                       "state": None, "result": None}] if found else [],
            "interrupts": found}


def run_json(r: Run, multitask_strategy: str = "reject") -> dict:
    return {"run_id": r.id, "thread_id": r.thread_id, "assistant_id": r.agent_id, "created_at": r.created_at,
            "updated_at": r.finished_at or r.started_at or r.created_at, "status": RUN_STATUS[r.status],
            "metadata": {}, "multitask_strategy": multitask_strategy, "kwargs": {},
            "cancel_reason": "cancelled" if r.status == "cancelled" else None}


def graph_json() -> dict:
    """Every agent's graph: the model node and the tools node in a loop (runner/graph.py)."""
    nodes = [{"id": "__start__", "type": "schema", "data": "__start__"},
             {"id": "agent", "type": "runnable", "data": {"id": ["agentstead", "agent"], "name": "agent"}},
             {"id": "tools", "type": "runnable", "data": {"id": ["agentstead", "tools"], "name": "tools"}},
             {"id": "__end__", "type": "schema", "data": "__end__"}]
    edges = [{"source": "__start__", "target": "agent"}, {"source": "tools", "target": "agent"},
             {"source": "agent", "target": "tools", "conditional": True},
             {"source": "agent", "target": "__end__", "conditional": True}]
    return {"nodes": nodes, "edges": edges}


MESSAGES_SCHEMA = {"type": "object", "properties": {"messages": {"type": "array", "items": {"type": "object"}}},
                   "required": ["messages"]}


def schemas_json() -> dict:
    return {"graph_id": GRAPH_ID, "input_schema": MESSAGES_SCHEMA, "output_schema": MESSAGES_SCHEMA,
            "state_schema": MESSAGES_SCHEMA, "config_schema": None, "context_schema": None}
