"""Fixtures for identity tests: a real OIDC provider and an app on a known port."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from agentstead.app import create_app

from ..support.contract import CompatChecks, ContractClient
from ..support.llm_server import LLMServer
from ..support.oidc_provider import OIDCProvider
from ..support.procs import free_port


@pytest.fixture
async def llm():
    """The tests' OpenAI-compatible model server (one model, gpt-test), over HTTP on loopback.
    A module that needs another script or more models overrides it (pytest hands the override
    this one when it asks for `llm`)."""
    server = LLMServer(api_key="sk-test", models=("gpt-test",))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def checks():
    """Every response an SDK's client gets from the protocol adapters, validated against
    openapi-compat.yaml (hook it into the SDK's httpx client); at least one must have been."""
    checks = CompatChecks()
    yield checks
    assert checks.validated > 0


@pytest.fixture
async def provider():
    p = OIDCProvider(client_id="agentstead-test", client_secret="s3cret-value", redirect_uris=[])
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
async def oidc_app(aiohttp_client, provider, settings, tmp_path):
    """make(**setting_overrides) -> ContractClient of an app whose public URL is its own address,
    with the test provider configured as `test`."""
    async def make(**overrides) -> ContractClient:
        port = free_port()
        secret = tmp_path / "client_secret"
        secret.write_text("s3cret-value\n")
        public = f"http://127.0.0.1:{port}"
        provider.redirect_uris = [f"{public}/auth/callback/test"]
        configured = settings.replace(public_url=public, oidc_providers=({
            "name": "test", "issuer": provider.issuer, "client_id": "agentstead-test",
            "client_secret": "s3cret-value", "client_secret_file": str(secret),
            "display_name": "Test IdP", "scopes": ("openid", "email", "profile")},), **overrides)
        app = create_app(configured)
        client = await aiohttp_client(TestServer(app, host="127.0.0.1", port=port))
        return ContractClient(client, app)
    return make


async def sign_in(client: ContractClient, *, browser: aiohttp.ClientSession | None = None,
                  next_path: str = "/agents") -> aiohttp.ClientResponse:
    """Run the authorization-code flow like a browser; returns the app's final callback response."""
    start = await client.get(f"/auth/login/test?next={next_path}", allow_redirects=False)
    assert start.status == 302, await start.text()
    async with aiohttp.ClientSession() as idp_browser:
        at_idp = await idp_browser.get(start.headers["Location"], allow_redirects=False)
        assert at_idp.status == 302, await at_idp.text()
        back = at_idp.headers["Location"]
    path = back.split("/", 3)[3]
    return await client.get("/" + path, allow_redirects=False)
