"""Agents: the rules. Every edit is a new version; every query is scoped by owner."""

from __future__ import annotations

import dataclasses
import sqlite3
import uuid
from typing import Any, Callable

from ..agents.tools import REGISTRY
from ..auth.access import Principal
from ..errors import invalid, not_found
from ..settings import Settings
from ..store import agents as agent_store
from ..store.agents import Agent
from ..store.db import Database

# Called inside a change's transaction with its result: stores the request's Idempotency-Key
# and response (http/idempotency.py).
Record = Callable[[sqlite3.Connection, Any], None]
DEFAULTS = {"instructions": "", "temperature": 0.7, "tools": (), "max_steps": 10}


def _create(conn: sqlite3.Connection, agent_id: str, owner_id: str, fields: dict, record: Record | None) -> Agent:
    agent = agent_store.create(conn, agent_id, owner_id, fields)
    if record is not None:
        record(conn, agent)
    return agent


def _update(conn: sqlite3.Connection, agent_id: str, owner_id: str, fields: Callable[[dict], dict]) -> Agent:
    agent = agent_store.get_owned(conn, agent_id, owner_id)
    if agent is None:
        raise not_found("agent")
    return agent_store.new_version(conn, agent, fields(dataclasses.asdict(agent.current)))


def _delete(conn: sqlite3.Connection, agent_id: str, owner_id: str) -> None:
    if agent_store.get_owned(conn, agent_id, owner_id) is None:
        raise not_found("agent")
    agent_store.soft_delete(conn, agent_id)


class AgentService:
    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.providers = {p["name"]: p for p in settings.llm_providers}

    def _check_model(self, provider: str | None, model: str | None) -> tuple[str, str]:
        if not self.providers:
            # Agents can be defined before a provider exists; their runs fail with provider_not_configured.
            return provider or "default", model or "default"
        name = provider or next(iter(self.providers))
        chosen = self.providers.get(name)
        if chosen is None:
            raise invalid("/provider", f"unknown provider {name!r}")
        model = model or chosen["default_model"]
        if not model:
            raise invalid("/model", "choose a model")
        if chosen["models"] and model not in chosen["models"]:
            raise invalid("/model", f"model {model!r} is not allowed for {name}; allowed: "
                          f"{', '.join(chosen['models'])}")
        return name, model

    def _fields(self, body: dict, base: dict) -> dict:
        fields = {**base, **{k: v for k, v in body.items() if v is not None}}
        unknown = [t for t in fields["tools"] if t not in REGISTRY]
        if unknown:
            raise invalid("/tools", f"unknown tool {unknown[0]!r}; available: {', '.join(sorted(REGISTRY))}")
        fields["provider"], fields["model"] = self._check_model(body.get("provider") or base.get("provider"),
                                                                body.get("model") or base.get("model"))
        fields["tools"] = tuple(dict.fromkeys(fields["tools"]))
        return fields

    async def create(self, p: Principal, body: dict, record: Record | None = None) -> Agent:
        fields = self._fields(body, {**DEFAULTS, "provider": None, "model": None})
        return await self.db.write(_create, str(uuid.uuid4()), p.user_id, fields, record)

    async def get(self, p: Principal, agent_id: str) -> Agent:
        agent = await self.db.read(agent_store.get_owned, agent_id, p.user_id)
        if agent is None:
            raise not_found("agent")
        return agent

    async def update(self, p: Principal, agent_id: str, body: dict) -> Agent:
        """A new version: the given fields over the current version's (checked like a new agent)."""
        return await self.db.write(_update, agent_id, p.user_id, lambda base: self._fields(body, base))

    async def delete(self, p: Principal, agent_id: str) -> None:
        await self.db.write(_delete, agent_id, p.user_id)

    async def list(self, p: Principal, *, limit: int, before: str | None) -> list[Agent]:
        return await self.db.read(agent_store.list_owned, p.user_id, limit=limit, before=before)
