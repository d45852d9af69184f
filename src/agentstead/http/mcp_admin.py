"""/api/admin/mcp-servers: the configured MCP servers, their status and tools (administrators)."""

from __future__ import annotations

from aiohttp import web

from ..auth.access import requires
from ..errors import not_found
from ..keys import MCP


@requires("admin")
async def list_servers(request: web.Request) -> web.Response:
    """Each server as last asked: status, error, tools (their descriptions are the server's text)."""
    return web.json_response({"servers": request.app[MCP].report()})


@requires("admin")
async def refresh_server(request: web.Request) -> web.Response:
    """Ask one server for its tools now; answers with the server as it stands after."""
    mcp = request.app[MCP]
    name = request.match_info["name"]
    if name not in mcp.servers:
        raise not_found("MCP server")
    await mcp.refresh(name)
    return web.json_response(mcp.servers[name].report())
