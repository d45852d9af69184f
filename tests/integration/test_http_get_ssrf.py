"""http_get never reaches a private address, whatever the URL looks like: the check runs on
the address each socket connects to (aiohttp resolves no IP literal, so a check after DNS
alone let `127.0.0.1`, `0.0.0.0` and `user@127.0.0.1` through once an admin allow-listed them)."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from agentstead.agents.tools import REGISTRY, ToolContext, run_tool


@pytest.fixture
async def private_service():
    """A service on loopback that must never be reached; it counts who does."""
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="internal secret")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    yield server.port, hits
    await server.close()


@pytest.mark.parametrize("host,netloc", [
    ("127.0.0.1", "127.0.0.1"),
    ("0.0.0.0", "0.0.0.0"),                       # connects to this host on Linux
    ("127.0.0.1", "user@127.0.0.1"),               # userinfo before the literal
    ("::ffff:7f00:1", "[::ffff:127.0.0.1]"),        # IPv4-mapped IPv6
    ("::1", "[::1]"),
    # 127.0.0.1 as one decimal number, in octal, short: inet_aton reads them, aiohttp's URL
    # parser refuses them today; were it to accept one, the socket check still would not.
    ("2130706433", "2130706433"),
    ("0177.0.0.1", "0177.0.0.1"),
    ("127.1", "127.1"),
    ("localhost", "localhost"),                   # a name that resolves to loopback
])
async def test_private_addresses_are_refused_even_when_allow_listed(private_service, host, netloc):
    port, hits = private_service
    ok, output = await run_tool(REGISTRY["http_get"], {"url": f"http://{netloc}:{port}/secret"},
                                ToolContext(allowed_hosts=(host,)), timeout=10)
    assert not ok, output
    assert hits == [], f"{netloc} reached the private service"
    assert any(word in output for word in ("refused", "credentials", "canonical")), output


async def test_a_literal_is_refused_by_the_socket_check_before_any_packet():
    """No DNS for a literal: the refusal comes from the check on the connecting socket
    (192.0.2.1 is TEST-NET-1, reserved; nothing is sent, tests reach only loopback)."""
    ok, output = await run_tool(REGISTRY["http_get"], {"url": "http://192.0.2.1:9/"},
                                ToolContext(allowed_hosts=("192.0.2.1",)), timeout=10)
    assert not ok and "192.0.2.1 is not a public address; refused" in output
