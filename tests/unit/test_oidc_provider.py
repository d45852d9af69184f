"""The test OpenID Connect provider behaves like a real one, and each knob
produces exactly the broken token it promises."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import quote

import aiohttp
import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import KeySet
from yarl import URL

from tests.support.oidc_provider import Knobs, OIDCProvider

CLIENT_ID = "agentstead-test"
SECRET = "s3cret"
REDIRECT = "http://127.0.0.1:9/auth/callback/test"


def b64d(seg: str) -> bytes:
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict, dict, bytes]:
    h, p, s = token.split(".")
    return json.loads(b64d(h)), json.loads(b64d(p)), b64d(s)


def basic(client_id: str, secret: str) -> dict[str, str]:
    # RFC 6749 2.3.1: each part form-urlencoded, then Basic.
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def challenge(verifier: str) -> str:
    return b64e(hashlib.sha256(verifier.encode()).digest())


@pytest.fixture
async def provider():
    p = OIDCProvider(client_id=CLIENT_ID, client_secret=SECRET, redirect_uris=[REDIRECT])
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as s:
        yield s


async def authorize(http, provider, **overrides) -> aiohttp.ClientResponse:
    params = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT,
              "scope": "openid email profile", "state": "st-1", "nonce": "n-1",
              "code_challenge_method": "S256"}
    params.update(overrides)
    params = {k: v for k, v in params.items() if v is not None}
    async with http.get(provider.url("/authorize"), params=params,
                        allow_redirects=False) as resp:
        await resp.read()
        return resp


async def get_code(http, provider, verifier: str, **overrides) -> str:
    resp = await authorize(http, provider, code_challenge=challenge(verifier), **overrides)
    assert resp.status == 302, resp.status
    loc = URL(resp.headers["Location"])
    assert str(loc.with_query(None)) == REDIRECT
    assert loc.query["state"] == "st-1"
    return loc.query["code"]


async def exchange(http, provider, code: str, verifier: str | None, *, use_basic: bool = True,
                   **extra) -> tuple[int, dict]:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    if verifier is not None:
        form["code_verifier"] = verifier
    headers = {}
    if use_basic:
        headers = basic(CLIENT_ID, SECRET)
    else:
        form.update(client_id=CLIENT_ID, client_secret=SECRET)
    form.update(extra)
    form = {k: v for k, v in form.items() if v is not None}
    async with http.post(provider.url("/token"), data=form, headers=headers) as resp:
        return resp.status, await resp.json()


async def id_token_for(http, provider, knobs: Knobs | None = None) -> str:
    if knobs is not None:
        provider.knobs = knobs
    verifier = secrets.token_urlsafe(48)
    code = await get_code(http, provider, verifier)
    status, body = await exchange(http, provider, code, verifier)
    assert status == 200, body
    return body["id_token"]


async def jwks(http, provider) -> KeySet:
    async with http.get(provider.url("/jwks")) as resp:
        return KeySet.import_key_set(await resp.json())


# -- protocol ------------------------------------------------------------------

async def test_discovery(http, provider):
    assert provider.issuer == f"http://127.0.0.1:{provider.port}"
    async with http.get(provider.url("/.well-known/openid-configuration")) as resp:
        assert resp.status == 200
        doc = await resp.json()
    iss = provider.issuer
    assert doc["issuer"] == iss
    assert doc["authorization_endpoint"] == iss + "/authorize"
    assert doc["token_endpoint"] == iss + "/token"
    assert doc["jwks_uri"] == iss + "/jwks"
    assert doc["userinfo_endpoint"] == iss + "/userinfo"
    assert doc["response_types_supported"] == ["code"]
    assert doc["subject_types_supported"] == ["public"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert set(doc["token_endpoint_auth_methods_supported"]) == {"client_secret_basic",
                                                                 "client_secret_post"}
    assert "openid" in doc["scopes_supported"]
    async with http.get(doc["jwks_uri"]) as resp:
        keys = (await resp.json())["keys"]
    assert [(k["kty"], k["use"], k["alg"], k["kid"]) for k in keys] == [
        ("RSA", "sig", "RS256", provider.current_kid)]
    assert ("GET", "/.well-known/openid-configuration") in provider.requests
    assert ("GET", "/jwks") in provider.requests


async def test_full_code_flow(http, provider):
    verifier = secrets.token_urlsafe(48)
    code = await get_code(http, provider, verifier)
    status, body = await exchange(http, provider, code, verifier)
    assert status == 200, body
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert body["scope"] == "openid email profile"
    assert provider.token_requests[-1]["code_verifier"] == verifier
    assert provider.token_requests[-1]["redirect_uri"] == REDIRECT

    token = jwt.decode(body["id_token"], await jwks(http, provider), algorithms=["RS256"])
    assert token.header["kid"] == provider.current_kid
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": provider.issuer},
        aud={"essential": True, "value": CLIENT_ID},
        sub={"essential": True, "value": "user-1"},
        nonce={"essential": True, "value": "n-1"},
        exp={"essential": True}, iat={"essential": True},
    ).validate(token.claims)
    c = token.claims
    assert (c["email"], c["email_verified"], c["name"]) == ("ada@example.org", True, "Ada")
    assert c["exp"] - c["iat"] == 300
    at_hash = b64e(hashlib.sha256(body["access_token"].encode()).digest()[:16])
    assert c["at_hash"] == at_hash

    async with http.get(provider.url("/userinfo"),
                        headers={"Authorization": f"Bearer {body['access_token']}"}) as resp:
        assert resp.status == 200
        assert (await resp.json())["email"] == "ada@example.org"
    async with http.get(provider.url("/userinfo"),
                        headers={"Authorization": "Bearer nope"}) as resp:
        assert resp.status == 401


async def test_client_secret_post_and_provider_user(http, provider):
    provider.user = {"sub": "user-2", "email": "grace@example.org", "email_verified": False,
                     "name": "Grace"}
    verifier = secrets.token_urlsafe(48)
    code = await get_code(http, provider, verifier)
    status, body = await exchange(http, provider, code, verifier, use_basic=False)
    assert status == 200, body
    _, claims, _ = parts(body["id_token"])
    assert (claims["sub"], claims["email_verified"]) == ("user-2", False)


async def test_wrong_client_secret(http, provider):
    verifier = secrets.token_urlsafe(48)
    code = await get_code(http, provider, verifier)
    async with http.post(provider.url("/token"),
                         data={"grant_type": "authorization_code", "code": code,
                               "redirect_uri": REDIRECT, "code_verifier": verifier},
                         headers=basic(CLIENT_ID, "wrong")) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"] == "invalid_client"
    # The code was not consumed by the failed attempt.
    status, _ = await exchange(http, provider, code, verifier)
    assert status == 200


async def test_wrong_verifier_is_invalid_grant(http, provider):
    verifier = secrets.token_urlsafe(48)
    code = await get_code(http, provider, verifier)
    status, body = await exchange(http, provider, code, secrets.token_urlsafe(48))
    assert (status, body["error"]) == (400, "invalid_grant")
    status, body = await exchange(http, provider, code, None)
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_reused_code_is_invalid_grant(http, provider):
    verifier = secrets.token_urlsafe(48)
    code = await get_code(http, provider, verifier)
    status, first = await exchange(http, provider, code, verifier)
    assert status == 200
    status, body = await exchange(http, provider, code, verifier)
    assert (status, body["error"]) == (400, "invalid_grant")
    # Replay revokes the access token issued for that code.
    async with http.get(provider.url("/userinfo"),
                        headers={"Authorization": f"Bearer {first['access_token']}"}) as resp:
        assert resp.status == 401


async def test_token_redirect_uri_must_match(http, provider):
    other = "http://127.0.0.1:9/auth/callback/other"
    provider.redirect_uris = [REDIRECT, other]
    verifier = secrets.token_urlsafe(48)
    code = await get_code(http, provider, verifier)
    status, body = await exchange(http, provider, code, verifier, redirect_uri=other)
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_expired_code(http, provider):
    provider.code_ttl = 0.0
    verifier = secrets.token_urlsafe(48)
    code = await get_code(http, provider, verifier)
    time.sleep(0.01)
    status, body = await exchange(http, provider, code, verifier)
    assert (status, body["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize("redirect_uri", [
    "http://127.0.0.1:9/auth/callback/test/",
    "http://127.0.0.1:9/auth/callback/test?x=1",
    "http://evil.example/auth/callback/test",
    None,
])
async def test_authorize_redirect_uri_mismatch_is_400_without_redirect(http, provider,
                                                                       redirect_uri):
    resp = await authorize(http, provider, code_challenge=challenge("v" * 43),
                           redirect_uri=redirect_uri)
    assert resp.status == 400
    assert "Location" not in resp.headers


async def test_authorize_unknown_client_is_400(http, provider):
    resp = await authorize(http, provider, code_challenge=challenge("v" * 43), client_id="x")
    assert resp.status == 400 and "Location" not in resp.headers


@pytest.mark.parametrize("overrides, error", [
    ({"code_challenge_method": "plain", "code_challenge": "v" * 43}, "invalid_request"),
    ({"code_challenge_method": None, "code_challenge": challenge("v" * 43)}, "invalid_request"),
    ({"code_challenge": None}, "invalid_request"),
    ({"code_challenge": challenge("v" * 43), "scope": "email"}, "invalid_scope"),
    ({"code_challenge": challenge("v" * 43), "response_type": "token"},
     "unsupported_response_type"),
])
async def test_authorize_errors_redirect_with_error(http, provider, overrides, error):
    resp = await authorize(http, provider, **overrides)
    assert resp.status == 302
    loc = URL(resp.headers["Location"])
    assert str(loc.with_query(None)) == REDIRECT
    assert loc.query["error"] == error
    assert loc.query["state"] == "st-1"
    assert "code" not in loc.query


async def test_no_user_is_access_denied(http, provider):
    provider.user = None
    resp = await authorize(http, provider, code_challenge=challenge("v" * 43))
    assert URL(resp.headers["Location"]).query["error"] == "access_denied"


# -- knobs ---------------------------------------------------------------------

async def test_knob_alg_none(http, provider):
    token = await id_token_for(http, provider, Knobs(alg_none=True))
    assert token.endswith(".") and token.split(".")[2] == ""
    header, claims, _ = parts(token)
    assert header["alg"] == "none"
    assert claims["nonce"] == "n-1"
    with pytest.raises(JoseError):
        jwt.decode(token, await jwks(http, provider), algorithms=["RS256"])


async def test_knob_hs256_with_public_key(http, provider):
    token = await id_token_for(http, provider, Knobs(hs256_with_public_key=True))
    header, _, sig = parts(token)
    assert header["alg"] == "HS256" and header["kid"] == provider.current_kid
    signing_input = token.rsplit(".", 1)[0].encode()
    expected = hmac.new(provider.signing_key.public_pem, signing_input, hashlib.sha256).digest()
    assert sig == expected
    assert provider.signing_key.public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    with pytest.raises(JoseError):
        jwt.decode(token, await jwks(http, provider), algorithms=["RS256"])


@pytest.mark.parametrize("knobs, check", [
    (Knobs(wrong_iss=True), lambda c, p: c["iss"] == p.issuer + "/evil"),
    (Knobs(wrong_aud=True), lambda c, p: c["aud"] == "someone-else"),
    (Knobs(expired=True), lambda c, p: c["exp"] < time.time() - 3000
     and c["iat"] < time.time() - 3500),
    (Knobs(nonce_override="forged"), lambda c, p: c["nonce"] == "forged"),
    (Knobs(email_verified=False), lambda c, p: c["email_verified"] is False),
])
async def test_claim_knobs_are_validly_signed(http, provider, knobs, check):
    token = await id_token_for(http, provider, knobs)
    decoded = jwt.decode(token, await jwks(http, provider), algorithms=["RS256"])
    assert check(decoded.claims, provider)
    assert decoded.header["kid"] == provider.current_kid


async def test_email_verified_knob_also_applies_to_userinfo(http, provider):
    provider.knobs = Knobs(email_verified=False)
    verifier = secrets.token_urlsafe(48)
    code = await get_code(http, provider, verifier)
    _, body = await exchange(http, provider, code, verifier)
    async with http.get(provider.url("/userinfo"),
                        headers={"Authorization": f"Bearer {body['access_token']}"}) as resp:
        assert (await resp.json())["email_verified"] is False


async def test_knob_bad_signature(http, provider):
    token = await id_token_for(http, provider, Knobs(bad_signature=True))
    header, _, sig = parts(token)
    assert header["alg"] == "RS256" and header["kid"] == provider.current_kid
    assert len(sig) == 256
    with pytest.raises(BadSignatureError):
        jwt.decode(token, await jwks(http, provider), algorithms=["RS256"])


async def test_knob_unknown_kid(http, provider):
    token = await id_token_for(http, provider, Knobs(unknown_kid=True))
    header, _, sig = parts(token)
    assert header == {"alg": "RS256", "typ": "JWT", "kid": "ghost"}
    assert len(sig) == 256
    keyset = await jwks(http, provider)
    assert "ghost" not in [k.kid for k in keyset.keys]
    with pytest.raises(JoseError):
        jwt.decode(token, keyset, algorithms=["RS256"])


async def test_knob_skip_pkce_check(http, provider):
    provider.knobs = Knobs(skip_pkce_check=True)
    code = await get_code(http, provider, secrets.token_urlsafe(48))
    status, body = await exchange(http, provider, code, "anything-at-all")
    assert status == 200, body
    assert provider.token_requests[-1]["code_verifier"] == "anything-at-all"


async def test_knob_token_error(http, provider):
    provider.knobs = Knobs(token_error="invalid_grant")
    verifier = secrets.token_urlsafe(48)
    code = await get_code(http, provider, verifier)
    status, body = await exchange(http, provider, code, verifier)
    assert (status, body["error"]) == (400, "invalid_grant")
    assert provider.token_requests[-1]["code"] == code


# -- keys ----------------------------------------------------------------------

async def test_rotate_keys(http, provider):
    old = provider.current_kid
    new = provider.rotate_keys()
    assert new != old and provider.current_kid == new
    assert {k.kid for k in (await jwks(http, provider)).keys} == {old, new}
    token = await id_token_for(http, provider)
    assert jwt.decode(token, await jwks(http, provider)).header["kid"] == new
    assert provider.requests.count(("GET", "/jwks")) == 2

    newest = provider.rotate_keys(drop_old=True)
    assert [k.kid for k in (await jwks(http, provider)).keys] == [newest]
