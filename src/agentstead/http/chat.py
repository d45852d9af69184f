"""/api/models, /api/agents, /api/threads, /api/runs, /api/usage: parse, authorize, call the service."""

from __future__ import annotations

import dataclasses
import datetime as dt

import aiohttp
from aiohttp import web

from ..agents.tools import REGISTRY
from ..auth.access import requires
from ..keys import CHAT, DB, SETTINGS
from ..runner.runner import message_json
from ..services.chat import ChatError
from ..store import runs as run_store
from ..store import threads as thread_store
from ..store.agents import Agent
from ..store.threads import Thread
from . import validate as v
from .authn import principal_of
from .bodies import json_body
from .errors import ApiError
from .idempotency import Reply, idempotent, recorder


def _error(exc: ChatError) -> ApiError:
    details = {"errors": [{"pointer": exc.pointer, "message": exc.message}]} if exc.pointer else None
    message = f"{exc.pointer}: {exc.message}" if exc.pointer else exc.message
    return ApiError(exc.status, exc.code, message, details=details)


def agent_json(a: Agent) -> dict:
    c = a.current
    return {"id": a.id, "version": c.version, "name": c.name, "instructions": c.instructions,
            "provider": c.provider, "model": c.model, "temperature": c.temperature, "tools": list(c.tools),
            "max_steps": c.max_steps, "created_at": a.created_at, "updated_at": a.updated_at}


def thread_json(t: Thread) -> dict:
    return {"id": t.id, "agent_id": t.agent_id, "title": t.title, "created_at": t.created_at,
            "updated_at": t.updated_at}


def run_json(r: run_store.Run) -> dict:
    d = dataclasses.asdict(r)
    d.pop("owner_id")
    d["pinned_agents"] = d.pop("pins")
    d["error"] = {"code": d.pop("error_code"), "message": d.pop("error_message")} if r.error_code else None
    return d


def step_json(s: run_store.RunStep) -> dict:
    d = dataclasses.asdict(s)
    d.pop("run_id")
    return d


# ---- models ------------------------------------------------------------------

@requires("read")
async def models(request: web.Request) -> web.Response:
    out = []
    for p in request.app[SETTINGS].llm_providers:
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
        out.append(entry)
    return web.json_response({"providers": out, "tools": [
        {"name": t.name, "description": t.description, "parameters": t.parameters} for t in REGISTRY.values()]})


# ---- agents -------------------------------------------------------------------

_AGENT_FIELDS = {"name", "instructions", "provider", "model", "temperature", "tools", "max_steps"}


def _agent_body(body, *, create: bool) -> dict:
    body = v.document(body, _AGENT_FIELDS)
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
    limit = v.query_int(request.query.get("limit"), "limit", default=50, lo=1, hi=200)
    rows = await request.app[CHAT].list_agents(principal_of(request), limit=limit, before=request.query.get("before"))
    return web.json_response({"agents": [agent_json(a) for a in rows],
                              "next": rows[-1].created_at if len(rows) == limit else None})


def _created_agent(agent: Agent) -> Reply:
    return Reply(201, agent_json(agent))


@requires("write")
@idempotent
async def create_agent(request: web.Request) -> web.Response:
    body = _agent_body(await json_body(request), create=True)
    try:
        agent = await request.app[CHAT].create_agent(principal_of(request), body, recorder(request, _created_agent))
    except ChatError as exc:
        raise _error(exc) from None
    return _created_agent(agent).response()


@requires("read")
async def get_agent(request: web.Request) -> web.Response:
    try:
        return web.json_response(agent_json(await request.app[CHAT].get_agent(principal_of(request),
                                                                              request.match_info["id"])))
    except ChatError as exc:
        raise _error(exc) from None


@requires("write")
async def update_agent(request: web.Request) -> web.Response:
    body = _agent_body(await json_body(request), create=False)
    if all(value is None for value in body.values()):
        raise v.fail("", "send at least one field to change")
    try:
        agent = await request.app[CHAT].update_agent(principal_of(request), request.match_info["id"], body)
    except ChatError as exc:
        raise _error(exc) from None
    return web.json_response(agent_json(agent))


@requires("write")
async def delete_agent(request: web.Request) -> web.Response:
    try:
        await request.app[CHAT].delete_agent(principal_of(request), request.match_info["id"])
    except ChatError as exc:
        raise _error(exc) from None
    return web.Response(status=204)


# ---- threads --------------------------------------------------------------------

@requires("read")
async def list_threads(request: web.Request) -> web.Response:
    limit = v.query_int(request.query.get("limit"), "limit", default=50, lo=1, hi=200)
    rows = await thread_store.list_owned(request.app[DB], principal_of(request).user_id, limit=limit,
                                         before=request.query.get("before"))
    return web.json_response({"threads": [thread_json(t) for t in rows],
                              "next": rows[-1].updated_at if len(rows) == limit else None})


def _created_thread(thread: Thread) -> Reply:
    return Reply(201, thread_json(thread))


@requires("write")
@idempotent
async def create_thread(request: web.Request) -> web.Response:
    body = v.document(await json_body(request), {"agent_id", "title"})
    agent_id = v.string(body, "agent_id", required=True, min_len=1, max_len=64)
    title = v.string(body, "title", max_len=200) or "New conversation"
    try:
        thread = await request.app[CHAT].create_thread(principal_of(request), agent_id, title,
                                                       recorder(request, _created_thread))
    except ChatError as exc:
        raise _error(exc) from None
    return _created_thread(thread).response()


