"""One configured MCP server: its connection, its cached tool list, its status.

The `mcp` package's Client speaks streamable HTTP. A connection is kept open
between calls (opening one costs a discovery round trip) and is owned by a task
of its own, because the SDK's anyio task groups must be left by the task that
entered them. A call that fails at the transport drops the connection; the next
call or refresh opens a new one. Nothing here raises to a run: every failure is
(False, "error: ...") for the model to read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from typing import Any

from ..timeutil import now_iso

log = logging.getLogger("agentstead.mcp")
CONNECT_TIMEOUT = 10.0


@dataclasses.dataclass(frozen=True)
class McpTool:
    """A tool of an MCP server as agents see it: `server.tool`, its description and schema."""
    server: str
    remote: str
    description: str
    parameters: dict

    @property
    def name(self) -> str:
        return f"{self.server}.{self.remote}"

    def snapshot(self) -> dict:
        """What an agent version records of it."""
        return {"description": self.description, "parameters": self.parameters}


def reason(exc: BaseException) -> str:
    """One line for an error, looking inside the SDK's exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


class _Link:
    """An open Client held by its own task until closed (or until the server breaks it)."""

    def __init__(self, url: str, headers: dict[str, str]):
        self.url, self.headers = url, headers
        self.client = None   # an mcp.Client while open
        self._stop = asyncio.Event()
        self._task: asyncio.Task | None = None

    @property
    def alive(self) -> bool:
        return self.client is not None and self._task is not None and not self._task.done()

    async def open(self):
        ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._hold(ready), name=f"mcp {self.url}")
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                self.client = await asyncio.shield(ready)
        except BaseException:
            await self.close()
            raise
        return self.client

    async def _hold(self, ready: asyncio.Future) -> None:
        # Imported on first use: the SDK (pydantic models, httpx2) costs about half the app's own
        # import time, and a host without MCP servers should not pay it at every start.
        import httpx2
        from mcp import Client
        from mcp.client.streamable_http import streamable_http_client
        try:
            async with httpx2.AsyncClient(headers=self.headers, follow_redirects=False) as http, \
                    Client(streamable_http_client(self.url, http_client=http)) as client:
                ready.set_result(client)
                await self._stop.wait()
        except BaseException as exc:  # the SDK raises exception groups; the caller gets one line
            if not ready.done():
                ready.set_exception(ConnectionError(reason(exc)))
            elif not isinstance(exc, asyncio.CancelledError):
                log.info("mcp connection to %s ended: %s", self.url, reason(exc))
        finally:
            self.client = None

    async def close(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is not None and not task.done():
            try:
                async with asyncio.timeout(2):
                    await asyncio.shield(task)
            except TimeoutError:
                task.cancel()
            except BaseException:  # closing a broken link: it is gone either way
                pass


def result_text(result: Any) -> str:
    """A CallToolResult as the text the model reads (other content kinds are named, not sent)."""
    parts = []
    for item in result.content or []:
        kind = getattr(item, "type", "")
        if kind == "text":
            parts.append(item.text)
        elif kind == "resource" and hasattr(item.resource, "text"):
            parts.append(item.resource.text)
        else:
            parts.append(f"[{kind or 'unknown'} content not shown]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content))
    return "\n".join(parts)


class McpServer:
    """A configured server (settings_mcp.py): allow-list, access, limits, cached tools."""

    def __init__(self, config: dict):
        self.config = config
        self.name: str = config["name"]
        self.tools: dict[str, McpTool] = {}
        self.status = "unknown"           # unknown (not yet asked), ok, error
        self.error = ""
        self.refreshed_at: str | None = None
        self.left_out: list[str] = []     # offered by the server but not on the allow-list or not nameable
        self._link: _Link | None = None
        self._lock = asyncio.Lock()

    def allows(self, role: str, email: str) -> bool:
        """May a user with this role and email use the server's tools?"""
        return role in self.config["roles"] or email.lower() in self.config["users"]

    async def _client(self):
        async with self._lock:
            if self._link is None or not self._link.alive:
                if self._link is not None:
                    await self._link.close()
                self._link = _Link(self.config["url"], self.config["headers"])
                await self._link.open()
            return self._link.client

    async def _drop(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            await link.close()

    async def refresh(self) -> None:
        """Ask the server for its tools again; on failure keep the last list and say why."""
        try:
            async with asyncio.timeout(self.config["timeout_seconds"] + CONNECT_TIMEOUT):
                client = await self._client()
                listed, cursor = [], None
                while True:
                    page = await client.list_tools(cursor=cursor, cache_mode="refresh")
                    listed += page.tools
                    cursor = page.next_cursor
                    if not cursor or len(listed) > 1000:
                        break
        except Exception as exc:
            await self._drop()
            self.status, self.error = "error", reason(exc) if not isinstance(exc, TimeoutError) else "timed out"
            log.warning("mcp server %s: tool list failed: %s", self.name, self.error)
            return
        self._take(listed)
        self.status, self.error, self.refreshed_at = "ok", "", now_iso()

    def _take(self, listed: list) -> None:
        allow = set(self.config["tools"])
        tools, left_out = {}, []
        for t in listed:
            schema = t.input_schema if isinstance(t.input_schema, dict) else {"type": "object"}
            tool = McpTool(self.name, str(t.name), str(t.description or "")[:2000], schema)
            nameable = len(tool.name) <= 64 and all(c.isalnum() or c in "_-" for c in tool.remote)
            if (allow and tool.remote not in allow) or not nameable:
                left_out.append(str(t.name)[:100])
            else:
                tools[tool.remote] = tool
        self.tools, self.left_out = tools, left_out

    async def call(self, remote: str, args: dict, timeout: float) -> tuple[bool, str]:
        """(ok, output) of one call, within the server's time limit and output cap."""
        limit = min(self.config["timeout_seconds"], timeout)
        try:
            async with asyncio.timeout(limit):
                client = await self._client()
                result = await client.call_tool(remote, args)
            ok, output = not result.is_error, result_text(result)
            if not ok:
                output = f"error: {self.name}.{remote} failed: {output}"
        except TimeoutError:
            ok, output = False, f"error: {self.name}.{remote} took longer than {limit:g}s"
        except Exception as exc:
            await self._drop()
            ok, output = False, f"error: MCP server {self.name!r} failed: {reason(exc)}"
        cap = self.config["max_output"]
        if len(output) > cap:
            output = output[:cap] + "\n[output truncated]"
        return ok, output

    def report(self) -> dict:
        """The server as the admin page and /readyz show it (never its headers)."""
        return {"name": self.name, "url": self.config["url"], "status": self.status, "error": self.error,
                "refreshed_at": self.refreshed_at, "roles": list(self.config["roles"]),
                "users": list(self.config["users"]), "timeout_seconds": self.config["timeout_seconds"],
                "max_output": self.config["max_output"], "left_out": self.left_out,
                "tools": [{"name": t.name, "description": t.description, "parameters": t.parameters}
                          for t in self.tools.values()]}

    async def close(self) -> None:
        await self._drop()
