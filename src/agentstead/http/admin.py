"""/api/admin: users and the audit log (administrators only)."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from ..auth.access import requires
from ..keys import DB, IDENTITY
from ..services.identity import AuthError
from ..store import audit as audit_store
from ..store import runs as run_store
from ..store.users import User
from . import validate as v
from .authn import context, principal_of
from .bodies import json_body
from .errors import ApiError


def user_json(u: User) -> dict:
    return dataclasses.asdict(u)


@requires("admin")
async def list_users(request: web.Request) -> web.Response:
    limit = v.query_int(request.query.get("limit"), "limit", default=50, lo=1, hi=200)
    rows = await request.app[IDENTITY].list_users(limit=limit, after=request.query.get("after"),
                                                  query=request.query.get("q", "")[:100])
    return web.json_response({"users": [user_json(u) for u in rows],
                              "next": rows[-1].email if len(rows) == limit else None})


@requires("admin")
async def update_user(request: web.Request) -> web.Response:
    body = v.document(await json_body(request), {"role", "disabled", "daily_token_budget"})
    role = v.choice(body, "role", ("admin", "member"))
    disabled = v.boolean(body, "disabled")
    has_budget = "daily_token_budget" in body
    budget = v.integer(body, "daily_token_budget", lo=0, hi=10**12, nullable=True)
    if role is None and disabled is None and not has_budget:
        raise v.fail("", "send role, disabled and/or daily_token_budget")
    service, user_id = request.app[IDENTITY], request.match_info["id"]
    try:
        if role is not None or disabled is not None:
            user = await service.update_user(principal_of(request), user_id, context(request), role=role,
                                             disabled=disabled)
        else:
            user = await service.user(user_id)
            if user is None:
                raise AuthError(404, "not_found", "no such user")
    except AuthError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    if has_budget:
        await run_store.set_budget(request.app[DB], user.id, budget)
        await service.audit("user.budget", context(request), actor_id=principal_of(request).user_id,
                            target=user.id, daily_token_budget=budget)
    return web.json_response(user_json(user))


@requires("admin")
async def list_identities(request: web.Request) -> web.Response:
    try:
        rows = await request.app[IDENTITY].identities(request.match_info["id"])
    except AuthError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    return web.json_response({"identities": [dataclasses.asdict(i) for i in rows]})


@requires("admin")
async def unlink_identity(request: web.Request) -> web.Response:
    m = request.match_info
    try:
        await request.app[IDENTITY].unlink_identity(principal_of(request), m["id"], m["provider"], m["subject"],
                                                    context(request))
    except AuthError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    return web.Response(status=204)


@requires("admin")
async def audit(request: web.Request) -> web.Response:
    q = request.query
    limit = v.query_int(q.get("limit"), "limit", default=50, lo=1, hi=500)
    before = v.query_int(q.get("before"), "before", default=0, lo=0, hi=2**62) or None
    outcome = q.get("outcome")
    if outcome not in (None, "success", "failure"):
        raise ApiError(400, "bad_request", "query parameter outcome must be success or failure")
    rows = await audit_store.page(request.app[DB], limit=limit, before_id=before, action=q.get("action"),
                                  actor_id=q.get("actor"), outcome=outcome, since=q.get("since"),
                                  until=q.get("until"))
    return web.json_response({"entries": [dataclasses.asdict(r) for r in rows],
                              "next": rows[-1].id if len(rows) == limit else None})
