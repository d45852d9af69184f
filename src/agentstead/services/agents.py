"""Agents: the rules. Every edit is a new version; every query is scoped by owner."""

from __future__ import annotations

import dataclasses
import sqlite3
import uuid
from typing import Any, Callable

import aiohttp

from ..agents.mcp_tools import McpTools, is_mcp
from ..agents.tools import REGISTRY
from ..auth.access import Principal
from ..errors import found, invalid
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
    agent = found(agent_store.get_owned(conn, agent_id, owner_id), "agent")
    return agent_store.new_version(conn, agent, fields(dataclasses.asdict(agent.current)))


def _delete(conn: sqlite3.Connection, agent_id: str, owner_id: str) -> None:
    found(agent_store.get_owned(conn, agent_id, owner_id), "agent")
    agent_store.soft_delete(conn, agent_id)


async def _provider_models(p: dict) -> dict:
    """What a provider says it serves (GET {base_url}/models, 3 s), beside what is configured."""
    entry = {"provider": p["name"], "base_url": p["base_url"], "configured_models": list(p["models"]),
             "default_model": p["default_model"], "available_models": None, "reachable": None}
    try:
        headers = {"Authorization": f"Bearer {p['api_key']}"} if p["api_key"] else {}
        async with aiohttp.ClientSession() as http:
            async with http.get(p["base_url"] + "/models", headers=headers,
                                timeout=aiohttp.ClientTimeout(total=3)) as resp:
                entry["reachable"] = resp.status == 200
                if resp.status == 200:
                    body = await resp.json(content_type=None)
                    entry["available_models"] = sorted(m.get("id", "") for m in body.get("data", []))
    except (aiohttp.ClientError, TimeoutError, ValueError):
        entry["reachable"] = False
    return entry


class AgentService:
    def __init__(self, db: Database, settings: Settings, mcp: McpTools | None = None):
        self.db = db
        self.mcp = mcp or McpTools((), settings.mcp_refresh_seconds)
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

    def _fields(self, p: Principal, body: dict, base: dict) -> dict:
        fields = {**base, **{k: v for k, v in body.items() if v is not None}}
        unknown = [t for t in fields["tools"] if t not in REGISTRY and not is_mcp(t)]
        if unknown:
            raise invalid("/tools", f"unknown tool {unknown[0]!r}; available: {', '.join(sorted(REGISTRY))} "
                          "and the MCP tools listed by GET /api/models")
        fields["tool_schemas"] = self._mcp_schemas(p, fields["tools"], base.get("tool_schemas") or {},
                                                   "tools" in body and body["tools"] is not None)
        fields["provider"], fields["model"] = self._check_model(body.get("provider") or base.get("provider"),
                                                                body.get("model") or base.get("model"))
        fields["tools"] = tuple(dict.fromkeys(fields["tools"]))
        return fields

    async def models(self, p: Principal) -> dict:
        """The configured providers, each asked what it serves, and the tools this user may give an agent."""
        return {"providers": [await _provider_models(pr) for pr in self.providers.values()],
                "tools": self.tools(p)}

    def _mcp_schemas(self, p: Principal, tools: tuple[str, ...], before: dict, chosen: bool) -> dict:
        """What the new version records of its MCP tools: each one's description and schema as
        cached now. A tool the agent had already keeps its recorded schema when the server
        cannot be asked, unless the user chose the tools again (then every one is checked)."""
        out = {}
        for name in (t for t in tools if is_mcp(t)):
            problem = self.mcp.why_not(name, p.role, p.email)
            if problem is None:
                out[name] = self.mcp.find(name)[1].snapshot()
            elif name in before and not chosen and "unreachable" in problem:
                out[name] = before[name]
            else:
                raise invalid("/tools", f"{name}: {problem}")
        return out

    async def create(self, p: Principal, body: dict, record: Record | None = None) -> Agent:
        fields = self._fields(p, body, {**DEFAULTS, "provider": None, "model": None})
        return await self.db.write(_create, str(uuid.uuid4()), p.user_id, fields, record)

    async def get(self, p: Principal, agent_id: str) -> Agent:
        agent = found(await self.db.read(agent_store.get_owned, agent_id, p.user_id), "agent")
        return agent

    async def update(self, p: Principal, agent_id: str, body: dict) -> Agent:
        """A new version: the given fields over the current version's (checked like a new agent)."""
        return await self.db.write(_update, agent_id, p.user_id, lambda base: self._fields(p, body, base))

    async def delete(self, p: Principal, agent_id: str) -> None:
        await self.db.write(_delete, agent_id, p.user_id)

    def tools(self, p: Principal) -> list[dict]:
        """The tools this user may give an agent: the built-ins, then the MCP tools of the servers
        granted to them (`server.tool`; their descriptions are the server's, untrusted text)."""
        return [{"name": t.name, "description": t.description, "parameters": t.parameters, "source": "builtin"}
                for t in REGISTRY.values()] + \
               [{"name": t.name, "description": t.description, "parameters": t.parameters, "source": "mcp",
                 "server": t.server} for t in self.mcp.available(p.role, p.email)]

    async def list(self, p: Principal, *, limit: int, before: str | None) -> list[Agent]:
        return await self.db.read(agent_store.list_owned, p.user_id, limit=limit, before=before)
