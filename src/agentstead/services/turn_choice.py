"""Another agent or model for one turn of a thread (a message, a regenerate, an edit).

A turn may name an agent of the user's own (any of theirs, not only the thread's) and a model
of that agent's provider; the run then uses that agent's current version with that model.
The thread keeps its agent: the choice is the turn's (the chat page repeats it on every turn
when the user keeps it "from now on"). Checked in the transaction that queues the run, so a
refused choice stores nothing."""

from __future__ import annotations

import dataclasses
import sqlite3

from ..errors import Refused, invalid
from ..store import agents as agent_store


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


def resolve(conn: sqlite3.Connection, owner_id: str, agent: agent_store.Agent, choice: Choice,
            providers: dict) -> tuple[agent_store.Agent, str]:
    """The agent and model of the turn: the thread's agent and its model, unless the choice
    names others. Refused (404 for an agent that is not the user's, 422 for a model its
    provider does not offer) before anything is written."""
    if choice.agent_id is not None and choice.agent_id != agent.id:
        other = agent_store.get_owned(conn, choice.agent_id, owner_id)
        if other is None:
            raise Refused(404, "agent_not_found", f"no agent {choice.agent_id!r} that you may use: "
                          "choose one of GET /api/agents", details={"pointer": "/agent_id"})
        agent = other
    version = agent.current
    if choice.model is None or choice.model == version.model:
        return agent, version.model
    models = allowed_models(providers, version.provider)
    if models is None:
        raise invalid("/model", f"the agent's provider {version.provider!r} is not configured")
    if models and choice.model not in models:
        raise invalid("/model", f"model {choice.model!r} is not offered by {version.provider}; "
                      f"choose one of: {', '.join(models)}")
    return agent, choice.model
