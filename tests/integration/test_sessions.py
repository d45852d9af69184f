"""Browser sessions: cookies, refresh rotation and reuse detection, CSRF, logout."""

from __future__ import annotations

import sqlite3

from ..support.auth import browser_session, make_user, token_user

ORIGIN = "http://localhost:47294"  # the default public URL


def put_cookie(client, name, value):
    """Replace a cookie in the client's jar, as a browser (or an attacker) holding it would send it."""
    from http.cookies import SimpleCookie

    jar = client.raw.session.cookie_jar
    jar.clear(lambda c: c.key == name)
    morsel = SimpleCookie()
    morsel[name] = value
    morsel[name]["path"] = "/auth" if "refresh" in name else "/"
    jar.update_cookies(morsel, response_url=client.raw.make_url("/auth/refresh"))


def put_jar(client, cookies: dict):
    client.raw.session.cookie_jar.clear()
    for name, value in cookies.items():
        put_cookie(client, name, value)


def cookie(client, name):
    for c in client.raw.session.cookie_jar:
        if c.key == name:
            return c.value
    return None


async def test_sign_in_link_is_single_use_and_sets_httponly_cookies(client):
    headers = await browser_session(client, "ada@example.org")
    me = await (await client.get("/api/me")).json()
    assert me["user"]["email"] == "ada@example.org" and me["csrf_token"] == headers["X-CSRF-Token"]
    from agentstead.keys import IDENTITY
    from agentstead.services.identity import Context
    link = await client.app[IDENTITY].login_link("ada@example.org", Context())
    path = "/auth/link/" + link.rsplit("/", 1)[1]
    client.raw.session.cookie_jar.clear()
    first = await client.get(path, allow_redirects=False)
    assert first.cookies["as_access"]["httponly"] and first.cookies["as_refresh"]["httponly"]
    second = await client.get(path, allow_redirects=False)
    assert second.headers["Location"].endswith("/signin?error=link_invalid")


async def test_refresh_rotates_and_reuse_revokes_the_family(client, settings):
    headers = await browser_session(client, "ada@example.org")
    old_refresh = cookie(client, "as_refresh")
    resp = await client.post("/auth/refresh", headers={"Origin": ORIGIN})
    assert resp.status == 200
    body = await resp.json()
    assert body["user"]["email"] == "ada@example.org" and body["csrf_token"] == headers["X-CSRF-Token"]
    new_refresh = cookie(client, "as_refresh")
    assert new_refresh and new_refresh != old_refresh
    with sqlite3.connect(settings.db_file) as conn:
        stored = [r[0] for r in conn.execute("SELECT token_hash FROM refresh_tokens")]
    assert old_refresh not in stored and new_refresh not in stored  # only hashes are kept

    # An attacker replays the old (rotated) refresh token: the whole family is revoked.
    put_cookie(client, "as_refresh", old_refresh)
    resp = await client.post("/auth/refresh", headers={"Origin": ORIGIN})
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "session_revoked"
    put_cookie(client, "as_refresh", new_refresh)
    resp = await client.post("/auth/refresh", headers={"Origin": ORIGIN})
    assert resp.status == 401  # the legitimate holder is out too
    with sqlite3.connect(settings.db_file) as conn:
        assert conn.execute("SELECT count(*) FROM audit_log WHERE action = 'session.reuse_detected'").fetchone()[0] == 1


async def test_refresh_refuses_foreign_origin_and_missing_cookie(client):
    await browser_session(client, "ada@example.org")
    resp = await client.post("/auth/refresh", headers={"Origin": "https://evil.example"})
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "csrf_failed"
    client.raw.session.cookie_jar.clear()
    resp = await client.post("/auth/refresh", headers={"Origin": ORIGIN})
    assert resp.status == 401


async def test_tampered_access_cookie_is_refused(client):
    await browser_session(client, "ada@example.org")
    token = cookie(client, "as_access")
    head, payload, sig = token.split(".")
    import base64
    import json
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    for bad in (f"{head}.{forged}.{sig}", f"{head}.{payload}.{sig[:-4]}AAAA", "garbage"):
        put_cookie(client, "as_access", bad)
        resp = await client.get("/api/me")
        assert resp.status == 401, bad


async def test_alg_none_access_token_is_refused(client):
    await browser_session(client, "ada@example.org")
    import base64
    import json
    token = cookie(client, "as_access")
    payload = token.split(".")[1]
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    put_cookie(client, "as_access", f"{header}.{payload}.")
    assert (await client.get("/api/me")).status == 401


