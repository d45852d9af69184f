"""/mcp: Agentstead as an MCP server (streamable HTTP), each of the caller's agents a tool.

The SDK's server is an ASGI app (services/mcp_endpoint.py); this handler runs it on
the aiohttp request that authn.py has authenticated, and streams its answer back.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..auth.access import requires
from ..errors import Refused
from ..keys import MCP_ENDPOINT
from .authn import principal_of


async def _bridge(request: web.Request, scope: dict, body: bytes, app) -> web.StreamResponse:
    """Run an ASGI app on one aiohttp request (the body read already), streaming its answer."""
    sent = False
    response: web.StreamResponse | None = None
    done = asyncio.Event()

    async def receive() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        nonlocal response
        if message["type"] == "http.response.start":
            response = web.StreamResponse(status=message["status"])
            for key, value in message.get("headers", []):
                name = key.decode("latin-1")
                if name.lower() not in ("content-length", "transfer-encoding"):
                    response.headers.add(name, value.decode("latin-1"))
            await response.prepare(request)
        elif message["type"] == "http.response.body" and response is not None:
            if message.get("body"):
                await response.write(message["body"])
            if not message.get("more_body"):
                await response.write_eof()
                done.set()

    try:
        await app(scope, receive, send)
    finally:
        done.set()
    if response is None:
        raise Refused(500, "mcp_failed", "the MCP server gave no answer")
    return response


@requires("read")
async def mcp(request: web.Request) -> web.StreamResponse:
    """POST /mcp (and GET/DELETE, which a stateless server answers with 405)."""
    endpoint = request.app[MCP_ENDPOINT]
    body = await request.read()
    return await _bridge(request, endpoint.scope(request, principal_of(request)), body, await endpoint.handler())
