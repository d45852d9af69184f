"""/api/admin: users and the audit log (administrators only)."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from ..auth.access import requires
from ..errors import Refused
from ..keys import IDENTITY
from ..store.users import User
from . import validate as v
from .authn import context, principal_of
from .bodies import json_body


def user_json(u: User) -> dict:
    return dataclasses.asdict(u)


@requires("admin")
async def list_users(request: web.Request) -> web.Response:
    limit = v.query_int(request.query.get("limit"), "limit", default=50, lo=1, hi=200)
    rows = await request.app[IDENTITY].users.list(limit=limit, after=request.query.get("after"),
                                                  query=request.query.get("q", "")[:100])
    return web.json_response({"users": [user_json(u) for u in rows],
                              "next": rows[-1].email if len(rows) == limit else None})


@requires("admin")
async def update_user(request: web.Request) -> web.Response:
    body = v.document(await json_body(request), {"role", "disabled", "daily_token_budget"})
    changes = {"role": v.choice(body, "role", ("admin", "member")), "disabled": v.boolean(body, "disabled")}
    if "daily_token_budget" in body:
        changes["daily_token_budget"] = v.integer(body, "daily_token_budget", lo=0, hi=10**12, nullable=True)
    elif changes["role"] is None and changes["disabled"] is None:
        raise v.fail("", "send role, disabled and/or daily_token_budget")
    user = await request.app[IDENTITY].users.update(principal_of(request), request.match_info["id"],
                                                    context(request), **changes)
    return web.json_response(user_json(user))


@requires("admin")
async def list_identities(request: web.Request) -> web.Response:
    rows = await request.app[IDENTITY].users.identities(request.match_info["id"])
    return web.json_response({"identities": [dataclasses.asdict(i) for i in rows]})


@requires("admin")
async def unlink_identity(request: web.Request) -> web.Response:
    m = request.match_info
    await request.app[IDENTITY].users.unlink_identity(principal_of(request), m["id"], m["provider"], m["subject"],
                                                      context(request))
    return web.Response(status=204)


@requires("admin")
async def audit(request: web.Request) -> web.Response:
    q = request.query
    limit = v.query_int(q.get("limit"), "limit", default=50, lo=1, hi=500)
    before = v.query_int(q.get("before"), "before", default=0, lo=0, hi=2**62) or None
    outcome = q.get("outcome")
    if outcome not in (None, "success", "failure"):
        raise Refused(400, "bad_request", "query parameter outcome must be success or failure")
    rows = await request.app[IDENTITY].users.audit_log(limit=limit, before_id=before, action=q.get("action"),
                                                       actor_id=q.get("actor"), outcome=outcome,
                                                       since=q.get("since"), until=q.get("until"))
    return web.json_response({"entries": [dataclasses.asdict(r) for r in rows],
                              "next": rows[-1].id if len(rows) == limit else None})
