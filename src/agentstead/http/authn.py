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
from ..keys import IDENTITY, PRINCIPAL, RATE_API, RATE_AUTH, SETTINGS
from ..services.identity import AuthError, Context
from .errors import ApiError
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


def _allowed_origin(request: web.Request, origin: str | None) -> bool:
    settings = request.app[SETTINGS]
    return origin is not None and (origin == settings.public_url or origin in settings.cors_origins)


def _throttle(limiter, key: str) -> None:
    wait = limiter.check(key)
    if wait > 0:
        raise ApiError(429, "rate_limited", "too many requests; slow down",
                       headers={"Retry-After": str(max(1, math.ceil(wait)))})


async def _principal(request: web.Request) -> tuple[access.Principal | None, bool]:
    """(principal, came_from_cookie). Raises AuthError for bad credentials."""
    service = request.app[IDENTITY]
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if scheme.lower() != "bearer" or not value:
            raise AuthError(401, "unauthorized", "use Authorization: Bearer <API token>")
        if not value.startswith(API_TOKEN_PREFIX):
            raise AuthError(401, "unauthorized", "unknown API token")
        return await service.from_api_token(value), False
    from .cookies import get as cookie
    token = cookie(request, "access")
    if token:
        return await service.from_access_token(token), True
    return None, False


@web.middleware
async def authenticate(request: web.Request, handler):
    info = request.match_info
    if info.http_exception is not None or request.method == "OPTIONS":
        return await handler(request)  # 404/405, and CORS preflight (no credentials by design)
    policy = access.policy_of(info.handler)
    if policy is None:
        raise ApiError(500, "internal_error", "this route declares no access policy")
    if any(key.lower() in TOKEN_PARAMS for key in request.query):
        raise ApiError(400, "token_in_url", "credentials in the URL are refused; send Authorization: Bearer")
    ctx = context(request)
    if getattr(info.handler, "__strict_rate_limit__", False):
        _throttle(request.app[RATE_AUTH], "ip:" + ctx.ip)

    try:
        principal, via_cookie = await _principal(request)
    except AuthError as exc:
        if policy not in (access.PUBLIC, access.LOCAL_OR_ADMIN):
            raise ApiError(exc.status, exc.code, exc.message,
                           headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
        principal, via_cookie = None, False  # a stale cookie does not break public pages

    if principal is not None and via_cookie and request.method in UNSAFE and policy == access.PUBLIC:
        principal = None  # public unsafe routes (refresh) guard themselves; never act on cookie identity
    if principal is not None and via_cookie and request.method in UNSAFE:
        if not _allowed_origin(request, request.headers.get("Origin")):
            raise ApiError(403, "csrf_failed", "cross-origin request refused (Origin is not allowed)")
        if not request.app[IDENTITY].csrf_ok(principal, request.headers.get("X-CSRF-Token", "")):
            raise ApiError(403, "csrf_failed", "missing or wrong X-CSRF-Token header")

    refused = access.decide(policy, principal,
                            local=policy == access.LOCAL_OR_ADMIN and is_local(request))
    if refused is not None:
        status, code, message = refused
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        raise ApiError(status, code, message, headers=headers)

    _throttle(request.app[RATE_API], principal.user_id if principal else "ip:" + ctx.ip)
    if principal is not None:
        request[PRINCIPAL] = principal
    return await handler(request)
