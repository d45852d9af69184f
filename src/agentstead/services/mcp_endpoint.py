"""Agentstead as an MCP server: the `mcp` package's own server over the caller's agents.

Its lowlevel Server behind a stateless StreamableHTTPSessionManager (an ASGI app);
http/mcp.py hands it each request already authenticated (API token or session,
the usual rate and body limits) with the caller in the ASGI scope, where the tool
handlers find it. services/agent_tools.py does the rest. docs/mcp.md.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ..auth.access import Principal
from ..errors import Refused
from .agent_tools import AgentTools, tool_name

SCOPE_KEY = "agentstead.principal"
INPUT = {"type": "object", "additionalProperties": False, "required": ["message"], "properties": {
    "message": {"type": "string", "description": "What to say to the agent."},
    "thread_id": {"type": "string", "description": "Go on in this thread (from an earlier answer); "
                                                   "omitted: a new thread."}}}


def _principal(ctx: Any) -> Principal:
    return ctx.request.scope[SCOPE_KEY]


def _server(tools: AgentTools):
    from mcp import types
    from mcp.server.lowlevel import Server

    async def list_tools(ctx, params):
        return types.ListToolsResult(tools=[types.Tool(
            name=tool_name(a), title=a.current.name, input_schema=INPUT,
            description=f"Ask the agent {a.current.name!r} (model {a.current.model}) and get its reply.")
            for a in await tools.list(_principal(ctx))])

    async def call_tool(ctx, params):
        try:
            answer = await tools.ask(_principal(ctx), params.name, dict(params.arguments or {}))
        except Refused as exc:
            return types.CallToolResult(is_error=True, content=[types.TextContent(type="text", text=exc.message)])
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=answer.reply)],
            structured_content={"reply": answer.reply, "thread_id": answer.thread_id, "run_id": answer.run.id})

    return Server("agentstead", on_list_tools=list_tools, on_call_tool=call_tool)


class McpEndpoint:
    """The MCP server's session manager, held open by a task of its own (anyio scopes end
    in the task that began them) from the first request to /mcp until the app stops. Built
    then, not at start: the SDK costs about half the app's own import time."""

    def __init__(self, tools: AgentTools):
        self.tools = tools
        self.manager = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    async def handler(self):
        """The SDK's ASGI app, started on first use."""
        async with self._lock:
            if self.manager is None:
                await self._start()
        return self.manager.handle_request

    async def _start(self) -> None:
        from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
        from mcp.server.transport_security import TransportSecuritySettings
        # Bearer tokens, not cookies, authenticate here; Caddy and authn.py check the host.
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        manager = StreamableHTTPSessionManager(app=_server(self.tools), stateless=True, json_response=True,
                                               security_settings=security)
        ready = asyncio.get_running_loop().create_future()

        async def hold() -> None:
            async with manager.run():
                ready.set_result(None)
                await self._stop.wait()
        self._task = asyncio.create_task(hold(), name="mcp endpoint")
        await ready
        self.manager = manager

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)

    def scope(self, request: Any, principal: Principal) -> dict:
        """The ASGI scope of an aiohttp request, the caller in it."""
        return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": request.method,
                 "scheme": request.scheme, "path": "/mcp", "raw_path": b"/mcp", "root_path": "",
                 "query_string": request.query_string.encode(), "client": (request.remote or "", 0),
                 "server": ("agentstead", 0), SCOPE_KEY: principal,
                 # the credential stays here: the SDK sees neither the token nor the cookie
                 "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()
                             if k.lower() not in ("authorization", "cookie")]}
