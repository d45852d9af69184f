"""CORS for the allow-listed origins only (aiohttp-cors).

Credentials (cookies) are allowed only for named origins, never for '*'
(which production refuses at startup). With no origins configured nothing is
added: the SPA is same-origin behind Caddy and needs no CORS at all.
"""

from __future__ import annotations

import aiohttp_cors
from aiohttp import web

from ..settings import Settings

# x-api-key: the LangGraph SDK's token header (browser UIs on it, e.g. agent-chat-ui; docs/protocols.md)
_HEADERS = ("Content-Type", "Authorization", "X-CSRF-Token", "X-Request-ID", "Last-Event-ID", "Idempotency-Key",
            "x-api-key")
_EXPOSED = ("X-Request-ID", "Retry-After", "Location", "Idempotent-Replayed", "Content-Location",
            "X-Agentstead-Run-Id", "X-Agentstead-Thread-Id")


def setup(app: web.Application, settings: Settings) -> None:
    if not settings.cors_origins:
        return
    defaults = {
        origin: aiohttp_cors.ResourceOptions(
            allow_credentials=origin != "*", allow_headers=_HEADERS, expose_headers=_EXPOSED,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"], max_age=600)
        for origin in settings.cors_origins
    }
    cors = aiohttp_cors.setup(app, defaults=defaults)
    for route in list(app.router.routes()):
        if route.method != "HEAD":
            cors.add(route)
