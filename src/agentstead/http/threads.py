"""/api/threads and their messages: parse, authorize, call the service."""

from __future__ import annotations

from aiohttp import web

from ..auth.access import requires
from ..keys import THREADS
from ..store.runs import Run
from ..store.threads import Thread, message_json
from . import paging
from . import validate as v
from .authn import principal_of
from .bodies import json_body
from .idempotency import Reply, idempotent, recorder
from ..services.threads import DEFAULT_TITLE
from ..services.turn_choice import UNSET, Choice
from .runs import run_json


def thread_json(t: Thread) -> dict:
    return {"id": t.id, "agent_id": t.agent_id, "model": t.model, "title": t.title, "created_at": t.created_at,
            "updated_at": t.updated_at}


@requires("read")
async def list_threads(request: web.Request) -> web.Response:
    size = paging.limit(request)
    rows = await request.app[THREADS].list(principal_of(request), limit=size, before=request.query.get("before"))
    return paging.page("threads", rows, size, thread_json, lambda t: t.updated_at)


def _created(thread: Thread) -> Reply:
    return Reply(201, thread_json(thread))


@requires("write")
@idempotent
async def create_thread(request: web.Request) -> web.Response:
    body = v.document(await json_body(request), {"agent_id", "title"})
    agent_id = v.string(body, "agent_id", required=True, min_len=1, max_len=64)
    title = v.string(body, "title", max_len=200) or DEFAULT_TITLE
    thread = await request.app[THREADS].create(principal_of(request), agent_id, title, recorder(request, _created))
    return _created(thread).response()


def _answered(message: dict, by: dict) -> dict:
    """A message with the agent and model of the run that wrote it (null for the user's)."""
    agent_id, model = by.get(message["run_id"], (None, None))
    return {**message, "agent_id": agent_id, "model": model}


@requires("read")
async def get_thread(request: web.Request) -> web.Response:
    q = request.query
    after = v.query_int(q.get("after"), "after", default=-1, lo=0, hi=2**62)   # -1: not given
    before = v.query_int(q.get("before"), "before", default=-1, lo=1, hi=2**62)
    after, before = (None if after < 0 else after), (None if before < 0 else before)
    limit = v.query_int(q.get("limit"), "limit", default=200, lo=1, hi=1000)
    thread, rows, by = await request.app[THREADS].messages(principal_of(request), request.match_info["id"],
                                                           after=after, before=before, limit=limit)
    full = len(rows) == limit
    if after is not None:   # paging forward from a seq (within the window up to `before`, when given)
        newer, older = full, bool(rows) and after > 0
    else:                   # the newest page, or the page before a seq
        newer, older = before is not None and bool(rows), full
    return web.json_response({**thread_json(thread), "messages": [_answered(message_json(m), by) for m in rows],
                              "next": rows[-1].seq if newer else None, "prev": rows[0].seq if older else None})


@requires("write")
async def update_thread(request: web.Request) -> web.Response:
    """A new title and/or who answers the thread's turns from now on (`agent_id`, `model`; a null
    model: the agent's own). Fields left out are kept; at least one is named."""
    body = v.document(await json_body(request), {"title"} | TURN_FIELDS)
    if not body:
        raise v.fail("/title", "is required when neither agent_id nor model is named")
    title = v.string(body, "title", min_len=1, max_len=200)
    agent_id = v.string(body, "agent_id", min_len=1, max_len=64) if "agent_id" in body else UNSET
    model = UNSET
    if "model" in body:
        model = None if body["model"] is None else v.string(body, "model", min_len=1, max_len=200)
    thread = await request.app[THREADS].update(principal_of(request), request.match_info["id"], title, agent_id, model)
    return web.json_response(thread_json(thread))


@requires("write")
async def delete_thread(request: web.Request) -> web.Response:
    await request.app[THREADS].delete(principal_of(request), request.match_info["id"])
    return web.Response(status=204)


def _posted(run: Run) -> Reply:
    return Reply(202, run_json(run), {"Location": f"/api/runs/{run.id}"})


TURN_FIELDS = {"agent_id", "model"}


def turn_choice(body: dict) -> Choice:
    """Another agent or model for this turn (services/turn_choice.py), when the body names one."""
    return Choice(v.string(body, "agent_id", min_len=1, max_len=64), v.string(body, "model", min_len=1, max_len=200))


@requires("write")
@idempotent
async def post_message(request: web.Request) -> web.Response:
    body = v.document(await json_body(request), {"content"} | TURN_FIELDS)
    content = v.string(body, "content", required=True, min_len=1, max_len=100_000)
    run = await request.app[THREADS].post(principal_of(request), request.match_info["id"], content,
                                          recorder(request, _posted), turn_choice(body))
    return _posted(run).response()
