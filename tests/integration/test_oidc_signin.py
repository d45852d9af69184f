"""Sign-in through a real OpenID provider over HTTP, and every attack on it."""

from __future__ import annotations

import sqlite3
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from ..support.auth import make_user, token_user
from ..support.oidc_provider import Knobs
from .conftest import sign_in


def error_of(resp) -> str | None:
    location = resp.headers.get("Location", "")
    query = parse_qs(urlsplit(location).query)
    return query.get("error", [None])[0] if urlsplit(location).path == "/signin" else None


def audit_rows(settings, action="auth.signin"):
    with sqlite3.connect(settings.db_file) as conn:
        return conn.execute("SELECT outcome, details FROM audit_log WHERE action = ? ORDER BY id",
                            (action,)).fetchall()


def user_count(settings) -> int:
    with sqlite3.connect(settings.db_file) as conn:
        return conn.execute("SELECT count(*) FROM users").fetchone()[0]


async def test_full_round_trip_signs_in_with_pkce_state_and_nonce(oidc_app, provider, settings):
    client = await oidc_app(signup_policy="open")
    providers = await (await client.get("/auth/providers")).json()
    assert providers == {"providers": [{"name": "test", "display_name": "Test IdP", "login_url": "/auth/login/test"}]}

    start = await client.get("/auth/login/test?next=/agents", allow_redirects=False)
    auth_url = urlsplit(start.headers["Location"])
    q = parse_qs(auth_url.query)
    assert q["code_challenge_method"] == ["S256"] and len(q["code_challenge"][0]) == 43
    assert q["state"][0] and q["nonce"][0] and q["redirect_uri"] == [provider.redirect_uris[0]]
    login_cookie = start.cookies["as_login"]
    assert login_cookie["httponly"] and login_cookie["samesite"] == "Lax"
    assert login_cookie["path"] == "/auth/callback"

    async with aiohttp.ClientSession() as idp:
        back = (await idp.get(start.headers["Location"], allow_redirects=False)).headers["Location"]
    done = await client.get("/" + back.split("/", 3)[3], allow_redirects=False)
    assert done.status == 302 and done.headers["Location"] == client.raw.make_url("/agents").human_repr()
    access = done.cookies["as_access"]
    assert access["httponly"] and access["samesite"] == "Strict" and access["path"] == "/"
    assert done.cookies["as_refresh"]["path"] == "/auth"

    # the token request carried the PKCE verifier that matches the challenge
    form = provider.token_requests[-1]
    from ..support.oidc_provider import pkce_s256
    assert pkce_s256(form["code_verifier"]) == q["code_challenge"][0]

    me = await (await client.get("/api/me")).json()
    assert me["user"]["email"] == "ada@example.org" and me["auth"]["via"] == "session"
    assert me["user"]["role"] == "member"
    assert audit_rows(settings)[-1][0] == "success"


@pytest.mark.parametrize("knobs,code", [
    (Knobs(alg_none=True), "id_token_invalid"),
    (Knobs(hs256_with_public_key=True), "id_token_invalid"),   # key confusion
    (Knobs(wrong_iss=True), "id_token_invalid"),
    (Knobs(wrong_aud=True), "id_token_invalid"),
    (Knobs(expired=True), "id_token_invalid"),
    (Knobs(bad_signature=True), "id_token_invalid"),
    (Knobs(unknown_kid=True), "id_token_invalid"),
    (Knobs(nonce_override="not-the-nonce"), "id_token_invalid"),
    (Knobs(email_verified=False), "email_not_verified"),
    (Knobs(token_error="invalid_grant"), "token_exchange_failed"),
])
async def test_each_bad_id_token_is_refused_and_changes_nothing(oidc_app, provider, settings, knobs, code):
    client = await oidc_app(signup_policy="open")
    provider.knobs = knobs
    resp = await sign_in(client)
    assert resp.status == 302 and error_of(resp) == code
    assert "as_access" not in resp.cookies
    assert (await client.get("/api/me")).status == 401
    assert user_count(settings) == 0
    outcome, details = audit_rows(settings)[-1]
    assert outcome == "failure" and code in details


