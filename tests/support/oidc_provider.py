"""A small but real OpenID Connect provider for tests.

It is an aiohttp application bound to 127.0.0.1 on a free port, speaking the
authorization-code flow with PKCE (S256 only) the way a real provider does, so
that the sign-in code under test runs its real HTTP path (discovery, JWKS,
token exchange, ID-token verification).  ``Knobs`` produce the attacks and
failures tests need.

    provider = OIDCProvider(client_id="agentstead-test", client_secret="s3cret",
                            redirect_uris=["http://127.0.0.1:PORT/auth/callback/test"])
    await provider.start()          # provider.issuer == "http://127.0.0.1:<port>"
    provider.user = {...}           # who signs in at /authorize (auto-approve); None -> access_denied
    provider.knobs = Knobs(...)     # per-test attack switches
    provider.rotate_keys()          # new signing key; old stays in JWKS unless drop_old=True
    provider.requests               # [(method, path), ...]
    provider.token_requests         # [form fields of each POST /token, ...]
    await provider.stop()

Signing is done directly with ``cryptography`` (RS256 = RSASSA-PKCS1-v1_5 with
SHA-256), so that deliberately broken tokens can be produced byte for byte.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
import re
import secrets
import socket
import time
from typing import Any, NoReturn
from urllib.parse import unquote

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from yarl import URL

__all__ = ["Knobs", "OIDCProvider", "SigningKey", "b64url", "b64url_decode"]


# -- helpers -----------------------------------------------------------------

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url_uint(n: int) -> str:
    return b64url(n.to_bytes((n.bit_length() + 7) // 8 or 1, "big"))


def _json_segment(obj: dict[str, Any]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def pkce_s256(verifier: str) -> str:
    """The S256 code_challenge for a code_verifier (RFC 7636 4.2)."""
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


_VERIFIER_RE = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")


@dataclasses.dataclass
class Knobs:
    """Per-test attack switches; all off by default.

    Each one changes only the ID token (or the /token response) as stated.
    They are read when /token mints the ID token (``skip_pkce_check`` and
    ``token_error`` when /token is handled), so set them before the callback.
    """

    alg_none: bool = False                 # unsigned token, header alg "none", empty signature
    hs256_with_public_key: bool = False    # HS256, HMAC secret = RSA public key PEM, real kid
    wrong_iss: bool = False                # iss = issuer + "/evil"
    wrong_aud: bool = False                # aud = "someone-else"
    expired: bool = False                  # iat and exp an hour in the past
    bad_signature: bool = False            # RS256 signature with flipped bytes
    unknown_kid: bool = False              # signed by a fresh key not in JWKS, kid "ghost"
    nonce_override: str | None = None      # this nonce instead of the one from /authorize
    email_verified: bool | None = None     # override the claim (ID token and /userinfo)
    skip_pkce_check: bool = False          # accept any (or no) code_verifier
    token_error: str | None = None         # /token answers 400 {"error": token_error}


@dataclasses.dataclass
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, kid: str | None = None) -> SigningKey:
        return cls(kid=kid or secrets.token_hex(8),
                   private_key=rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def public_jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
                "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}

    def sign(self, signing_input: bytes) -> bytes:
        return self.private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())


@dataclasses.dataclass
class _Grant:
    client_id: str
    redirect_uri: str
    code_challenge: str
    code_challenge_method: str
    nonce: str | None
    scope: str
    user: dict[str, Any]
    auth_time: int
    expires_at: float
    used: bool = False
    access_tokens: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _AccessToken:
    user: dict[str, Any]
    scope: str
    expires_at: float
    revoked: bool = False


# -- the provider --------------------------------------------------------------

class OIDCProvider:
    DEFAULT_USER = {"sub": "user-1", "email": "ada@example.org", "email_verified": True,
                    "name": "Ada"}

    def __init__(self, client_id: str = "agentstead-test", client_secret: str = "s3cret",
                 redirect_uris: list[str] | None = None) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris: list[str] = list(redirect_uris or [])
        self.user: dict[str, Any] | None = dict(self.DEFAULT_USER)
        self.knobs = Knobs()
        self.requests: list[tuple[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self.code_ttl = 60.0            # seconds an authorization code stays valid
        self.id_token_ttl = 300         # seconds
        self.access_token_ttl = 3600    # seconds
        self.scopes_supported = ["openid", "email", "profile"]
        self.keys: list[SigningKey] = [SigningKey.generate()]   # keys[-1] signs
        self._ghost_key: SigningKey | None = None
        self._grants: dict[str, _Grant] = {}
        self._access_tokens: dict[str, _AccessToken] = {}
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    # -- lifecycle ------------------------------------------------------------

    @property
    def issuer(self) -> str:
        if self.port is None:
            raise RuntimeError("OIDCProvider not started")
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.issuer + path

    @property
    def discovery_url(self) -> str:
        return self.url("/.well-known/openid-configuration")

    async def start(self) -> None:
        if self._runner is not None:
            return
        app = web.Application(middlewares=[self._record])
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/token", self._token)
        app.router.add_get("/userinfo", self._userinfo)
        app.router.add_post("/userinfo", self._userinfo)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        self._runner = runner

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> OIDCProvider:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- keys -----------------------------------------------------------------

    @property
    def signing_key(self) -> SigningKey:
        return self.keys[-1]

    @property
    def current_kid(self) -> str:
        return self.signing_key.kid

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in self.keys]}

    def rotate_keys(self, drop_old: bool = False) -> str:
        """A new RSA key (new kid) becomes the signing key; returns its kid."""
        new = SigningKey.generate()
        self.keys = [new] if drop_old else [*self.keys, new]
        return new.kid

    # -- tokens ---------------------------------------------------------------

    def make_id_token(self, claims: dict[str, Any], knobs: Knobs | None = None) -> str:
        """Serialize claims as a compact JWS, applying the signature knobs."""
        knobs = knobs or self.knobs
        key = self.signing_key
        payload = _json_segment(claims)
        if knobs.alg_none:
            header = _json_segment({"alg": "none", "typ": "JWT", "kid": key.kid})
            return f"{header}.{payload}."
        if knobs.hs256_with_public_key:
            header = _json_segment({"alg": "HS256", "typ": "JWT", "kid": key.kid})
            signing_input = f"{header}.{payload}".encode()
            mac = hmac.new(key.public_pem, signing_input, hashlib.sha256).digest()
            return f"{header}.{payload}.{b64url(mac)}"
        if knobs.unknown_kid:
            if self._ghost_key is None:
                self._ghost_key = SigningKey.generate(kid="ghost")
            key = self._ghost_key
        header = _json_segment({"alg": "RS256", "typ": "JWT", "kid": key.kid})
        signing_input = f"{header}.{payload}".encode()
        signature = bytearray(key.sign(signing_input))
        if knobs.bad_signature:
            for i in (0, len(signature) // 2, len(signature) - 2):
                signature[i] ^= 0xFF
        return f"{header}.{payload}.{b64url(bytes(signature))}"

    def _user_claims(self, user: dict[str, Any], knobs: Knobs) -> dict[str, Any]:
        claims = dict(user)
        if knobs.email_verified is not None:
            claims["email_verified"] = knobs.email_verified
        return claims

    def _id_token_claims(self, grant: _Grant, access_token: str, knobs: Knobs) -> dict[str, Any]:
        now = int(time.time())
        if knobs.expired:
            now -= 3600
        claims = self._user_claims(grant.user, knobs)
        claims.update({
            "iss": self.issuer + "/evil" if knobs.wrong_iss else self.issuer,
            "sub": grant.user["sub"],
            "aud": "someone-else" if knobs.wrong_aud else grant.client_id,
            "exp": now + self.id_token_ttl,
            "iat": now,
            "auth_time": grant.auth_time,
            "at_hash": b64url(hashlib.sha256(access_token.encode()).digest()[:16]),
        })
        nonce = knobs.nonce_override if knobs.nonce_override is not None else grant.nonce
        if nonce is not None:
            claims["nonce"] = nonce
        else:
            claims.pop("nonce", None)
        return claims

    # -- HTTP -----------------------------------------------------------------

    @web.middleware
    async def _record(self, request: web.Request, handler):
        self.requests.append((request.method, request.path))
        return await handler(request)

    async def _discovery(self, request: web.Request) -> web.Response:
        iss = self.issuer
        return web.json_response({
            "issuer": iss,
            "authorization_endpoint": iss + "/authorize",
            "token_endpoint": iss + "/token",
            "jwks_uri": iss + "/jwks",
            "userinfo_endpoint": iss + "/userinfo",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post"],
            "scopes_supported": list(self.scopes_supported),
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce",
                                 "at_hash", "email", "email_verified", "name"],
        })

    async def _jwks(self, request: web.Request) -> web.Response:
        return web.json_response(self.jwks())

    @staticmethod
    def _error_page(message: str) -> web.Response:
        return web.Response(status=400, content_type="text/html",
                            text=f"<!doctype html><title>Error</title><h1>400</h1><p>{message}</p>")

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        for name in q:
            if len(q.getall(name)) > 1:
                return self._error_page(f"parameter {name} repeated")
        # Until client and redirect_uri are verified, never redirect (open redirector).
        client_id = q.get("client_id")
        if client_id != self.client_id:
            return self._error_page("unknown client_id")
        redirect_uri = q.get("redirect_uri")
        if redirect_uri is None or redirect_uri not in self.redirect_uris:
            return self._error_page("redirect_uri is not registered for this client")

        state = q.get("state")

        def fail(error: str, description: str) -> NoReturn:
            params = {"error": error, "error_description": description}
            if state is not None:
                params["state"] = state
            raise web.HTTPFound(str(URL(redirect_uri).update_query(params)))

        if q.get("response_type") != "code":
            fail("unsupported_response_type", "only response_type=code is supported")
        scope = q.get("scope", "")
        if "openid" not in scope.split():
            fail("invalid_scope", "scope must contain openid")
        challenge = q.get("code_challenge")
        if not challenge:
            fail("invalid_request", "code_challenge is required")
        if q.get("code_challenge_method") != "S256":
            fail("invalid_request", "code_challenge_method must be S256")
        if not re.fullmatch(r"[A-Za-z0-9\-_]{43}", challenge):
            fail("invalid_request", "code_challenge is not a base64url SHA-256 digest")
        if self.user is None:
            fail("access_denied", "the user declined")

        code = secrets.token_urlsafe(32)
        self._grants[code] = _Grant(
            client_id=client_id, redirect_uri=redirect_uri, code_challenge=challenge,
            code_challenge_method="S256", nonce=q.get("nonce"), scope=scope,
            user=dict(self.user), auth_time=int(time.time()),
            expires_at=time.monotonic() + self.code_ttl)
        params = {"code": code}
        if state is not None:
            params["state"] = state
        raise web.HTTPFound(str(URL(redirect_uri).update_query(params)))

    @staticmethod
    def _oauth_error(error: str, description: str, status: int = 400,
                     headers: dict[str, str] | None = None) -> web.Response:
        h = {"Cache-Control": "no-store", "Pragma": "no-cache", **(headers or {})}
        return web.json_response({"error": error, "error_description": description},
                                 status=status, headers=h)

    def _authenticate_client(self, request: web.Request,
                             form: dict[str, str]) -> tuple[str | None, web.Response | None]:
        """Returns (client_id, None) or (None, error response)."""
        auth = request.headers.get("Authorization")
        basic = {"WWW-Authenticate": 'Basic realm="token"'}
        if auth is not None:
            if "client_secret" in form:
                return None, self._oauth_error(
                    "invalid_request", "more than one client authentication method")
            scheme, _, value = auth.partition(" ")
            if scheme.lower() != "basic":
                return None, self._oauth_error("invalid_client", "unsupported auth scheme",
                                               401, basic)
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None, self._oauth_error("invalid_client", "malformed Basic header",
                                               401, basic)
            raw_id, sep, raw_secret = decoded.partition(":")
            if not sep:
                return None, self._oauth_error("invalid_client", "malformed Basic header",
                                               401, basic)
            cid, secret = unquote(raw_id.replace("+", " ")), unquote(raw_secret.replace("+", " "))
            if "client_id" in form and form["client_id"] != cid:
                return None, self._oauth_error("invalid_client", "client_id mismatch",
                                               401, basic)
        elif "client_secret" in form:
            cid, secret = form.get("client_id", ""), form["client_secret"]
        else:
            return None, self._oauth_error("invalid_client", "client authentication required",
                                           401, basic)
        ok_id = hmac.compare_digest(cid.encode(), self.client_id.encode())
        ok_secret = hmac.compare_digest(secret.encode(), self.client_secret.encode())
        if not (ok_id and ok_secret):
            return None, self._oauth_error("invalid_client", "client authentication failed",
                                           401, basic)
        return cid, None

    async def _token(self, request: web.Request) -> web.Response:
        knobs = self.knobs
        if request.content_type != "application/x-www-form-urlencoded":
            self.token_requests.append({})
            return self._oauth_error("invalid_request",
                                     "body must be application/x-www-form-urlencoded")
        post = await request.post()
        form = {k: str(v) for k, v in post.items()}
        self.token_requests.append(dict(form))
        if knobs.token_error:
            return self._oauth_error(knobs.token_error, "forced by test knob")
        for name in post:
            if len(post.getall(name)) > 1:
                return self._oauth_error("invalid_request", f"parameter {name} repeated")

        client_id, err = self._authenticate_client(request, form)
        if err is not None:
            return err
        if form.get("grant_type") != "authorization_code":
            return self._oauth_error("unsupported_grant_type",
                                     "only authorization_code is supported")
        code = form.get("code")
        if not code:
            return self._oauth_error("invalid_request", "code is required")
        grant = self._grants.get(code)
        if grant is None:
            return self._oauth_error("invalid_grant", "unknown code")
        if grant.used:
            # RFC 6749 4.1.2: a reused code revokes what it already issued.
            for token in grant.access_tokens:
                self._access_tokens[token].revoked = True
            return self._oauth_error("invalid_grant", "code already used")
        if time.monotonic() > grant.expires_at:
            return self._oauth_error("invalid_grant", "code expired")
        if grant.client_id != client_id:
            return self._oauth_error("invalid_grant", "code was issued to another client")
        if form.get("redirect_uri") != grant.redirect_uri:
            return self._oauth_error("invalid_grant", "redirect_uri does not match")
        if not knobs.skip_pkce_check:
            verifier = form.get("code_verifier")
            if verifier is None:
                return self._oauth_error("invalid_grant", "code_verifier is required")
            if not _VERIFIER_RE.fullmatch(verifier) or not hmac.compare_digest(
                    pkce_s256(verifier), grant.code_challenge):
                return self._oauth_error("invalid_grant", "PKCE verification failed")
        grant.used = True

        access_token = secrets.token_urlsafe(32)
        self._access_tokens[access_token] = _AccessToken(
            user=self._user_claims(grant.user, knobs), scope=grant.scope,
            expires_at=time.monotonic() + self.access_token_ttl)
        grant.access_tokens.append(access_token)
        id_token = self.make_id_token(self._id_token_claims(grant, access_token, knobs), knobs)
        return web.json_response(
            {"access_token": access_token, "token_type": "Bearer",
             "expires_in": self.access_token_ttl, "id_token": id_token, "scope": grant.scope},
            headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    async def _userinfo(self, request: web.Request) -> web.Response:
        challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        record = self._access_tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if record is None or record.revoked or time.monotonic() > record.expires_at:
            return web.json_response({"error": "invalid_token"}, status=401, headers=challenge)
        return web.json_response(record.user)
