"""A real MCP server for the tests, built with the `mcp` package (MCPServer over
streamable HTTP on loopback): echo, add, a slow tool, one that errors, one with a
huge output, and one that shows which headers it was sent.

    python tests/support/mcp_server.py PORT [--garbage]

`--garbage` answers every request on /mcp with bytes that are not MCP.
Prints "ready PORT" once it listens. Run as a subprocess so a test can kill it.
"""

from __future__ import annotations

import asyncio
import sys

import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

server = MCPServer("agentstead-test")


@server.tool(description="Echo the text back.")
def echo(text: str) -> str:
    return f"echo: {text}"


@server.tool(description="Add two integers.")
def add(a: int, b: int) -> int:
    return a + b


@server.tool(description="Sleep for the given seconds, then answer.")
async def slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return f"slept {seconds}"


@server.tool(description="Always fails.")
def fail() -> str:
    raise ValueError("this tool always fails")


@server.tool(description="A very long answer.")
def huge(size: int = 100_000) -> str:
    return "x" * size


@server.tool(description="Which request headers it got (names only, and the value of X-Test-Secret's length).")
def whoami(ctx: Context) -> str:
    request = ctx.request_context.request
    headers = getattr(request, "headers", {}) or {}
    secret = headers.get("x-test-secret", "")
    return f"secret-length={len(secret)} authorization={'yes' if headers.get('authorization') else 'no'}"


async def _garbage(request):
    return PlainTextResponse("<<not json-rpc>>\x00\x01", media_type="application/json")


def main() -> None:
    port = int(sys.argv[1])
    if "--garbage" in sys.argv:
        app = Starlette(routes=[Route("/mcp", _garbage, methods=["GET", "POST", "DELETE"])])
    else:
        app = server.streamable_http_app()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(uv.serve())
        while not uv.started:
            await asyncio.sleep(0.02)
        print(f"ready {port}", flush=True)
        await task
    asyncio.run(serve())


if __name__ == "__main__":
    main()
