"""MCP servers as a tool source, against a real MCP server (tests/support/mcp_server.py,
the `mcp` package's own server over streamable HTTP on loopback, in a subprocess) and
real chat runs through the tests' OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from agentstead.keys import MCP

from ..support.auth import token_user
from ..support.llm_server import ToolCall, Turn
from .test_runs import settle, send, thread_messages

SERVER = Path(__file__).resolve().parents[1] / "support" / "mcp_server.py"
SECRET = "s3cr3t-mcp-header-value"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class McpProcess:
    """The test MCP server as a subprocess (so a test can kill it)."""

    def __init__(self, *args: str):
        self.port = _free_port()
        self.proc = subprocess.Popen([sys.executable, str(SERVER), str(self.port), *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("ready"), f"the MCP test server did not start: {line!r}"
        self.url = f"http://127.0.0.1:{self.port}/mcp"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def mcp_server():
    server = McpProcess()
    yield server
    server.kill()


def server_entry(name: str, url: str, headers_file: str = "", **extra) -> dict:
    return {"name": name, "url": url, "headers_file": headers_file, "tools": (), "roles": ("admin", "member"),
            "users": (), "description": "", "timeout_seconds": 3.0, "max_output": 500,
            "headers": {"X-Test-Secret": SECRET} if headers_file else {}, **extra}


@pytest.fixture
async def mcp_app(make_client, settings, llm, mcp_server, tmp_path):
    """make(*servers) -> (client, member headers, admin headers), the servers' tools listed."""
    async def make(*servers: dict, **overrides):
        headers_file = tmp_path / "mcp-headers"
        headers_file.write_text(f"X-Test-Secret: {SECRET}\n")
        servers = servers or (server_entry("tests", mcp_server.url, str(headers_file)),)
        providers = ({"name": "local", "base_url": llm.base_url, "api_key_file": "", "api_key": "sk-test",
                      "models": ("gpt-test",), "default_model": "gpt-test"},)
        client = await make_client(settings.replace(llm_providers=providers, llm_max_retries=0,
                                                    mcp_servers=servers, **overrides))
        await client.app[MCP].refresh()
        _, member = await token_user(client, "ada@example.org")
        _, admin = await token_user(client, "root@example.org", role="admin", scopes=("read", "write", "admin"))
        return client, member, admin
    return make


async def agent_thread(client, headers, tools) -> tuple[dict, dict]:
    resp = await client.post("/api/agents", json={"name": "M", "tools": tools}, headers=headers)
    assert resp.status == 201, await resp.text()
    agent = await resp.json()
    resp = await client.post("/api/threads", json={"agent_id": agent["id"], "title": "t"}, headers=headers)
    assert resp.status == 201
    return agent, await resp.json()


async def test_tools_are_listed_namespaced_and_recorded_in_the_agent_version(mcp_app):
    client, member, _ = await mcp_app()
    tools = (await (await client.get("/api/tools", headers=member)).json())["tools"]
    mcp = {t["name"]: t for t in tools if t["source"] == "mcp"}
    assert {"tests.echo", "tests.add", "tests.slow", "tests.fail", "tests.huge", "tests.whoami"} <= set(mcp)
    assert mcp["tests.add"]["server"] == "tests" and mcp["tests.add"]["parameters"]["required"] == ["a", "b"]
    assert "calculator" in {t["name"] for t in tools if t["source"] == "builtin"}
    agent, _ = await agent_thread(client, member, ["calculator", "tests.echo"])
    assert agent["tools"] == ["calculator", "tests.echo"]
    assert agent["tool_schemas"] == {"tests.echo": {"description": "Echo the text back.",
                                                    "parameters": mcp["tests.echo"]["parameters"]}}
    resp = await client.post("/api/agents", json={"name": "X", "tools": ["tests.nope"]}, headers=member)
    assert resp.status == 422 and "offers no tool" in (await resp.json())["error"]["message"]


async def test_an_agent_calls_an_mcp_tool_and_the_result_reaches_the_transcript(mcp_app, llm, caplog):
    caplog.set_level(logging.DEBUG)
    client, member, _ = await mcp_app()
    llm.script = [Turn(tool_calls=[ToolCall("tests__add", {"a": 2, "b": 40})]),
                  Turn(tool_calls=[ToolCall("tests__whoami", {})]), Turn("It is 42.")]
    _, thread = await agent_thread(client, member, ["tests.add", "tests.whoami"])
    run = await settle(client, member, (await send(client, member, thread["id"], "2 + 40?"))["id"])
    assert run["status"] == "succeeded", run
    messages = await thread_messages(client, member, thread["id"])
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert messages[2]["content"] == "42"
    # the credentials header reached the server, and nothing of it was logged or sent as an event
    assert messages[4]["content"].startswith(f"secret-length={len(SECRET)}")
    sent = {t["function"]["name"]: t["function"] for t in llm.requests[0]["tools"]}
    assert set(sent) == {"tests__add", "tests__whoami"} and sent["tests__add"]["description"] == "Add two integers."
    assert SECRET not in caplog.text
    events = await (await client.get(f"/api/runs/{run['id']}", headers=member)).text()
    assert SECRET not in events


