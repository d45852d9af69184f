"""/api/me and /api/tokens: the signed-in user's own account."""

from __future__ import annotations

from aiohttp import web

from ..auth.access import SCOPES, requires
from ..keys import IDENTITY, SETTINGS
from ..store.api_tokens import ApiToken
from . import validate as v
from .authn import context, principal_of, strict_rate_limit
from .bodies import json_body
from .idempotency import Reply, idempotent, recorder


def token_json(t: ApiToken) -> dict:
    return {"id": t.id, "name": t.name, "scopes": list(t.scopes), "created_at": t.created_at,
            "expires_at": t.expires_at, "last_used_at": t.last_used_at}


@requires("read")
async def me(request: web.Request) -> web.Response:
    p = principal_of(request)
    identity = request.app[IDENTITY]
    user = await identity.principals.active_user(p.user_id)
    return web.json_response({
        "user": {"id": user.id, "email": user.email, "name": user.name, "role": user.role,
                 "created_at": user.created_at},
        "auth": {"via": p.via, "scopes": sorted(p.scopes), "session_id": p.session_id, "token_id": p.token_id},
        "csrf_token": identity.principals.csrf_for(p),
        # what the page shows as the administrator set it (the SPA reads it at start)
        "chat": {"image_origins": list(request.app[SETTINGS].chat_image_origins)},
    })


@requires("read")
async def list_tokens(request: web.Request) -> web.Response:
    rows = await request.app[IDENTITY].tokens.list(principal_of(request))
    return web.json_response({"tokens": [token_json(t) for t in rows]})


def _created_token(result) -> Reply:
    row, plain = result
    return Reply(201, {**token_json(row), "token": plain})


@requires("write")
@strict_rate_limit
@idempotent
async def create_token(request: web.Request) -> web.Response:
    body = v.document(await json_body(request), {"name", "scopes", "expires_in_days"})
    name = v.string(body, "name", required=True, min_len=1, max_len=100)
    scopes = body.get("scopes", ["read"])
    if not isinstance(scopes, list) or not scopes or any(s not in SCOPES for s in scopes):
        raise v.fail("/scopes", f"must be a non-empty list of {', '.join(SCOPES)}")
    days = v.integer(body, "expires_in_days", lo=1, hi=request.app[SETTINGS].api_token_max_days)
    created = await request.app[IDENTITY].tokens.create(principal_of(request), name, set(scopes), days,
                                                        context(request), recorder(request, _created_token))
    return _created_token(created).response()


@requires("write")
async def revoke_token(request: web.Request) -> web.Response:
    await request.app[IDENTITY].tokens.revoke(principal_of(request), request.match_info["id"], context(request))
    return web.Response(status=204)
