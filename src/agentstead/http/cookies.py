"""The session cookies. Tokens never reach JavaScript: both are httpOnly.

- access: the short-lived JWT, sent with every request (Path=/).
- refresh: the rotating refresh token, sent only to /auth (Path=/auth).
- login: the OIDC state of a sign-in in progress, sent only to the callback.
On https the names carry the __Host-/__Secure- prefixes, which browsers only
accept with Secure (and, for __Host-, Path=/ and no Domain).
"""

from __future__ import annotations

from aiohttp import web

from ..keys import SETTINGS


_SECURE_NAMES = {"access": "__Host-as_access", "refresh": "__Secure-as_refresh", "login": "__Secure-as_login"}
_PLAIN_NAMES = {"access": "as_access", "refresh": "as_refresh", "login": "as_login"}


def _secure(request: web.Request) -> bool:
    return request.app[SETTINGS].public_url.startswith("https://")


def names(request: web.Request) -> dict[str, str]:
    return _SECURE_NAMES if _secure(request) else _PLAIN_NAMES


def set_session(request: web.Request, response: web.StreamResponse, *, access: str, refresh: str) -> None:
    settings = request.app[SETTINGS]
    n, secure = names(request), _secure(request)
    response.set_cookie(n["access"], access, path="/", httponly=True, secure=secure, samesite="Strict",
                        max_age=settings.access_token_ttl_seconds)
    response.set_cookie(n["refresh"], refresh, path="/auth", httponly=True, secure=secure, samesite="Strict",
                        max_age=settings.session_ttl_days * 86400)


def clear_session(request: web.Request, response: web.StreamResponse) -> None:
    n = names(request)
    response.del_cookie(n["access"], path="/")
    response.del_cookie(n["refresh"], path="/auth")


def set_login(request: web.Request, response: web.StreamResponse, state: str, max_age: int) -> None:
    # Lax: it must travel on the provider's top-level redirect back to us.
    response.set_cookie(names(request)["login"], state, path="/auth/callback", httponly=True,
                        secure=_secure(request), samesite="Lax", max_age=max_age)


def clear_login(request: web.Request, response: web.StreamResponse) -> None:
    response.del_cookie(names(request)["login"], path="/auth/callback")


def get(request: web.Request, which: str) -> str | None:
    header = request.headers.get("Cookie")
    if not header:
        return None
    if '"' in header:
        # Quoted values may hide "; name=" inside them: leave those to aiohttp's full parser.
        return request.cookies.get(names(request)[which])
    return find(header, names(request)[which])


def find(header: str, name: str) -> str | None:
    """The value of cookie `name` in a Cookie header without quoted values (RFC 6265 5.4:
    pairs separated by ";"). The last one wins, as in aiohttp's parser. Per request, this
    replaces building a Morsel for every cookie the browser sends."""
    if name not in header:
        return None
    value = None
    for pair in header.split(";"):
        key, eq, rest = pair.partition("=")
        if eq and key.strip() == name:
            value = rest.strip()
    return value
