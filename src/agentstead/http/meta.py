"""The API's own description: the OpenAPI document and the schema state."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from ..auth.access import public, requires
from ..keys import OPENAPI, OPENAPI_COMPAT, SYSTEM
from ..store.migrate import latest_version


@public
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


@public
async def openapi_compat(request: web.Request) -> web.Response:
    """The protocol adapters' document (/v1 and /lg; docs/protocols.md)."""
    return web.json_response(request.app[OPENAPI_COMPAT])


@requires("admin")
async def schema(request: web.Request) -> web.Response:
    """The database schema version and every applied migration."""
    applied = await request.app[SYSTEM].migrations()
    return web.json_response({
        "version": applied[-1].version if applied else 0,
        "latest": latest_version(),
        "migrations": [dataclasses.asdict(m) for m in applied],
    })