@requires("read")
async def get_thread(request: web.Request) -> web.Response:
    try:
        thread = await request.app[CHAT].get_thread(principal_of(request), request.match_info["id"])
    except ChatError as exc:
        raise _error(exc) from None
    q = request.query
    after = v.query_int(q.get("after"), "after", default=-1, lo=0, hi=2**62)   # -1: not given
    before = v.query_int(q.get("before"), "before", default=-1, lo=1, hi=2**62)
    after, before = (None if after < 0 else after), (None if before < 0 else before)
    limit = v.query_int(q.get("limit"), "limit", default=200, lo=1, hi=1000)
    rows = await thread_store.page(request.app[DB], thread.id, after_seq=after, before_seq=before, limit=limit)
    full = len(rows) == limit
    if after is not None:   # paging forward from a seq (within the window up to `before`, when given)
        newer, older = full, bool(rows) and after > 0
    else:                   # the newest page, or the page before a seq
        newer, older = before is not None and bool(rows), full
    return web.json_response({**thread_json(thread), "messages": [message_json(m) for m in rows],
                              "next": rows[-1].seq if newer else None, "prev": rows[0].seq if older else None})


@requires("write")
async def rename_thread(request: web.Request) -> web.Response:
    body = v.document(await json_body(request), {"title"})
    title = v.string(body, "title", required=True, min_len=1, max_len=200)
    try:
        thread = await request.app[CHAT].rename_thread(principal_of(request), request.match_info["id"], title)
    except ChatError as exc:
        raise _error(exc) from None
    return web.json_response(thread_json(thread))


@requires("write")
async def delete_thread(request: web.Request) -> web.Response:
    try:
        await request.app[CHAT].delete_thread(principal_of(request), request.match_info["id"])
    except ChatError as exc:
        raise _error(exc) from None
    return web.Response(status=204)


def _posted(run: run_store.Run) -> Reply:
    return Reply(202, run_json(run), {"Location": f"/api/runs/{run.id}"})


@requires("write")
@idempotent
async def post_message(request: web.Request) -> web.Response:
    body = v.document(await json_body(request), {"content"})
    content = v.string(body, "content", required=True, min_len=1, max_len=100_000)
    try:
        run = await request.app[CHAT].post_message(principal_of(request), request.match_info["id"], content,
                                                   recorder(request, _posted))
    except ChatError as exc:
        raise _error(exc) from None
    return _posted(run).response()


# ---- runs ---------------------------------------------------------------------------

@requires("read")
async def list_runs(request: web.Request) -> web.Response:
    q = request.query
    status = q.get("status")
    if status is not None and status not in run_store.ACTIVE + run_store.FINISHED + ("interrupted",):
        raise ApiError(400, "bad_request", "unknown status filter")
    kind = q.get("kind")
    if kind is not None and kind not in ("chat", "workflow"):
        raise ApiError(400, "bad_request", "unknown kind filter; use chat or workflow")
    limit = v.query_int(q.get("limit"), "limit", default=50, lo=1, hi=200)
    rows = await run_store.list_owned(request.app[DB], principal_of(request).user_id, status=status,
                                      agent_id=q.get("agent_id"), thread_id=q.get("thread_id"), limit=limit,
                                      before=q.get("before"), kind=kind, workflow_id=q.get("workflow_id"))
    return web.json_response({"runs": [run_json(r) for r in rows],
                              "next": rows[-1].created_at if len(rows) == limit else None})


@requires("read")
async def get_run(request: web.Request) -> web.Response:
    try:
        run = await request.app[CHAT].get_run(principal_of(request), request.match_info["id"])
    except ChatError as exc:
        raise _error(exc) from None
    steps = await run_store.steps(request.app[DB], run.id) if run.kind == "workflow" else []
    return web.json_response({**run_json(run), "steps": [step_json(s) for s in steps]})


@requires("write")
async def cancel_run(request: web.Request) -> web.Response:
    try:
        run = await request.app[CHAT].cancel_run(principal_of(request), request.match_info["id"])
    except ChatError as exc:
        raise _error(exc) from None
    return web.json_response(run_json(run))


@requires("write")
async def resume_run(request: web.Request) -> web.Response:
    answer = None
    if request.can_read_body:
        body = v.document(await json_body(request), {"answer"})
        if isinstance(body.get("answer"), dict):
            answer = body["answer"]  # a workflow approval: the service checks its fields
        else:
            answer = v.string(body, "answer", max_len=20_000)
    try:
        run = await request.app[CHAT].resume_run(principal_of(request), request.match_info["id"], answer)
    except ChatError as exc:
        raise _error(exc) from None
    return web.json_response(run_json(run), status=202)


# ---- usage ----------------------------------------------------------------------

def _since(request: web.Request) -> str:
    days = v.query_int(request.query.get("days"), "days", default=30, lo=1, hi=366)
    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days - 1)).strftime("%Y-%m-%d")


@requires("read")
async def usage(request: web.Request) -> web.Response:
    rows = await run_store.usage(request.app[DB], principal_of(request).user_id, since=_since(request))
    for row in rows:
        row.pop("user_id")
    return web.json_response({"usage": rows})


@requires("admin")
async def admin_usage(request: web.Request) -> web.Response:
    return web.json_response({"usage": await run_store.usage(request.app[DB], None, since=_since(request))})
