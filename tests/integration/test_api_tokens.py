"""API tokens: shown once, hashed, scoped, expiring, revocable, never in a URL."""

from __future__ import annotations

import sqlite3

from agentstead.keys import IDENTITY

from ..support.auth import bearer, token_user


async def test_create_use_list_revoke(client, settings):
    user, setup = await token_user(client, "ada@example.org")
    resp = await client.post("/api/tokens", json={"name": "ci", "scopes": ["read"], "expires_in_days": 7},
                             headers=setup)
    assert resp.status == 201
    created = await resp.json()
    plain = created["token"]
    assert plain.startswith("ast_") and created["scopes"] == ["read"] and created["expires_at"]
    with sqlite3.connect(settings.db_file) as conn:
        hashes = [r[0] for r in conn.execute("SELECT token_hash FROM api_tokens")]
    assert plain not in hashes and all(len(h) == 64 for h in hashes)

    listed = await (await client.get("/api/tokens", headers=bearer(plain))).json()
    assert {t["name"] for t in listed["tokens"]} == {"ci", "test token"}
    assert all("token" not in t for t in listed["tokens"])  # the value is never shown again

    me = await (await client.get("/api/me", headers=bearer(plain))).json()
    assert me["auth"] == {"via": "token", "scopes": ["read"], "session_id": None, "token_id": created["id"]}

    # read scope cannot write
    resp = await client.post("/api/tokens", json={"name": "x"}, headers=bearer(plain))
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "insufficient_scope"

    assert (await client.delete(f"/api/tokens/{created['id']}", headers=setup)).status == 204
    resp = await client.get("/api/me", headers=bearer(plain))
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "token_revoked"
    assert (await client.delete(f"/api/tokens/{created['id']}", headers=setup)).status == 404


async def test_last_used_time_is_recorded(client):
    _, headers = await token_user(client, "ada@example.org")
    assert (await client.get("/api/me", headers=headers)).status == 200
    await client.app[IDENTITY].tokens.flush_use()
    tokens = (await (await client.get("/api/tokens", headers=headers)).json())["tokens"]
    assert tokens[0]["last_used_at"] is not None


async def test_expired_token_is_refused(client, settings):
    _, headers = await token_user(client, "ada@example.org")
    with sqlite3.connect(settings.db_file) as conn:
        conn.execute("UPDATE api_tokens SET expires_at = '2000-01-01T00:00:00.000000Z'")
    resp = await client.get("/api/me", headers=headers)
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "token_expired"


async def test_token_expiring_while_remembered_is_refused_on_the_next_request(client, settings):
    """The resolved principal is kept in memory until the token's expiry (an epoch compare):
    after that instant the very next request is refused, without a restart or a write."""
    import asyncio
    import datetime as dt

    from agentstead.timeutil import iso
    _, headers = await token_user(client, "ada@example.org")
    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1.5)
    with sqlite3.connect(settings.db_file) as conn:
        conn.execute("UPDATE api_tokens SET expires_at = ?", (iso(soon),))
    for _ in range(3):  # first use loads it; later ones are served from memory
        assert (await client.get("/api/me", headers=headers)).status == 200
    await asyncio.sleep(max(0.0, (soon - dt.datetime.now(dt.timezone.utc)).total_seconds()) + 0.05)
    resp = await client.get("/api/me", headers=headers)
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "token_expired"


async def test_revoked_token_is_refused_while_its_twin_still_works(client):
    """Revocation drops every remembered principal; other tokens resolve again and still work."""
    user, setup = await token_user(client, "ada@example.org")
    from ..support.auth import api_token
    twin = bearer(await api_token(client.app, user))
    for _ in range(2):
        assert (await client.get("/api/me", headers=setup)).status == 200
        assert (await client.get("/api/me", headers=twin)).status == 200
    token_id = (await (await client.get("/api/me", headers=setup)).json())["auth"]["token_id"]
    assert (await client.delete(f"/api/tokens/{token_id}", headers=twin)).status == 204
    resp = await client.get("/api/me", headers=setup)
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "token_revoked"
    assert (await client.get("/api/me", headers=twin)).status == 200