async def test_cookie_session_needs_csrf_token_and_allowed_origin(client):
    headers = await browser_session(client, "ada@example.org")
    body = {"name": "ci"}
    resp = await client.post("/api/tokens", json=body, headers={"Origin": ORIGIN})
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "csrf_failed"
    resp = await client.post("/api/tokens", json=body, headers={**headers, "Origin": "https://evil.example"})
    assert resp.status == 403
    resp = await client.post("/api/tokens", json=body, headers={"X-CSRF-Token": headers["X-CSRF-Token"]})
    assert resp.status == 403  # no Origin at all
    resp = await client.post("/api/tokens", json=body, headers={**headers, "X-CSRF-Token": "x" * 43})
    assert resp.status == 403
    assert (await (await client.get("/api/tokens")).json())["tokens"] == []  # nothing was created
    resp = await client.post("/api/tokens", json=body, headers=headers)
    assert resp.status == 201


async def test_csrf_token_of_another_session_does_not_work(client):
    other = await browser_session(client, "bob@example.org")
    client.raw.session.cookie_jar.clear()
    await browser_session(client, "ada@example.org")
    resp = await client.post("/api/tokens", json={"name": "x"}, headers=other)
    assert resp.status == 403


async def test_logout_ends_this_session_only(client):
    headers = await browser_session(client, "ada@example.org")
    jar_a = {c.key: c.value for c in client.raw.session.cookie_jar}
    client.raw.session.cookie_jar.clear()
    await browser_session(client, "ada@example.org", create=False)  # a second device
    jar_b = {c.key: c.value for c in client.raw.session.cookie_jar}

    put_jar(client, jar_a)
    resp = await client.post("/auth/logout", headers=headers)
    assert resp.status == 204
    put_jar(client, jar_a)  # even if the browser kept the cookie
    assert (await client.get("/api/me")).status == 401
    put_jar(client, jar_b)
    assert (await client.get("/api/me")).status == 200


async def test_logout_everywhere(client):
    await browser_session(client, "ada@example.org")
    jar_a = {c.key: c.value for c in client.raw.session.cookie_jar}
    client.raw.session.cookie_jar.clear()
    headers = await browser_session(client, "ada@example.org", create=False)
    resp = await client.post("/auth/logout-all", headers=headers)
    assert resp.status == 200 and (await resp.json())["sessions_revoked"] == 2
    put_jar(client, jar_a)
    assert (await client.get("/api/me")).status == 401
    resp = await client.post("/auth/refresh", headers={"Origin": ORIGIN})
    assert resp.status == 401


async def test_disabled_users_live_session_and_tokens_stop_at_once(client):
    await browser_session(client, "ada@example.org")
    from agentstead.keys import IDENTITY
    ada = (await client.app[IDENTITY].list_users(limit=5, after=None, query="ada"))[0]
    from ..support.auth import api_token, bearer
    ada_token = bearer(await api_token(client.app, ada))
    assert (await client.get("/api/me")).status == 200
    _, admin = await token_user(client, "root@example.org", "admin", scopes=("admin",))
    resp = await client.patch(f"/api/admin/users/{ada.id}", json={"disabled": True}, headers=admin)
    assert resp.status == 200 and (await resp.json())["disabled"] is True
    assert (await client.get("/api/me")).status == 401
    assert (await client.get("/api/me", headers=ada_token)).status == 401
    assert (await client.post("/auth/refresh", headers={"Origin": ORIGIN})).status == 401


async def test_access_token_expiry_then_refresh(make_client, settings):
    client = await make_client(settings.replace(access_token_ttl_seconds=30))
    await make_user(client.app, "ada@example.org")
    await browser_session(client, "ada@example.org", create=False)
    from agentstead.auth import tokens
    from agentstead.keys import IDENTITY
    service = client.app[IDENTITY]
    me = await (await client.get("/api/me")).json()
    expired = tokens.issue_access(service.keys, service.issuer, me["user"]["id"], me["auth"]["session_id"],
                                  ttl=30, now=0)
    put_cookie(client, "as_access", expired)
    resp = await client.get("/api/me")
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "token_expired"
    assert (await client.post("/auth/refresh", headers={"Origin": ORIGIN})).status == 200
    assert (await client.get("/api/me")).status == 200
