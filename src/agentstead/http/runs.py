"""/api/runs and /api/usage: parse, authorize, call the service."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from ..auth.access import requires
from ..keys import RUNS
from ..store.runs import Run
from ..store.steps import RunStep
from . import validate as v
from .authn import principal_of
from .bodies import json_body

# The order of a run's fields in its JSON (as before runs were built by keyword).
_ORDER = ("id", "thread_id", "agent_id", "agent_version", "status", "input_message_id", "error",
          "waiting_prompt", "prompt_tokens", "completion_tokens", "model", "created_at", "started_at", "finished_at",
          "kind", "workflow_id", "workflow_version", "input", "output", "pinned_agents")


def run_json(r: Run) -> dict:
    d = dataclasses.asdict(r)
    d["pinned_agents"] = d.pop("pins")
    d["error"] = {"code": r.error_code, "message": r.error_message} if r.error_code else None
    return {key: d[key] for key in _ORDER}


def step_json(s: RunStep) -> dict:
    d = dataclasses.asdict(s)
    d.pop("run_id")
    return d


@requires("read")
async def list_runs(request: web.Request) -> web.Response:
    q = request.query
    limit = v.query_int(q.get("limit"), "limit", default=50, lo=1, hi=200)
    rows = await request.app[RUNS].list(principal_of(request), limit=limit, before=q.get("before"),
                                        status=q.get("status"), kind=q.get("kind"), agent_id=q.get("agent_id"),
                                        thread_id=q.get("thread_id"), workflow_id=q.get("workflow_id"))
    return web.json_response({"runs": [run_json(r) for r in rows],
                              "next": rows[-1].created_at if len(rows) == limit else None})


@requires("read")
async def get_run(request: web.Request) -> web.Response:
    run, steps = await request.app[RUNS].detail(principal_of(request), request.match_info["id"])
    return web.json_response({**run_json(run), "steps": [step_json(s) for s in steps]})


@requires("write")
async def cancel_run(request: web.Request) -> web.Response:
    run = await request.app[RUNS].cancel(principal_of(request), request.match_info["id"])
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
    run = await request.app[RUNS].resume(principal_of(request), request.match_info["id"], answer)
    return web.json_response(run_json(run), status=202)


def _days(request: web.Request) -> int:
    return v.query_int(request.query.get("days"), "days", default=30, lo=1, hi=366)


@requires("read")
async def usage(request: web.Request) -> web.Response:
    return web.json_response({"usage": await request.app[RUNS].usage(principal_of(request), days=_days(request))})


@requires("admin")
async def admin_usage(request: web.Request) -> web.Response:
    return web.json_response({"usage": await request.app[RUNS].usage(None, days=_days(request))})