async def test_state_cannot_be_replayed_or_skipped_or_moved_to_another_browser(oidc_app, provider):
    client = await oidc_app(signup_policy="open")
    start = await client.get("/auth/login/test", allow_redirects=False)
    async with aiohttp.ClientSession() as idp:
        back = (await idp.get(start.headers["Location"], allow_redirects=False)).headers["Location"]
    callback = "/" + back.split("/", 3)[3]

    # another browser (no login cookie) cannot complete it
    async with aiohttp.ClientSession() as other:
        resp = await other.get(client.raw.make_url(callback), allow_redirects=False)
        assert error_of(resp) == "state_mismatch"
    # the right browser succeeds once...
    assert (await client.get(callback, allow_redirects=False)).cookies.get("as_access") is not None
    # ...and the same state cannot be used again
    assert error_of(await client.get(callback, allow_redirects=False)) == "state_mismatch"
    # a callback without state is refused (and resets the sign-in in progress)
    start = await client.get("/auth/login/test", allow_redirects=False)
    async with aiohttp.ClientSession() as idp:
        back = (await idp.get(start.headers["Location"], allow_redirects=False)).headers["Location"]
    code = parse_qs(urlsplit(back).query)["code"][0]
    assert error_of(await client.get(f"/auth/callback/test?code={code}", allow_redirects=False)) == "state_mismatch"
    assert provider.token_requests[-1]["code"] != code  # the code was never exchanged


async def test_injected_code_fails_the_pkce_check(oidc_app, provider, settings):
    """An attacker's code delivered into the victim's flow: the victim's verifier does not match."""
    client = await oidc_app(signup_policy="open")
    victim_start = await client.get("/auth/login/test", allow_redirects=False)
    async with aiohttp.ClientSession() as attacker:
        attacker_app = await attacker.get(client.raw.make_url("/auth/login/test"), allow_redirects=False)
        back = (await attacker.get(attacker_app.headers["Location"], allow_redirects=False)).headers["Location"]
    attacker_code = parse_qs(urlsplit(back).query)["code"][0]
    victim_state = parse_qs(urlsplit(victim_start.headers["Location"]).query)["state"][0]
    resp = await client.get(f"/auth/callback/test?code={attacker_code}&state={victim_state}", allow_redirects=False)
    assert error_of(resp) == "token_exchange_failed"
    assert provider.token_requests[-1]["code_verifier"]  # sent, and refused by the provider
    assert user_count(settings) == 0


async def test_provider_error_and_missing_code(oidc_app, provider):
    client = await oidc_app(signup_policy="open")
    provider.user = None  # the person declines at the provider
    assert error_of(await sign_in(client)) == "provider_refused"


async def test_key_rotation_refetches_the_jwks(oidc_app, provider):
    client = await oidc_app(signup_policy="open")
    assert (await sign_in(client)).cookies.get("as_access") is not None
    fetched = provider.requests.count(("GET", "/jwks"))
    provider.rotate_keys(drop_old=True)
    assert (await sign_in(client)).cookies.get("as_access") is not None
    assert provider.requests.count(("GET", "/jwks")) == fetched + 1


async def test_signup_closed_admits_only_users_an_admin_created(oidc_app, provider, settings):
    client = await oidc_app()  # default policy: closed
    assert settings.signup_policy == "closed"
    assert error_of(await sign_in(client)) == "signup_closed"
    assert user_count(settings) == 0
    await make_user(client.app, "ada@example.org")
    assert error_of(await sign_in(client)) is None
    assert (await client.get("/api/me")).status == 200


async def test_signup_by_domain(oidc_app, provider, settings):
    client = await oidc_app(signup_policy="domains", signup_domains=("example.com",))
    assert error_of(await sign_in(client)) == "signup_closed"  # ada@example.org
    provider.user = {**provider.user, "sub": "user-2", "email": "bob@example.com"}
    assert error_of(await sign_in(client)) is None
    assert user_count(settings) == 1


async def test_disabled_user_cannot_sign_in(oidc_app, provider):
    client = await oidc_app(signup_policy="open")
    assert error_of(await sign_in(client)) is None
    from agentstead.keys import IDENTITY
    from agentstead.services.identity import Context
    service = client.app[IDENTITY]
    admin = await make_user(client.app, "root@example.org", "admin")
    from agentstead.auth.access import ROLE_SCOPES, Principal
    actor = Principal(admin.id, admin.email, "admin", ROLE_SCOPES["admin"], "session", session_id="x")
    ada = (await service.users.list(limit=10, after=None, query="ada"))[0]
    await service.users.update(actor, ada.id, Context(), disabled=True)
    assert error_of(await sign_in(client)) == "account_disabled"


async def test_open_redirects_are_refused(oidc_app, provider):
    client = await oidc_app(signup_policy="open")
    for evil in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        resp = await sign_in(client, next_path=evil)
        assert resp.headers["Location"] == client.raw.make_url("/").human_repr(), evil


