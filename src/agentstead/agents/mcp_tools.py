"""MCP servers as a tool source beside agents/tools.py: REGISTRY (docs/mcp.md).

Tools are named `server.tool`. Each server's tool list is fetched at start and
every mcp_refresh_seconds, and kept: an agent is saved against the cached list
(its version records each MCP tool's description and schema), and a run calls
the server when the model asks. Who may use a server (its roles and users) is
checked when an agent is saved and again at every call, against the run's owner.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Iterable

from .mcp_client import McpServer, McpTool
from .tools import Tool

log = logging.getLogger("agentstead.mcp")


def is_mcp(name: str) -> bool:
    """MCP tools are `server.tool`; built-ins have no dot."""
    return "." in name


def wire_name(name: str) -> str:
    """The function name the model sees: OpenAI-style APIs allow [A-Za-z0-9_-] only."""
    return name.replace(".", "__")


def as_tool(name: str, snapshot: dict) -> Tool:
    """An MCP tool as the graph binds it, from what an agent version recorded (no `run`:
    chat runs call it through McpTools.call)."""
    return Tool(name, snapshot.get("description", ""), snapshot.get("parameters") or {"type": "object"}, None)


class McpTools:
    """Every configured MCP server, their cached tools, and the refresh loop."""

    def __init__(self, configs: Iterable[dict], refresh_seconds: float):
        self.servers: dict[str, McpServer] = {c["name"]: McpServer(c) for c in configs}
        self.refresh_seconds = refresh_seconds
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Ask every server for its tools (in the background: a down server must not hold up start)."""
        if self.servers and self._task is None:
            self._task = asyncio.create_task(self._loop(), name="mcp refresh")

    async def _loop(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.refresh_seconds)

    async def refresh(self, name: str | None = None) -> None:
        """Fetch the tool lists again: one server's, or all of them at once."""
        chosen = [self.servers[name]] if name is not None else list(self.servers.values())
        await asyncio.gather(*(s.refresh() for s in chosen))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await asyncio.gather(*(s.close() for s in self.servers.values()), return_exceptions=True)

    def find(self, name: str) -> tuple[McpServer | None, McpTool | None]:
        server_name, _, remote = name.partition(".")
        server = self.servers.get(server_name)
        return server, (server.tools.get(remote) if server is not None else None)

    def available(self, role: str, email: str) -> list[McpTool]:
        """The cached tools of every server this user may use."""
        return [t for s in self.servers.values() if s.allows(role, email) for t in s.tools.values()]

    def why_not(self, name: str, role: str, email: str) -> str | None:
        """Why this user cannot give an agent this MCP tool now; None when they can."""
        server, tool = self.find(name)
        if server is None or not server.allows(role, email):
            return f"no MCP server named {name.partition('.')[0]!r} is available to you"
        if tool is None:
            if server.status != "ok":
                return f"MCP server {server.name!r} is unreachable ({server.error or 'not yet asked'}); try again"
            return f"MCP server {server.name!r} offers no tool {name.partition('.')[2]!r}"
        return None

    async def call(self, name: str, args: dict, timeout: float, role: str, email: str) -> tuple[bool, str]:
        """(ok, output) of one MCP tool call on behalf of a user; never raises."""
        server_name, _, remote = name.partition(".")
        server = self.servers.get(server_name)
        if server is None or not server.allows(role, email):
            return False, f"error: the MCP server {server_name!r} is not available to this agent's owner"
        if server.config["tools"] and remote not in server.config["tools"]:
            return False, f"error: {name} is not on the administrator's allow-list"
        return await server.call(remote, args, timeout)

    def check(self) -> dict | None:
        """The readiness check (degrade only): every server answered its last tool list."""
        if not self.servers:
            return None
        down = {s.name: s.error or s.status for s in self.servers.values() if s.status != "ok"}
        return {"ok": not down, "state": "degraded" if down else "ok", "servers": len(self.servers),
                **({"error": "; ".join(f"{k}: {v}" for k, v in sorted(down.items()))} if down else {})}

    def report(self) -> list[dict]:
        return [s.report() for s in self.servers.values()]
