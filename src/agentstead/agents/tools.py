"""The tool registry. Each tool declares its JSON schema, time limit and output limit.

`ask_human` is special: it pauses the run (LangGraph interrupt) until the user answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import socket
from typing import Any, Awaitable, Callable

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver

from .calculator import CalculatorError, evaluate
from .netguard import NonPublicAddress, public_address, public_socket

ASK_HUMAN = "ask_human"


class ToolError(Exception):
    """A tool failed in a way the model should be told about (it becomes the tool's result)."""


@dataclasses.dataclass(frozen=True)
class ToolContext:
    allowed_hosts: tuple[str, ...]
    http: aiohttp.ClientSession | None = None


@dataclasses.dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict
    run: Callable[[dict, ToolContext], Awaitable[str]] | None
    timeout: float = 20.0
    max_output: int = 16_000

    def openai_schema(self) -> dict:
        # An MCP tool's `server.tool` goes out as server__tool: function names allow [A-Za-z0-9_-] only.
        return {"type": "function", "function": {"name": self.name.replace(".", "__"),
                                                 "description": self.description,
                                                 "parameters": self.parameters}}


async def _current_time(args: dict, ctx: ToolContext) -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


async def _calculator(args: dict, ctx: ToolContext) -> str:
    try:
        return str(evaluate(args.get("expression", "")))
    except CalculatorError as exc:
        raise ToolError(str(exc)) from None


class _VettedResolver(AbstractResolver):
    """Resolves once, refuses non-public addresses, and pins the connection to
    the vetted addresses (no second lookup for DNS rebinding to exploit). aiohttp
    never calls it for an IP literal: netguard.public_socket checks every address
    actually connected to, literal or resolved."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_UNSPEC) -> list[dict]:
        infos = await self.loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        addresses = [info[4][0] for info in infos]
        refused = [a for a in addresses if not public_address(a)]
        if not addresses or refused:
            raise ToolError(f"{host} resolves to a non-public address ({', '.join(refused) or 'none'}); refused")
        return [{"hostname": host, "host": info[4][0], "port": port, "family": info[0], "proto": 0,
                 "flags": socket.AI_NUMERICHOST} for info in infos]

    async def close(self) -> None:
        return None


def _target(url: Any) -> yarl.URL:
    """The URL as aiohttp will read it (one parser for the allow-list and the request)."""
    try:
        parsed = yarl.URL(url) if isinstance(url, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ToolError("url must be an absolute http(s) URL")
    if parsed.user is not None or parsed.password is not None:
        raise ToolError("url must not carry credentials (user@host)")
    return parsed


async def _http_get(args: dict, ctx: ToolContext) -> str:
    url = _target(args.get("url", ""))
    host = url.host.lower()
    if host not in ctx.allowed_hosts:
        raise ToolError(f"{host} is not on the administrator's allow-list for http_get")
    limit = 256 * 1024
    connector = aiohttp.TCPConnector(resolver=_VettedResolver(), use_dns_cache=False, force_close=True,
                                     socket_factory=public_socket)
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(url, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=15),
                                   headers={"User-Agent": "agentstead-http-get"}) as resp:
                body = await resp.content.read(limit + 1)
                text = body[:limit].decode(resp.charset or "utf-8", errors="replace")
                note = " (truncated)" if len(body) > limit else ""
                location = f"\nLocation: {resp.headers['Location']}" if "Location" in resp.headers else ""
                return f"HTTP {resp.status}{location}{note}\n\n{text}"
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.__cause__, ToolError):
            raise exc.__cause__ from None
        if isinstance(exc.os_error, NonPublicAddress) or "not a public address" in str(exc.os_error):
            raise ToolError(f"{host}: {exc.os_error}") from None
        raise ToolError(f"cannot connect: {exc.os_error}") from None
    except aiohttp.ClientError as exc:
        if isinstance(exc.__cause__, ToolError):
            raise exc.__cause__ from None
        raise ToolError(f"request failed: {exc}") from None


REGISTRY: dict[str, Tool] = {t.name: t for t in (
    Tool("current_time", "The current date and time (UTC, ISO 8601).",
         {"type": "object", "properties": {}, "additionalProperties": False}, _current_time, timeout=1),
    Tool("calculator", "Evaluate an arithmetic expression: + - * / // % **, parentheses, sqrt, log, "
         "sin, cos, tan, abs, round, min, max, floor, ceil, pi, e.",
         {"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"],
          "additionalProperties": False}, _calculator, timeout=2),
    Tool("http_get", "Fetch a web page by URL (GET, hosts allowed by the administrator only).",
         {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"],
          "additionalProperties": False}, _http_get, timeout=20, max_output=64_000),
    Tool(ASK_HUMAN, "Ask the user a question and wait for the answer.",
         {"type": "object", "properties": {"question": {"type": "string"}}, "required": ["question"],
          "additionalProperties": False}, None, timeout=0),
)}


async def run_tool(tool: Tool, args: Any, ctx: ToolContext, timeout: float) -> tuple[bool, str]:
    """(ok, output): the output is what the model sees, cut to the tool's limit."""
    if not isinstance(args, dict):
        return False, "arguments must be a JSON object"
    assert tool.run is not None
    try:
        async with asyncio.timeout(min(tool.timeout, timeout)):  # not wait_for: see runner/graph.py
            output = await tool.run(args, ctx)
        ok = True
    except ToolError as exc:
        output, ok = f"error: {exc}", False
    except TimeoutError:
        output, ok = f"error: {tool.name} took longer than {min(tool.timeout, timeout):g}s", False
    if len(output) > tool.max_output:
        output = output[: tool.max_output] + "\n[output truncated]"
    return ok, output
