"""The auth middleware: who is calling, may they, and not too often.

Credentials: `Authorization: Bearer ast_...` (API token) or the access cookie
(browser session). Tokens in the URL are refused everywhere. Cookie-authenticated
unsafe requests need an allowed Origin and the X-CSRF-Token header.
"""

from __future__ import annotations

import math

from aiohttp import web

from ..auth import access
from ..auth.clientip import client_ip
from ..auth.tokens import API_TOKEN_PREFIX
from ..errors import Refused
from ..keys import IDENTITY, PRINCIPAL, RATE_API, RATE_AUTH, SETTINGS
from ..services.identity import Context
from . import cookies
from .health import is_local

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
TOKEN_PARAMS = {"access_token", "token", "api_key", "apikey", "bearer", "id_token", "refresh_token", "jwt"}


def strict_rate_limit(handler):
    """Mark a handler for the per-IP sign-in rate limit."""
    handler.__strict_rate_limit__ = True
    return handler


def context(request: web.Request) -> Context:
    settings = request.app[SETTINGS]
    ip = client_ip(request.remote, request.headers.get("X-Forwarded-For"), settings.trusted_proxies)
    return Context(ip=ip, user_agent=request.headers.get("User-Agent", "")[:512])


def principal_of(request: web.Request) -> access.Principal:
    """The caller of a handler that required sign-in."""
    return request[PRINCIPAL]


def allowed_origin(request: web.Request, origin: str | None) -> bool:
    settings = request.app[SETTINGS]
    return origin is not None and (origin == settings.public_url or origin in settings.cors_origins)


def _throttle(limiter, key: str) -> None:
    wait = limiter.check(key)
    if wait > 0:
        raise Refused(429, "rate_limited", "too many requests; slow down",
                       headers={"Retry-After": str(max(1, math.ceil(wait)))})


def _bearer(header: str) -> str:
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        raise Refused(401, "unauthorized", "use Authorization: Bearer <API token>")
    if not value.startswith(API_TOKEN_PREFIX):
        raise Refused(401, "unauthorized", "unknown API token")
    return value


def _client_key(request: web.Request) -> str:
    settings = request.app[SETTINGS]
    return "ip:" + client_ip(request.remote, request.headers.get("X-Forwarded-For"), settings.trusted_proxies)


@web.middleware
async def authenticate(request: web.Request, handler):
    info = request.match_info
    if info.http_exception is not None or request.method == "OPTIONS":
        return await handler(request)  # 404/405, and CORS preflight (no credentials by design)
    policy = access.policy_of(info.handler)
    if policy is None:
        raise Refused(500, "internal_error", "this route declares no access policy")
    if request.query_string and any(key.lower() in TOKEN_PARAMS for key in request.query):
        raise Refused(400, "token_in_url", "credentials in the URL are refused; send Authorization: Bearer")
    if getattr(info.handler, "__strict_rate_limit__", False):
        _throttle(request.app[RATE_AUTH], _client_key(request))

    # Credentials: a principal resolved earlier comes from the principal cache (no await, no
    # database, no JWT check); the cache drops it on every revocation.
    principals = request.app[IDENTITY].principals
    header = request.headers.get("Authorization")
    if header is None and "x-api-key" in request.headers:   # the LangGraph SDK's way of sending a token
        header = "Bearer " + request.headers["x-api-key"]
    principal, via_cookie = None, False
    try:
        if header is not None:
            token = _bearer(header)
            principal = principals.cached_api_token(token) or await principals.from_api_token(token)
        else:
            token = cookies.get(request, "access")
            if token:
                via_cookie = True
                principal = principals.cached_session(token) or await principals.from_access_token(token)
    except Refused as exc:
        if policy not in (access.PUBLIC, access.LOCAL_OR_ADMIN):
            raise Refused(exc.status, exc.code, exc.message,
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
        principal, via_cookie = None, False  # a stale cookie does not break public pages

    if principal is not None and via_cookie and request.method in UNSAFE:
        if policy == access.PUBLIC:
            principal = None  # public unsafe routes (refresh) guard themselves; never act on cookie identity
        elif not allowed_origin(request, request.headers.get("Origin")):
            raise Refused(403, "csrf_failed", "cross-origin request refused (Origin is not allowed)")
        elif not principals.csrf_ok(principal, request.headers.get("X-CSRF-Token", "")):
            raise Refused(403, "csrf_failed", "missing or wrong X-CSRF-Token header")

    if policy != access.PUBLIC:
        refused = access.decide(policy, principal,
                                local=policy == access.LOCAL_OR_ADMIN and is_local(request))
        if refused is not None:
            status, code, message = refused
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            raise Refused(status, code, message, headers=headers)

    if principal is not None:
        _throttle(request.app[RATE_API], principal.user_id)
        request[PRINCIPAL] = principal
    else:
        _throttle(request.app[RATE_API], _client_key(request))
    return await handler(request)
