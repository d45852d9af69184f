"""MCP tool call overhead: Agentstead's MCP tool source against the `mcp` client alone.

Starts tests/support/mcp_server.py (the `mcp` package's server, streamable HTTP on
loopback) and calls its `add` tool, interleaved in rounds:
  - baseline: the `mcp` Client's call_tool on an open connection (what a script does);
  - agentstead: agents/mcp_tools.py McpTools.call, the path a run's tool call takes
    (access check, allow-list, time limit, result to text, output cap) on its kept
    connection.
Prints the median per-call time of each and the difference.

    .venv/bin/python bench/mcp/run.py [--calls 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

from agentstead.agents.mcp_tools import McpTools  # noqa: E402


async def main(calls: int, rounds: int) -> None:
    port = 38000 + (int(time.time()) % 1000)
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests/support/mcp_server.py"), str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout.readline().startswith("ready")
    url = f"http://127.0.0.1:{port}/mcp"
    tools = McpTools([{"name": "b", "url": url, "headers": {}, "tools": (), "roles": ("member",), "users": (),
                       "timeout_seconds": 20.0, "max_output": 16000, "description": ""}], 300)
    await tools.refresh()
    base, ours = [], []
    try:
        async with httpx2.AsyncClient() as http, Client(streamable_http_client(url, http_client=http)) as client:
            await client.list_tools()
            for _ in range(20):   # warm both
                await client.call_tool("add", {"a": 1, "b": 2})
                await tools.call("b.add", {"a": 1, "b": 2}, 20, "member", "x@example.org")
            for _ in range(rounds):
                t0 = time.perf_counter()
                for i in range(calls):
                    await client.call_tool("add", {"a": 1, "b": i})
                base.append((time.perf_counter() - t0) / calls * 1000)
                t0 = time.perf_counter()
                for i in range(calls):
                    ok, _ = await tools.call("b.add", {"a": 1, "b": i}, 20, "member", "x@example.org")
                    assert ok
                ours.append((time.perf_counter() - t0) / calls * 1000)
    finally:
        await tools.stop()
        proc.kill()
    b, o = statistics.median(base), statistics.median(ours)
    print(f"rounds={rounds} calls/round={calls}")
    print(f"baseline (mcp Client.call_tool): median {b:.3f} ms/call  rounds {[round(x, 3) for x in base]}")
    print(f"agentstead (McpTools.call):      median {o:.3f} ms/call  rounds {[round(x, 3) for x in ours]}")
    print(f"overhead: {o - b:+.3f} ms/call, ratio {o / b:.3f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.rounds))