async def test_errors_slow_and_huge_tools_fail_the_call_not_the_run(mcp_app, llm):
    client, member, _ = await mcp_app()
    llm.script = [Turn(tool_calls=[ToolCall("tests__fail", {}), ToolCall("tests__slow", {"seconds": 30}),
                                   ToolCall("tests__huge", {"size": 100_000})]), Turn("Done.")]
    _, thread = await agent_thread(client, member, ["tests.fail", "tests.slow", "tests.huge"])
    run = await settle(client, member, (await send(client, member, thread["id"], "go"))["id"], timeout=30)
    assert run["status"] == "succeeded", run
    results = [m["content"] for m in await thread_messages(client, member, thread["id"]) if m["role"] == "tool"]
    assert results[0].startswith("error: tests.fail failed:")
    assert results[1] == "error: tests.slow took longer than 3s"
    assert results[2].endswith("[output truncated]") and len(results[2]) < 600
    # after the slow call timed out the connection still serves
    ok, out = await client.app[MCP].call("tests.echo", {"text": "again"}, 5, "member", "ada@example.org")
    assert ok and out == "echo: again"


async def test_a_server_that_dies_fails_the_call_and_readyz_degrades(mcp_app, llm, mcp_server):
    client, member, admin = await mcp_app()
    llm.script = [Turn(tool_calls=[ToolCall("tests__echo", {"text": "hi"})]), Turn("Sorry.")]
    _, thread = await agent_thread(client, member, ["tests.echo"])
    ready = await (await client.get("/api/admin/health", headers=admin)).json()
    assert ready["checks"]["mcp"]["ok"] and ready["status"] == "ok"
    mcp_server.kill()
    run = await settle(client, member, (await send(client, member, thread["id"], "echo"))["id"], timeout=30)
    assert run["status"] == "succeeded", run
    result = [m["content"] for m in await thread_messages(client, member, thread["id"]) if m["role"] == "tool"][0]
    assert result.startswith("error: MCP server 'tests' failed:"), result
    resp = await client.post("/api/admin/mcp-servers/tests/refresh", headers=admin)
    assert resp.status == 200 and (await resp.json())["status"] == "error"
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 200 and body["status"] == "degraded" and body["degraded"] == ["mcp"], body
    # the tools cached before it died still list (an agent keeps working once it is back)
    listed = (await (await client.get("/api/admin/mcp-servers", headers=admin)).json())["servers"][0]
    assert listed["status"] == "error" and "tests.echo" in {t["name"] for t in listed["tools"]}


async def test_a_server_that_answers_garbage_or_is_not_there(mcp_app, llm, settings):
    garbage = McpProcess("--garbage")
    try:
        client, member, admin = await mcp_app(server_entry("junk", garbage.url),
                                              server_entry("gone", f"http://127.0.0.1:{_free_port()}/mcp"))
        servers = {s["name"]: s for s in (await (await client.get("/api/admin/mcp-servers",
                                                                   headers=admin)).json())["servers"]}
        assert servers["junk"]["status"] == "error" and servers["gone"]["status"] == "error"
        assert "ConnectError" in servers["gone"]["error"]
        resp = await client.post("/api/agents", json={"name": "X", "tools": ["gone.echo"]}, headers=member)
        assert resp.status == 422 and "unreachable" in (await resp.json())["error"]["message"]
        ok, out = await client.app[MCP].call("junk.echo", {}, 5, "member", "ada@example.org")
        assert not ok and out.startswith("error: MCP server 'junk' failed:"), out
    finally:
        garbage.kill()


async def test_a_member_cannot_use_a_server_the_admin_did_not_grant(mcp_app, mcp_server, llm):
    client, member, admin = await mcp_app(server_entry("tests", mcp_server.url, roles=("admin",),
                                                       users=("bob@example.org",)))
    names = {t["name"] for t in (await (await client.get("/api/tools", headers=member)).json())["tools"]}
    assert not any(n.startswith("tests.") for n in names)
    resp = await client.post("/api/agents", json={"name": "X", "tools": ["tests.echo"]}, headers=member)
    assert resp.status == 422 and "is available to you" in (await resp.json())["error"]["message"]
    assert "tests.echo" in {t["name"] for t in (await (await client.get("/api/tools", headers=admin)).json())["tools"]}
    _, bob = await token_user(client, "bob@example.org")
    resp = await client.post("/api/agents", json={"name": "B", "tools": ["tests.echo"]}, headers=bob)
    assert resp.status == 201
    assert (await client.get("/api/admin/mcp-servers", headers=member)).status == 403
