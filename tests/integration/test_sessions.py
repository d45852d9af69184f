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
    link = await client.app[IDENTITY].users.login_link("ada@example.org", Context())
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
    ada = (await client.app[IDENTITY].users.list(limit=5, after=None, query="ada"))[0]
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
    expired = tokens.issue_access(service.sessions.keys, service.sessions.issuer, me["user"]["id"], me["auth"]["session_id"],
                                  ttl=30, now=0)
    put_cookie(client, "as_access", expired)
    resp = await client.get("/api/me")
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "token_expired"
    assert (await client.post("/auth/refresh", headers={"Origin": ORIGIN})).status == 200
    assert (await client.get("/api/me")).status == 200


async def _warm(client, times: int = 3) -> None:
    """Requests that leave the session's principal remembered in memory (the fast path)."""
    for _ in range(times):
        assert (await client.get("/api/me")).status == 200


async def test_revocation_of_a_remembered_session_takes_effect_on_the_next_request(client):
    """Every path that ends a session, tried while the session is served from memory."""
    from agentstead.keys import IDENTITY

    async def logout(headers, jar):
        assert (await client.post("/auth/logout", headers=headers)).status == 204

    async def logout_all(headers, jar):
        assert (await client.post("/auth/logout-all", headers=headers)).status == 200

    async def refresh_reuse(headers, jar):
        assert (await client.post("/auth/refresh", headers={"Origin": ORIGIN})).status == 200
        put_cookie(client, "as_refresh", jar["as_refresh"])  # the rotated one, replayed
        assert (await client.post("/auth/refresh", headers={"Origin": ORIGIN})).status == 401

    async def disable(headers, jar):
        me = await (await client.get("/api/me")).json()
        _, admin = await token_user(client, f"root-{me['user']['id'][:8]}@example.org", "admin", scopes=("admin",))
        assert (await client.patch(f"/api/admin/users/{me['user']['id']}", json={"disabled": True},
                                   headers=admin)).status == 200

    for i, end in enumerate((logout, logout_all, refresh_reuse, disable)):
        client.raw.session.cookie_jar.clear()
        headers = await browser_session(client, f"user{i}@example.org")
        jar = {c.key: c.value for c in client.raw.session.cookie_jar}
        await _warm(client)
        assert client.app[IDENTITY].principals.cached_session(jar["as_access"]) is not None, "not served from memory"
        await end(headers, jar)
        put_jar(client, {"as_access": jar["as_access"]})  # the browser (or a thief) kept the old cookie
        resp = await client.get("/api/me")
        assert resp.status == 401, end.__name__
        assert (await resp.json())["error"]["code"] in ("session_ended", "account_disabled"), end.__name__


async def test_role_change_of_a_remembered_session_applies_to_the_next_request(client):
    headers = await browser_session(client, "boss@example.org", role="admin")
    await _warm(client)
    assert (await client.get("/api/admin/users")).status == 200
    me = await (await client.get("/api/me")).json()
    _, root = await token_user(client, "root@example.org", "admin", scopes=("admin",))
    resp = await client.patch(f"/api/admin/users/{me['user']['id']}", json={"role": "member"}, headers=root)
    assert resp.status == 200
    assert (await client.get("/api/admin/users")).status == 403
    assert (await (await client.get("/api/me")).json())["user"]["role"] == "member"
    resp = await client.patch(f"/api/admin/users/{me['user']['id']}", json={"role": "admin"}, headers=headers)
    assert resp.status == 403  # and it cannot promote itself back


async def test_remembered_access_token_is_refused_once_expired(client):
    """A principal is remembered only until its access token's `exp` (an epoch compare)."""
    import asyncio
    import time

    from agentstead.auth import tokens
    from agentstead.keys import IDENTITY
    await browser_session(client, "ada@example.org")
    service = client.app[IDENTITY]
    me = await (await client.get("/api/me")).json()
    exp = int(time.time()) + 2
    short = tokens.issue_access(service.sessions.keys, service.sessions.issuer, me["user"]["id"], me["auth"]["session_id"],
                                ttl=exp - time.time(), now=time.time())
    put_cookie(client, "as_access", short)
    await _warm(client)
    assert service.principals.cached_session(short) is not None
    await asyncio.sleep(max(0.0, exp - time.time()) + 0.05)
    resp = await client.get("/api/me")
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "token_expired"


async def test_quoted_cookie_cannot_smuggle_an_access_token(client):
    """`other="x; as_access=<valid>; y=z"` is one quoted cookie, not a second one (RFC 6265)."""
    await browser_session(client, "ada@example.org")
    token = cookie(client, "as_access")
    await _warm(client)
    client.raw.session.cookie_jar.clear()
    resp = await client.get("/api/me", headers={"Cookie": f'other="x; as_access={token}; y=z"'})
    assert resp.status == 401
    resp = await client.get("/api/me", headers={"Cookie": f"theme=dark; as_access={token}; lang=en"})
    assert resp.status == 200
