"""/api/workflows and their runs: parse, authorize, call the service."""

from __future__ import annotations

from aiohttp import web

from ..auth.access import requires
from ..keys import WORKFLOWS
from ..store.workflows import Workflow
from . import validate as v
from .authn import principal_of
from .bodies import json_body
from .idempotency import Reply, idempotent, recorder
from .runs import run_json


def workflow_json(w: Workflow) -> dict:
    c = w.current
    return {"id": w.id, "version": c.version, "name": c.name, "definition": c.definition,
            "created_at": w.created_at, "updated_at": w.updated_at}


def _definition(body) -> object:
    body = v.document(body, {"definition"})
    if "definition" not in body:
        raise v.fail("/definition", "is required")
    return body["definition"]


@requires("read")
async def list_workflows(request: web.Request) -> web.Response:
    limit = v.query_int(request.query.get("limit"), "limit", default=50, lo=1, hi=200)
    rows = await request.app[WORKFLOWS].list(principal_of(request), limit=limit, before=request.query.get("before"))
    return web.json_response({"workflows": [workflow_json(w) for w in rows],
                              "next": rows[-1].created_at if len(rows) == limit else None})


def _created(workflow: Workflow) -> Reply:
    return Reply(201, workflow_json(workflow), {"Location": f"/api/workflows/{workflow.id}"})


@requires("write")
@idempotent
async def create_workflow(request: web.Request) -> web.Response:
    definition = _definition(await json_body(request))
    workflow = await request.app[WORKFLOWS].create(principal_of(request), definition,
                                                   recorder(request, _created))
    return _created(workflow).response()


@requires("read")
async def get_workflow(request: web.Request) -> web.Response:
    workflow = await request.app[WORKFLOWS].get(principal_of(request), request.match_info["id"])
    return web.json_response(workflow_json(workflow))


@requires("write")
async def update_workflow(request: web.Request) -> web.Response:
    definition = _definition(await json_body(request))
    workflow = await request.app[WORKFLOWS].update(principal_of(request), request.match_info["id"], definition)
    return web.json_response(workflow_json(workflow))


@requires("write")
async def delete_workflow(request: web.Request) -> web.Response:
    await request.app[WORKFLOWS].delete(principal_of(request), request.match_info["id"])
    return web.Response(status=204)


def _queued(run) -> Reply:
    return Reply(202, run_json(run), {"Location": f"/api/runs/{run.id}"})


@requires("write")
@idempotent
async def start_run(request: web.Request) -> web.Response:
    run_input: object = {}
    if request.body_exists:   # (not can_read_body: an Idempotency-Key has read the body already)
        body = v.document(await json_body(request), {"input"})
        run_input = body.get("input", {})
    run = await request.app[WORKFLOWS].start_run(principal_of(request), request.match_info["id"], run_input,
                                                 recorder(request, _queued))
    return _queued(run).response()
