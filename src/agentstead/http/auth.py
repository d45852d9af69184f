"""/auth: sign-in with OIDC providers or a sign-in link, refresh, logout, WebSocket tickets."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from ..auth.access import public, requires
from ..keys import IDENTITY, SETTINGS
from ..errors import Refused
from ..services.identity import LOGIN_STATE_TTL, IssuedSession
from . import cookies
from .authn import context, principal_of, strict_rate_limit
from .errors import from_refused


def _signed_in(request: web.Request, issued: IssuedSession, response: web.StreamResponse) -> None:
    cookies.set_session(request, response, access=issued.access_token, refresh=issued.refresh_token)


def redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


def _to_signin_page(request: web.Request, code: str) -> web.Response:
    # Browser-facing failures go back to the SPA's sign-in page with a stable code.
    resp = redirect(f"{request.app[SETTINGS].public_url}/signin?{urlencode({'error': code})}")
    cookies.clear_login(request, resp)
    return resp


@public
async def providers(request: web.Request) -> web.Response:
    return web.json_response({"providers": [
        {"name": name, "display_name": client.config.label, "login_url": f"/auth/login/{name}"}
        for name, client in request.app[IDENTITY].signin.providers.items()]})


@public
@strict_rate_limit
async def login(request: web.Request) -> web.Response:
    start = await request.app[IDENTITY].signin.start(request.match_info["provider"], request.query.get("next"))
    resp = redirect(start.url)
    cookies.set_login(request, resp, start.state, LOGIN_STATE_TTL)
    return resp


@public
@strict_rate_limit
async def callback(request: web.Request) -> web.Response:
    q = request.query
    try:
        issued = await request.app[IDENTITY].signin.finish(
            request.match_info["provider"], code=q.get("code"), state=q.get("state"),
            cookie_state=cookies.get(request, "login"), error=q.get("error"), ctx=context(request),
            iss=q.get("iss"))
    except Refused as exc:   # a browser's redirect: back to the sign-in page, not JSON
        return _to_signin_page(request, exc.code)
    resp = redirect(f"{request.app[SETTINGS].public_url}{issued.next_path}")
    cookies.clear_login(request, resp)
    _signed_in(request, issued, resp)
    return resp


@public
@strict_rate_limit
async def link(request: web.Request) -> web.Response:
    try:
        issued = await request.app[IDENTITY].signin.use_link(request.match_info["token"], context(request))
    except Refused as exc:   # a browser's redirect, as above
        return _to_signin_page(request, exc.code)
    resp = redirect(f"{request.app[SETTINGS].public_url}/")
    resp.headers["Referrer-Policy"] = "no-referrer"  # the link's token must not leak onward
    _signed_in(request, issued, resp)
    return resp


def _same_origin(request: web.Request) -> None:
    # The refresh cookie is SameSite=Strict; the Origin check is the second lock.
    settings = request.app[SETTINGS]
    origin = request.headers.get("Origin")
    if origin != settings.public_url and origin not in settings.cors_origins:
        raise Refused(403, "csrf_failed", "cross-origin request refused (Origin is not allowed)")


@public
@strict_rate_limit
async def refresh(request: web.Request) -> web.Response:
    _same_origin(request)
    try:
        issued = await request.app[IDENTITY].sessions.refresh(cookies.get(request, "refresh"), context(request))
    except Refused as exc:   # the cookies go with the refusal
        resp = from_refused(exc)
        cookies.clear_session(request, resp)
        return resp
    resp = web.json_response(_session_body(issued))
    _signed_in(request, issued, resp)
    return resp


def _session_body(issued: IssuedSession) -> dict:
    u = issued.user
    return {"user": {"id": u.id, "email": u.email, "name": u.name, "role": u.role},
            "csrf_token": issued.csrf_token, "session_id": issued.session_id}


@requires("read")
async def logout(request: web.Request) -> web.Response:
    await request.app[IDENTITY].sessions.logout(principal_of(request), context(request))
    resp = web.Response(status=204)
    cookies.clear_session(request, resp)
    return resp


@requires("read")
async def logout_all(request: web.Request) -> web.Response:
    count = await request.app[IDENTITY].sessions.logout_all(principal_of(request), context(request))
    resp = web.json_response({"sessions_revoked": count})
    cookies.clear_session(request, resp)
    return resp


@requires("read")
async def ws_ticket(request: web.Request) -> web.Response:
    ticket, ttl = await request.app[IDENTITY].tickets.issue(principal_of(request))
    return web.json_response({"ticket": ticket, "expires_in": ttl}, status=201)