@pytest.mark.parametrize("given,lands_on", [
    ("/%0D%0ASet-Cookie:%20as_access=forged", "/"),     # header splitting
    ("/agents%00", "/"), ("/%09/evil.example", "/"), ("/%7F", "/"),
    ("/caf%C3%A9", "/caf%C3%A9"),                       # non-ASCII: percent-encoded, kept
    ("/a%20b", "/a%20b"),
])
async def test_next_is_a_same_origin_path_without_control_characters(oidc_app, settings, given, lands_on):
    """The callback's redirect is built after the session exists: a `next` that cannot be a
    Location header must never get that far (the response was dropped, the sign-in audited)."""
    client = await oidc_app(signup_policy="open")
    resp = await sign_in(client, next_path=given)
    assert resp.status == 302, await resp.text()
    assert resp.headers["Location"] == client.raw.make_url("/").human_repr().rstrip("/") + lands_on
    me = await client.get("/api/me")
    assert me.status == 200                               # the sign-in that was audited works
    assert [outcome for outcome, _ in audit_rows(settings)] == ["success"]
    assert "forged" not in str(resp.headers)


@pytest.mark.parametrize("claim", ["name", "email", "sub"])
async def test_a_claim_the_store_cannot_hold_is_refused_and_changes_nothing(oidc_app, provider, settings, claim):
    client = await oidc_app(signup_policy="open")
    provider.user[claim] = {"name": "Ada \ud800", "email": "ada\udfff@example.org", "sub": "user-\udc00"}[claim]
    resp = await sign_in(client)
    assert error_of(resp) == "id_token_invalid"
    assert user_count(settings) == 0
    assert [outcome for outcome, _ in audit_rows(settings)] == ["failure"]


async def test_unknown_provider_is_404(oidc_app):
    client = await oidc_app()
    resp = await client.get("/auth/login/nope", allow_redirects=False)
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "unknown_provider"


async def test_mix_up_defence_rejects_a_response_from_another_issuer(oidc_app, provider):
    client = await oidc_app(signup_policy="open")
    start = await client.get("/auth/login/test", allow_redirects=False)
    async with aiohttp.ClientSession() as idp:
        back = (await idp.get(start.headers["Location"], allow_redirects=False)).headers["Location"]
    resp = await client.get("/" + back.split("/", 3)[3] + "&iss=https://evil.example", allow_redirects=False)
    assert error_of(resp) == "issuer_mismatch"


# ---- account linking: a first sign-in at a provider joins an existing account by email ----

def identities(settings) -> list[tuple[str, str, str]]:
    with sqlite3.connect(settings.db_file) as conn:
        return conn.execute("SELECT provider, subject, user_id FROM identities ORDER BY created_at").fetchall()


async def test_first_sign_in_attaches_to_the_existing_account_by_verified_email(oidc_app, provider, settings):
    client = await oidc_app()  # closed: only the account an admin created
    ada = await make_user(client.app, "ada@example.org", "admin")
    assert error_of(await sign_in(client)) is None
    me = await (await client.get("/api/me")).json()
    assert me["user"]["id"] == ada.id and me["user"]["role"] == "admin"
    assert identities(settings) == [("test", "user-1", ada.id)]
    assert user_count(settings) == 1


async def test_unverified_email_never_attaches_to_an_existing_account(oidc_app, provider, settings):
    client = await oidc_app(signup_policy="open")
    await make_user(client.app, "ada@example.org", "admin")
    provider.knobs = Knobs(email_verified=False)
    resp = await sign_in(client)
    assert error_of(resp) == "email_not_verified" and "as_access" not in resp.cookies
    assert identities(settings) == [] and user_count(settings) == 1


async def test_second_subject_with_the_same_email_at_the_same_provider_is_refused(oidc_app, provider, settings):
    """The provider's account was recreated, or its address given to someone else: a new `sub`
    with a known address does not inherit the account that address already signs in to."""
    client = await oidc_app(signup_policy="open")
    assert error_of(await sign_in(client)) is None
    first = identities(settings)
    client.raw.session.cookie_jar.clear()
    provider.user = {**provider.user, "sub": "someone-else"}
    resp = await sign_in(client)
    assert error_of(resp) == "identity_conflict" and "as_access" not in resp.cookies
    assert (await client.get("/api/me")).status == 401
    assert identities(settings) == first and user_count(settings) == 1  # nothing changed
    outcome, details = audit_rows(settings)[-1]
    assert outcome == "failure" and "identity_conflict" in details
    provider.user = {**provider.user, "sub": "user-1"}  # the original subject still signs in
    assert error_of(await sign_in(client)) is None


