"""Who answers a turn of a thread (a message, a regenerate, an edit): the thread's choice "from
now on", or another agent or model for this one turn.

The thread keeps its agent (threads.agent_id) and a model (threads.model; NULL: the agent's own),
changed with PATCH /api/threads/{id} (`choose`, announced as thread.updated): every turn that
names nothing uses them, whichever client sends it (the chat page, /v1, /lg, MCP). A turn may
instead name an agent of the user's own and a model of that agent's provider, for that turn
only. Both are checked in the transaction that writes them, so a refused choice stores nothing."""

from __future__ import annotations

import dataclasses
import sqlite3

from ..bus import events as ev
from ..errors import Refused, invalid, not_found
from ..store import agents as agent_store
from ..store import threads as thread_store


@dataclasses.dataclass(frozen=True)
class Choice:
    agent_id: str | None = None     # None: the thread's agent
    model: str | None = None        # None: the agent's model

    def __bool__(self) -> bool:
        return self.agent_id is not None or self.model is not None


NONE = Choice()


def allowed_models(providers: dict, provider: str) -> tuple[str, ...] | None:
    """The models a provider may be asked for (its configured list); None: not configured;
    an empty tuple: any the provider serves (no list configured)."""
    entry = providers.get(provider)
    return None if entry is None else tuple(entry.get("models") or ())


def unoffered(providers: dict, version: agent_store.AgentVersion, model: str) -> str | None:
    """Why `model` may not answer for an agent at `version` (None: it may): its own model always
    may; another must be on its provider's configured list (any, when the list is empty)."""
    if model == version.model:
        return None
    models = allowed_models(providers, version.provider)
    if models is None:
        return f"the agent's provider {version.provider!r} is not configured"
    if models and model not in models:
        return f"model {model!r} is not offered by {version.provider}; choose one of: {', '.join(models)}"
    return None


def _agent(conn: sqlite3.Connection, owner_id: str, agent_id: str) -> agent_store.Agent:
    agent = agent_store.get_owned(conn, agent_id, owner_id)
    if agent is None:
        raise Refused(404, "agent_not_found", f"no agent {agent_id!r} that you may use: "
                      "choose one of GET /api/agents", details={"pointer": "/agent_id"})
    return agent


def resolve(conn: sqlite3.Connection, owner_id: str, agent: agent_store.Agent, choice: Choice,
            providers: dict, thread_model: str | None = None) -> tuple[agent_store.Agent, str]:
    """The agent and model of the turn: the thread's agent and model (`thread_model`, else the
    agent's), unless the choice names others (another agent answers with its own model unless
    one is named). Refused (404 for an agent that is not the user's, 422 for a model its
    provider does not offer, 409 when the thread's own model is no longer offered) before
    anything is written."""
    if choice.agent_id is not None and choice.agent_id != agent.id:
        agent, thread_model = _agent(conn, owner_id, choice.agent_id), None
    version = agent.current
    if choice.model is not None:
        problem = unoffered(providers, version, choice.model)
        if problem:
            raise invalid("/model", problem)
        return agent, choice.model
    if thread_model is None:
        return agent, version.model
    problem = unoffered(providers, version, thread_model)
    if problem:
        raise Refused(409, "thread_model_unavailable", f"the thread's model: {problem} (PATCH the thread's "
                      "model, or name one for this turn)")
    return agent, thread_model


UNSET = object()   # a field the PATCH does not name


def choose(conn: sqlite3.Connection, owner_id: str, thread_id: str, agent_id, model, providers: dict,
           news: list) -> thread_store.Thread:
    """The thread's agent and model from now on (each UNSET: kept; another agent without a model:
    that agent's own; model None: the agent's own). A change goes into `news` as thread.updated."""
    thread = thread_store.get_owned(conn, thread_id, owner_id)
    if thread is None:
        raise not_found("thread")
    if agent_id is UNSET and model is UNSET:
        return thread
    if agent_id is UNSET:
        agent = agent_store.get_owned(conn, thread.agent_id, owner_id)
        if agent is None:
            raise Refused(409, "agent_deleted", "the thread's agent was deleted: choose another agent_id")
    else:
        agent = _agent(conn, owner_id, agent_id)
    if model is UNSET:
        model = thread.model if agent.id == thread.agent_id else None
    elif model is not None:
        problem = unoffered(providers, agent.current, model)
        if problem:
            raise invalid("/model", problem)
    if (agent.id, model) == (thread.agent_id, thread.model):
        return thread
    changed = thread_store.choose(conn, thread.id, owner_id, agent.id, model)
    news.append(ev.ThreadUpdated(changed.id, changed.agent_id, changed.model))
    return changed
