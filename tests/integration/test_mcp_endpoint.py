"""Agentstead as an MCP server: the `mcp` package's real client (over streamable HTTP)
against the real app's /mcp, each agent a tool, runs through the tests' LLM server."""

from __future__ import annotations

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from ..support.auth import api_token, bearer, token_user
from ..support.llm_server import Turn


@pytest.fixture
async def app(make_client, settings, llm):
    providers = ({"name": "local", "base_url": llm.base_url, "api_key_file": "", "api_key": "sk-test",
                  "models": ("gpt-test",), "default_model": "gpt-test"},)
    return await make_client(settings.replace(llm_providers=providers, llm_max_retries=0, max_body_size=64 * 1024))


def connect(client, headers: dict) -> Client:
    url = str(client.raw.make_url("/mcp"))
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers)))


async def agent(client, headers, name: str) -> dict:
    resp = await client.post("/api/agents", json={"name": name, "instructions": "Be brief."}, headers=headers)
    assert resp.status == 201
    return await resp.json()


async def test_list_the_agents_and_call_one_with_a_thread(app, llm):
    _, ada = await token_user(app, "ada@example.org")
    _, bob = await token_user(app, "bob@example.org")
    helper = await agent(app, ada, "Helper")
    await agent(app, bob, "Bob's")
    llm.script = [Turn("Hello from the agent."), Turn("Still here.")]
    async with connect(app, ada) as mcp:
        tools = (await mcp.list_tools()).tools
        assert [t.title for t in tools] == ["Helper"]          # only the caller's agents
        name = tools[0].name
        assert name == "agent_" + helper["id"].replace("-", "") and tools[0].input_schema["required"] == ["message"]
        result = await mcp.call_tool(name, {"message": "Hi!"})
        assert not result.is_error and result.content[0].text == "Hello from the agent."
        thread_id = result.structured_content["thread_id"]
        again = await mcp.call_tool(name, {"message": "And now?", "thread_id": thread_id})
        assert again.content[0].text == "Still here." and again.structured_content["thread_id"] == thread_id
        bad = await mcp.call_tool(name, {"message": ""})
        assert bad.is_error and "message must be" in bad.content[0].text
        missing = await mcp.call_tool("agent_nope", {"message": "x"})
        assert missing.is_error and "no agent tool" in missing.content[0].text
    # a run like any other: in the thread, with usage
    messages = (await (await app.get(f"/api/threads/{thread_id}", headers=ada)).json())["messages"]
    assert [m["content"] for m in messages] == ["Hi!", "Hello from the agent.", "And now?", "Still here."]
    usage = (await (await app.get("/api/usage", headers=ada)).json())["usage"]
    assert usage[0]["runs"] == 2
    # a read-only token lists but cannot call
    carol, writer = await token_user(app, "carol@example.org")
    await agent(app, writer, "Carol's")
    reader = bearer(await api_token(app.app, carol, scopes=("read",)))
    async with connect(app, reader) as mcp:
        tools = (await mcp.list_tools()).tools
        assert [t.title for t in tools] == ["Carol's"]
        refused = await mcp.call_tool(tools[0].name, {"message": "hi"})
        assert refused.is_error and "write scope" in refused.content[0].text


async def test_a_bad_token_is_401_and_an_oversized_body_413(app):
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        resp = await app.raw.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, headers=headers)
        assert resp.status == 401 and (await resp.json())["error"]["code"]
    with pytest.raises(Exception):
        async with connect(app, {"Authorization": "Bearer not-a-token"}) as mcp:
            await mcp.list_tools()
    _, ada = await token_user(app, "ada@example.org")
    resp = await app.raw.post("/mcp", data=b"{" + b" " * 70_000 + b"}", headers={**ada, "Content-Type": "application/json"})
    assert resp.status == 413
    resp = await app.raw.post("/mcp", data=b"not json", headers={**ada, "Content-Type": "application/json",
                                                                    "Accept": "application/json, text/event-stream"})
    assert 400 <= resp.status < 500