async def test_an_admin_settles_an_identity_conflict_by_unlinking_the_old_subject(oidc_app, provider, settings):
    """The provider recreated the person's account (a new `sub`): refused, as above, until an
    administrator removes the old identity; then the new subject joins the same account."""
    client = await oidc_app(signup_policy="open")
    assert error_of(await sign_in(client)) is None
    ada = (await (await client.get("/api/me")).json())["user"]
    client.raw.session.cookie_jar.clear()
    _, admin = await token_user(client, "root@example.org", "admin", scopes=("read", "write", "admin"))
    _, member = await token_user(client, "bob@example.org")
    provider.user = {**provider.user, "sub": "user-1-recreated"}
    assert error_of(await sign_in(client)) == "identity_conflict"

    path = f"/api/admin/users/{ada['id']}/identities"
    assert (await client.get(path, headers=member)).status == 403
    got = await client.get(path, headers=admin)
    assert got.status == 200, await got.text()
    listed = (await got.json())["identities"]
    assert [(i["provider"], i["subject"], i["email"]) for i in listed] == [("test", "user-1", "ada@example.org")]
    assert (await client.delete(f"{path}/test/user-1", headers=member)).status == 403
    assert (await client.delete(f"{path}/test/nobody", headers=admin)).status == 404
    assert (await client.delete("/api/admin/users/nobody/identities/test/user-1", headers=admin)).status == 404
    assert identities(settings) == [("test", "user-1", ada["id"])]                # refused calls changed nothing
    resp = await client.delete(f"{path}/test/user-1", headers=admin)
    assert resp.status == 204
    assert identities(settings) == []
    outcome, details = audit_rows(settings, "identity.unlinked")[-1]
    assert outcome == "success" and "user-1" in details

    assert error_of(await sign_in(client)) is None                               # the new subject joins
    me = (await (await client.get("/api/me")).json())["user"]
    assert me["id"] == ada["id"] and identities(settings) == [("test", "user-1-recreated", ada["id"])]
    client.raw.session.cookie_jar.clear()
    provider.user = {**provider.user, "sub": "user-1"}                           # the old one no longer does
    assert error_of(await sign_in(client)) == "identity_conflict"
    with sqlite3.connect(settings.db_file) as conn:                              # a subject holding "/"
        conn.execute("INSERT INTO identities VALUES ('other', 'tenant/7', ?, 'ada@example.org', 'x', 'x')",
                     (ada["id"],))
    assert (await client.delete(f"{path}/other/tenant%2F7", headers=admin)).status == 204
    assert ("other", "tenant/7", ada["id"]) not in identities(settings)


async def test_same_verified_email_at_a_second_provider_attaches(aiohttp_client, provider, settings, tmp_path):
    """Several providers at once: the same person's verified address at another provider
    joins the account (once per provider; the rule above still holds at each)."""
    from aiohttp.test_utils import TestServer

    from agentstead.app import create_app

    from ..support.contract import ContractClient
    from ..support.oidc_provider import OIDCProvider
    from ..support.procs import free_port

    other = OIDCProvider(client_id="agentstead-other", client_secret="other-secret")
    await other.start()
    try:
        port = free_port()
        public = f"http://127.0.0.1:{port}"
        provider.redirect_uris = [f"{public}/auth/callback/test"]
        other.redirect_uris = [f"{public}/auth/callback/other"]
        other.user = {**other.user, "sub": "other-77"}
        configured = settings.replace(public_url=public, signup_policy="open", oidc_providers=tuple(
            {"name": name, "issuer": p.issuer, "client_id": p.client_id, "client_secret": p.client_secret,
             "client_secret_file": "", "display_name": name, "scopes": ("openid", "email", "profile")}
            for name, p in (("test", provider), ("other", other))))
        app = create_app(configured)
        client = ContractClient(await aiohttp_client(TestServer(app, host="127.0.0.1", port=port)), app)
        assert error_of(await sign_in(client)) is None
        ada = (await (await client.get("/api/me")).json())["user"]["id"]
        client.raw.session.cookie_jar.clear()
        start = await client.get("/auth/login/other", allow_redirects=False)
        async with aiohttp.ClientSession() as idp:
            back = (await idp.get(start.headers["Location"], allow_redirects=False)).headers["Location"]
        done = await client.get("/" + back.split("/", 3)[3], allow_redirects=False)
        assert error_of(done) is None and done.cookies.get("as_access") is not None
        assert (await (await client.get("/api/me")).json())["user"]["id"] == ada
        assert sorted(identities(settings)) == [("other", "other-77", ada), ("test", "user-1", ada)]
    finally:
        await other.stop()
