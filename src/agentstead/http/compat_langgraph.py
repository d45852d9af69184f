"""The LangGraph API under /lg (Agent Protocol subset): assistants and threads. Thin
handlers over services/compat_langgraph.py; runs are in compat_langgraph_runs.py.
What is not supported answers a clear 4xx (docs/protocols.md lists it)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..auth.access import public, requires
from ..errors import Refused, invalid
from ..keys import BUILD, LANGGRAPH
from . import compat_langgraph_shapes as shapes
from . import validate as v
from .authn import principal_of
from .bodies import json_body


async def body_of(request: web.Request, allowed: set[str]) -> dict:
    """The JSON object of a request (an empty body is {}); unknown fields are refused."""
    body = await json_body(request) if request.can_read_body else {}
    return v.document({} if body is None else body, allowed,
                      "is not supported by Agentstead's LangGraph API (docs/protocols.md)")


def page(body: dict, default: int = 10) -> tuple[int, int]:
    limit, offset = body.get("limit", default), body.get("offset", 0)
    if not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise invalid("/limit", "must be an integer from 1 to 1000")
    if not isinstance(offset, int) or not 0 <= offset <= 100_000:
        raise invalid("/offset", "must be an integer from 0")
    return limit, offset


def obj(body: dict, key: str) -> dict:
    value = body.get(key) or {}
    if not isinstance(value, dict):
        raise invalid(f"/{key}", "must be an object")
    return value


def unsupported(what: str) -> Refused:
    return Refused(422, "unsupported", f"{what} is not supported by Agentstead's LangGraph API (docs/protocols.md)")


@public
async def info(request: web.Request) -> web.Response:
    """What UIs on the LangGraph SDK ask first (agent-chat-ui: is the server there?)."""
    return web.json_response({"version": request.app[BUILD].version, "server": "agentstead",
                              "flags": {"assistants": True, "crons": False, "langsmith": False,
                                        "strict_resume": False}})


# ---- assistants --------------------------------------------------------------------

@requires("read")
async def search_assistants(request: web.Request) -> web.Response:
    body = await body_of(request, {"metadata", "graph_id", "name", "limit", "offset", "sort_by", "sort_order",
                                   "select", "description"})
    limit, offset = page(body)
    if body.get("graph_id") not in (None, shapes.GRAPH_ID) or obj(body, "metadata"):
        return web.json_response([])
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise invalid("/name", "must be a string")
    agents = await request.app[LANGGRAPH].assistants(principal_of(request), name=name, limit=limit, offset=offset)
    return web.json_response([shapes.assistant_json(a) for a in agents[:limit]])


@requires("read")
async def get_assistant(request: web.Request) -> web.Response:
    agent = await request.app[LANGGRAPH].assistant(principal_of(request), request.match_info["assistant_id"])
    return web.json_response(shapes.assistant_json(agent))


def _of_an_assistant(shape):
    """A handler answering `shape()` (the same for every assistant) once the caller's assistant is found."""
    @requires("read")
    async def handler(request: web.Request) -> web.Response:
        await request.app[LANGGRAPH].assistant(principal_of(request), request.match_info["assistant_id"])
        return web.json_response(shape())
    return handler


assistant_graph = _of_an_assistant(shapes.graph_json)
assistant_schemas = _of_an_assistant(shapes.schemas_json)


@requires("read")
async def not_supported(request: web.Request) -> web.Response:
    """Routes of the LangGraph API that Agentstead does not serve, answered plainly."""
    raise unsupported(f"{request.method} {request.path.removeprefix('/lg')}")


# ---- threads -----------------------------------------------------------------------

@requires("write")
async def create_thread(request: web.Request) -> web.Response:
    body = await body_of(request, {"metadata", "thread_id", "if_exists", "supersteps", "graph_id", "ttl"})
    if body.get("supersteps") or body.get("ttl"):
        raise unsupported("supersteps" if body.get("supersteps") else "ttl")
    thread_id = body.get("thread_id")
    if thread_id is not None and (not isinstance(thread_id, str) or not 1 <= len(thread_id) <= 64):
        raise invalid("/thread_id", "must be a string of 1 to 64 characters")
    if_exists = body.get("if_exists") or "raise"
    if if_exists not in ("raise", "do_nothing"):
        raise invalid("/if_exists", "must be raise or do_nothing")
    view = await request.app[LANGGRAPH].create_thread(principal_of(request), thread_id, obj(body, "metadata"),
                                                      if_exists)
    return web.json_response(shapes.thread_json(view))


@requires("read")
async def get_thread(request: web.Request) -> web.Response:
    view = await request.app[LANGGRAPH].thread(principal_of(request), request.match_info["thread_id"])
    return web.json_response(shapes.thread_json(view))


@requires("write")
async def update_thread(request: web.Request) -> web.Response:
    body = await body_of(request, {"metadata", "ttl"})
    if body.get("ttl"):
        raise unsupported("ttl")
    view = await request.app[LANGGRAPH].update_thread(principal_of(request), request.match_info["thread_id"],
                                                      obj(body, "metadata"))
    return web.json_response(shapes.thread_json(view))


@requires("write")
async def delete_thread(request: web.Request) -> web.Response:
    await request.app[LANGGRAPH].delete_thread(principal_of(request), request.match_info["thread_id"])
    return web.Response(status=204)


@requires("read")
async def search_threads(request: web.Request) -> web.Response:
    body = await body_of(request, {"metadata", "values", "ids", "status", "limit", "offset", "sort_by",
                                   "sort_order", "select", "extract"})
    if body.get("values") or body.get("extract"):
        raise unsupported("values" if body.get("values") else "extract")
    limit, offset = page(body)
    status = body.get("status")
    if status not in (None, "idle", "busy", "interrupted", "error"):
        raise invalid("/status", "must be idle, busy, interrupted or error")
    views = await request.app[LANGGRAPH].search(principal_of(request), metadata=obj(body, "metadata"),
                                                status=status, limit=limit, offset=offset)
    ids = body.get("ids")
    if ids is not None:
        views = [v for v in views if v.id in ids]
    return web.json_response([shapes.thread_json(v) for v in views])


@requires("read")
async def thread_state(request: web.Request) -> web.Response:
    view = await request.app[LANGGRAPH].thread(principal_of(request), request.match_info["thread_id"])
    wanted = request.match_info.get("checkpoint_id")
    return web.json_response(shapes.state_json(view, _upto(view, wanted)))


def _upto(view, checkpoint_id: Any) -> int | None:
    """How many of the thread's messages a checkpoint (a message id) covers."""
    if checkpoint_id is None:
        return None
    for i, m in enumerate(view.messages):
        if m.id == checkpoint_id:
            return i + 1
    raise Refused(404, "not_found", "no such checkpoint in the thread's newest messages")


@requires("read")
async def thread_history(request: web.Request) -> web.Response:
    body = await body_of(request, {"limit", "before", "metadata", "checkpoint"})
    limit, _ = page(body)
    view = await request.app[LANGGRAPH].thread(principal_of(request), request.match_info["thread_id"])
    before = obj(body, "before").get("checkpoint_id")
    end = (_upto(view, before) - 1) if before else len(view.messages)
    states = [shapes.state_json(view, None if n == len(view.messages) else n) for n in range(end, 0, -1)]
    return web.json_response(states[:limit])
