"""Every route, every kind of caller: anonymous, member, another member, admin.

Table-driven; it grows with the API. A route that declares no access policy fails here.
"""

from __future__ import annotations

import re

import pytest

from agentstead.auth.access import PUBLIC, policy_of
from agentstead.keys import RATE_AUTH

from ..support.auth import token_user


def routes(app):
    for route in app.router.routes():
        if route.method in ("HEAD", "OPTIONS"):
            continue
        info = route.resource.get_info()
        yield route.method, info.get("formatter") or info.get("path"), route.handler


def test_every_route_declares_its_access(settings):
    from agentstead.app import create_app
    undeclared = [(m, p) for m, p, h in routes(create_app(settings)) if policy_of(h) is None]
    assert not undeclared


async def test_every_non_public_route_refuses_anonymous_callers(client):
    checked = 0
    for method, path, handler in routes(client.app):
        if policy_of(handler) == PUBLIC:
            continue
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        resp = await client.request(method, concrete, validate_contract=False,
                                    headers={"X-Forwarded-For": "203.0.113.7"})  # not a local caller
        assert resp.status in (401, 403), (method, path, resp.status)
        checked += 1
    assert checked >= 8


async def test_one_user_cannot_touch_anothers_resources(client):
    """User A against user B's resources, on every owner-scoped route."""
    _, a = await token_user(client, "a@example.org")
    b_user, b = await token_user(client, "b@example.org")
    b_token = (await (await client.get("/api/tokens", headers=b)).json())["tokens"][0]
    agent = await (await client.post("/api/agents", json={"name": "B's"}, headers=b)).json()
    definition = {"name": "B's", "start": "a", "steps": {"a": {"kind": "agent", "agent_id": agent["id"],
                                                               "input": "x"}}}
    workflow = await (await client.post("/api/workflows", json={"definition": definition}, headers=b)).json()
    gate = {"name": "Gate", "start": "g", "steps": {"g": {"kind": "approval", "prompt": "?", "on_approve": "a"},
                                                    "a": definition["steps"]["a"]}}
    waiting = await (await client.post("/api/workflows", json={"definition": gate}, headers=b)).json()
    run = await (await client.post(f"/api/workflows/{waiting['id']}/runs", json={}, headers=b)).json()
    cases = [
        ("DELETE", f"/api/tokens/{b_token['id']}", None, 404),
        ("PATCH", f"/api/admin/users/{b_user.id}", {"disabled": True}, 403),
        ("GET", "/api/admin/health", None, 403),
        ("GET", f"/api/workflows/{workflow['id']}", None, 404),
        ("PATCH", f"/api/workflows/{workflow['id']}", {"definition": definition}, 404),
        ("DELETE", f"/api/workflows/{workflow['id']}", None, 404),
        ("POST", f"/api/workflows/{workflow['id']}/runs", {"input": {}}, 404),
        ("POST", "/api/workflows", {"definition": definition}, 422),  # B's agent is unknown to A
        ("GET", f"/api/runs/{run['id']}", None, 404),
        ("POST", f"/api/runs/{run['id']}/resume", {"answer": {"approved": True}}, 404),
        ("POST", f"/api/runs/{run['id']}/cancel", None, 404),
    ]
    for method, path, body, status in cases:
        resp = await client.request(method, path, json=body, headers=a)
        assert resp.status == status, (method, path)
    # B's token still works, and A's list shows only A's tokens
    assert (await client.get("/api/me", headers=b)).status == 200
    mine = (await (await client.get("/api/tokens", headers=a)).json())["tokens"]
    assert b_token["id"] not in {t["id"] for t in mine}
    assert (await (await client.get("/api/workflows", headers=a)).json())["workflows"] == []
    assert (await (await client.get("/api/runs?kind=workflow", headers=a)).json())["runs"] == []
    # B's workflow and run are untouched
    assert (await (await client.get(f"/api/workflows/{workflow['id']}", headers=b)).json())["version"] == 1
    assert (await (await client.get(f"/api/runs/{run['id']}", headers=b)).json())["status"] in ("queued", "running",
                                                                                               "waiting_for_input")


@pytest.mark.parametrize("path", ["/auth/login/test", "/auth/link/nope"])
async def test_sign_in_rate_limit_hits_and_recovers(make_client, settings, path):
    client = await make_client(settings.replace(rate_limit_auth_per_minute=3))
    now = [1000.0]
    client.app[RATE_AUTH].clock = lambda: now[0]
    statuses = [(await client.get(path, allow_redirects=False)).status for _ in range(4)]
    assert statuses[:3] != [429] * 3 and statuses[3] == 429
    resp = await client.get(path, allow_redirects=False)
    assert int(resp.headers["Retry-After"]) >= 1
    assert (await resp.json())["error"]["code"] == "rate_limited"
    now[0] += 60  # a minute later the bucket has refilled
    assert (await client.get(path, allow_redirects=False)).status != 429


async def test_api_rate_limit_is_per_user(make_client, settings):
    client = await make_client(settings.replace(rate_limit_api_per_minute=5))
    _, a = await token_user(client, "a@example.org")
    _, b = await token_user(client, "b@example.org")
    assert [(await client.get("/api/me", headers=a)).status for _ in range(6)][-1] == 429
    assert (await client.get("/api/me", headers=b)).status == 200  # others unaffected
