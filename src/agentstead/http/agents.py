"""/api/models and /api/agents: parse, authorize, call the service."""

from __future__ import annotations

from aiohttp import web

from ..auth.access import requires
from ..keys import AGENTS
from ..store.agents import Agent
from . import paging
from . import validate as v
from .authn import principal_of
from .bodies import json_body
from .idempotency import Reply, idempotent, recorder

_FIELDS = {"name", "instructions", "provider", "model", "temperature", "tools", "max_steps"}


def agent_json(a: Agent) -> dict:
    c = a.current
    return {"id": a.id, "version": c.version, "name": c.name, "instructions": c.instructions,
            "provider": c.provider, "model": c.model, "temperature": c.temperature, "tools": list(c.tools),
            "max_steps": c.max_steps, "tool_schemas": c.tool_schemas, "created_at": a.created_at,
            "updated_at": a.updated_at}


@requires("read")
async def models(request: web.Request) -> web.Response:
    return web.json_response(await request.app[AGENTS].models(principal_of(request)))


@requires("read")
async def tools(request: web.Request) -> web.Response:
    """The tools the caller may give an agent: built-ins and the MCP tools granted to them."""
    return web.json_response({"tools": request.app[AGENTS].tools(principal_of(request))})


def _agent_body(body, *, create: bool) -> dict:
    body = v.document(body, _FIELDS)
    out = {"name": v.string(body, "name", required=create, min_len=1, max_len=100),
           "instructions": v.string(body, "instructions", max_len=20_000),
           "provider": v.string(body, "provider", min_len=1, max_len=32),
           "model": v.string(body, "model", min_len=1, max_len=200),
           "max_steps": v.integer(body, "max_steps", lo=1, hi=100)}
    out["temperature"] = v.number(body, "temperature", lo=0, hi=2)
    tools = v.string_list(body, "tools")
    out["tools"] = tuple(tools) if tools is not None else None
    return out


@requires("read")
async def list_agents(request: web.Request) -> web.Response:
    size = paging.limit(request)
    rows = await request.app[AGENTS].list(principal_of(request), limit=size, before=request.query.get("before"))
    return paging.page("agents", rows, size, agent_json, lambda a: a.created_at)


def _created(agent: Agent) -> Reply:
    return Reply(201, agent_json(agent))


@requires("write")
@idempotent
async def create_agent(request: web.Request) -> web.Response:
    body = _agent_body(await json_body(request), create=True)
    agent = await request.app[AGENTS].create(principal_of(request), body, recorder(request, _created))
    return _created(agent).response()


@requires("read")
async def get_agent(request: web.Request) -> web.Response:
    return web.json_response(agent_json(await request.app[AGENTS].get(principal_of(request),
                                                                      request.match_info["id"])))


@requires("write")
async def update_agent(request: web.Request) -> web.Response:
    body = _agent_body(await json_body(request), create=False)
    if all(value is None for value in body.values()):
        raise v.fail("", "send at least one field to change")
    agent = await request.app[AGENTS].update(principal_of(request), request.match_info["id"], body)
    return web.json_response(agent_json(agent))


@requires("write")
async def delete_agent(request: web.Request) -> web.Response:
    await request.app[AGENTS].delete(principal_of(request), request.match_info["id"])
    return web.Response(status=204)