async def test_api_token_sent_as_the_access_cookie_is_refused(client):
    """Tokens and sessions are remembered in separate maps: a warm API token in the cookie is no session."""
    _, headers = await token_user(client, "ada@example.org")
    assert (await client.get("/api/me", headers=headers)).status == 200
    token = headers["Authorization"].split()[1]
    resp = await client.get("/api/me", headers={"Cookie": f"as_access={token}"})
    assert resp.status == 401


async def test_token_in_query_string_is_never_accepted(client):
    _, headers = await token_user(client, "ada@example.org")
    token = headers["Authorization"].split()[1]
    for param in ("access_token", "token", "api_key"):
        resp = await client.get(f"/api/me?{param}={token}")
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "token_in_url"
    # even on public routes, and even alongside a valid header
    assert (await client.get(f"/healthz?access_token={token}")).status == 400
    assert (await client.get(f"/api/me?access_token={token}", headers=headers)).status == 400


async def test_bad_authorization_headers(client):
    for value in ("Bearer", "Basic YTpi", "Bearer ast_unknown", "Bearer eyJhbGciOiJub25lIn0.e30."):
        resp = await client.get("/api/me", headers={"Authorization": value})
        assert resp.status == 401, value
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_scopes_cannot_exceed_the_role_or_the_creator(client):
    _, member = await token_user(client, "ada@example.org")
    resp = await client.post("/api/tokens", json={"name": "x", "scopes": ["admin"]}, headers=member)
    assert resp.status == 403
    _, admin_write = await token_user(client, "root@example.org", "admin", scopes=("write",))
    resp = await client.post("/api/tokens", json={"name": "x", "scopes": ["admin"]}, headers=admin_write)
    assert resp.status == 403  # a write token cannot mint an admin token


async def test_token_of_a_demoted_admin_loses_admin_scope(client):
    root, _ = await token_user(client, "root@example.org", "admin", scopes=("admin",))
    other, other_headers = await token_user(client, "boss@example.org", "admin", scopes=("admin",))
    assert (await client.get("/api/admin/users", headers=other_headers)).status == 200
    from ..support.auth import api_token
    root_headers = bearer(await api_token(client.app, root, scopes=("admin",)))
    assert (await client.patch(f"/api/admin/users/{other.id}", json={"role": "member"},
                               headers=root_headers)).status == 200
    assert (await client.get("/api/admin/users", headers=other_headers)).status == 403


async def test_malformed_token_requests(client):
    _, headers = await token_user(client, "ada@example.org")
    cases = [
        ({"scopes": ["read"]}, "/name"),
        ({"name": ""}, "/name"),
        ({"name": "x", "scopes": ["root"]}, "/scopes"),
        ({"name": "x", "scopes": []}, "/scopes"),
        ({"name": "x", "expires_in_days": 0}, "/expires_in_days"),
        ({"name": "x", "expires_in_days": 100000}, "/expires_in_days"),
        ({"name": "x", "colour": "red"}, "/colour"),
        (["name"], ""),
    ]
    for body, pointer in cases:
        resp = await client.post("/api/tokens", json=body, headers=headers)
        assert resp.status == 422, body
        assert (await resp.json())["error"]["details"]["errors"][0]["pointer"] == pointer
    resp = await client.post("/api/tokens", data=b"{", headers={**headers, "Content-Type": "application/json"})
    assert resp.status == 400
    resp = await client.post("/api/tokens", data=b"name=x", headers={**headers, "Content-Type": "text/plain"})
    assert resp.status == 415
    tokens = (await (await client.get("/api/tokens", headers=headers)).json())["tokens"]
    assert len(tokens) == 1  # none of the bad requests created anything
