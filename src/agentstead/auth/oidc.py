"""OpenID Connect relying party: discovery, PKCE authorization, code exchange,
ID token verification. HTTP through aiohttp; the protocol pieces (PKCE,
URLs, JOSE, ID token claim rules) from authlib and joserfc.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from typing import Any
from urllib.parse import quote

import aiohttp
from authlib.common.urls import add_params_to_uri
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

# Asymmetric only: an HS* token would be "verified" with a public key as the
# secret (key confusion), and "none" is no signature at all.
ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
DISCOVERY_TTL = 3600.0
JWKS_REFETCH_MIN_INTERVAL = 30.0
CLOCK_LEEWAY = 60


@dataclasses.dataclass(frozen=True)
class ProviderConfig:
    name: str
    issuer: str
    client_id: str
    client_secret: str = dataclasses.field(default="", repr=False)
    display_name: str = ""
    scopes: tuple[str, ...] = ("openid", "email", "profile")

    @property
    def label(self) -> str:
        return self.display_name or self.name.capitalize()


class OIDCError(Exception):
    """Sign-in failed; `code` is safe to show, `detail` goes to the audit log."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclasses.dataclass(frozen=True)
class Identity:
    provider: str
    subject: str
    email: str
    name: str
    email_verified: bool = False   # the provider asserted email_verified: true (required to sign in)


def _storable(value: Any) -> bool:
    if not isinstance(value, str):
        return True   # the checks below decide what a missing or odd claim means
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _unverified_kid(token: str) -> str:
    import base64

    try:
        head = token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
        return str(header.get("kid", ""))
    except (ValueError, IndexError, AttributeError):
        return ""


class OIDCClient:
    """One provider. Discovery and JWKS are cached; an unknown `kid` refetches the JWKS."""

    def __init__(self, config: ProviderConfig, session: aiohttp.ClientSession):
        self.config = config
        self.session = session
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._jwks: KeySet | None = None
        self._jwks_at = 0.0
        self._missed_kids: dict[str, float] = {}
        self._lock = asyncio.Lock()

    async def _get_json(self, url: str) -> Any:
        try:
            async with self.session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
                if resp.status != 200:
                    raise OIDCError("provider_unavailable", f"GET {url} answered {resp.status}")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, asyncio.TimeoutError, json.JSONDecodeError) as exc:
            raise OIDCError("provider_unavailable", f"GET {url} failed: {exc!r}") from None

    async def metadata(self) -> dict[str, Any]:
        async with self._lock:
            if self._metadata is None or time.monotonic() - self._metadata_at > DISCOVERY_TTL:
                url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
                data = await self._get_json(url)
                if not isinstance(data, dict):
                    raise OIDCError("provider_unavailable", "discovery document is not an object")
                if str(data.get("issuer", "")).rstrip("/") != self.config.issuer.rstrip("/"):
                    raise OIDCError("provider_misconfigured",
                                    f"discovery issuer {data.get('issuer')!r} differs from {self.config.issuer!r}")
                for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not isinstance(data.get(key), str):
                        raise OIDCError("provider_misconfigured", f"discovery document lacks {key}")
                methods = data.get("code_challenge_methods_supported")
                if methods is not None and "S256" not in methods:
                    raise OIDCError("provider_misconfigured", "provider does not support PKCE S256")
                self._metadata, self._metadata_at = data, time.monotonic()
            return self._metadata

    async def _keys(self, missing_kid: str | None = None) -> KeySet:
        """The provider's keys; a kid we do not know (key rotation) refetches them,
        at most once per kid per interval so a stream of bogus kids cannot hammer the provider."""
        meta = await self.metadata()
        async with self._lock:
            now = time.monotonic()
            refetch = False
            if missing_kid is not None and now - self._missed_kids.get(missing_kid, -1e9) > JWKS_REFETCH_MIN_INTERVAL:
                self._missed_kids[missing_kid] = now
                refetch = True
            if self._jwks is None or refetch:
                data = await self._get_json(meta["jwks_uri"])
                try:
                    self._jwks = KeySet.import_key_set(data)
                except (JoseError, ValueError, TypeError, KeyError) as exc:
                    raise OIDCError("provider_misconfigured", f"bad JWKS: {exc!r}") from None
                self._jwks_at = time.monotonic()
            return self._jwks

    async def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, code_challenge: str) -> str:
        meta = await self.metadata()
        return add_params_to_uri(meta["authorization_endpoint"], [
            ("response_type", "code"), ("client_id", self.config.client_id),
            ("redirect_uri", redirect_uri), ("scope", " ".join(self.config.scopes)),
            ("state", state), ("nonce", nonce),
            ("code_challenge", code_challenge), ("code_challenge_method", "S256"),
        ])

    async def exchange(self, *, code: str, code_verifier: str, redirect_uri: str) -> dict[str, Any]:
        meta = await self.metadata()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": code_verifier, "client_id": self.config.client_id}
        # RFC 6749 2.3.1: both parts are form-encoded before Basic encoding.
        basic = aiohttp.encode_basic_auth(quote(self.config.client_id, safe=""),
                                          quote(self.config.client_secret, safe=""))
        try:
            async with self.session.post(meta["token_endpoint"], data=form,
                                         headers={"Accept": "application/json", "Authorization": basic},
                                         timeout=aiohttp.ClientTimeout(total=15)) as resp:
                body = await resp.json(content_type=None)
                status = resp.status
        except (aiohttp.ClientError, asyncio.TimeoutError, json.JSONDecodeError) as exc:
            raise OIDCError("provider_unavailable", f"token request failed: {exc!r}") from None
        if status != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            raise OIDCError("token_exchange_failed", f"token endpoint answered {status}: {error}")
        if not isinstance(body.get("id_token"), str):
            raise OIDCError("token_exchange_failed", "token response has no id_token")
        return body

    async def verify_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        meta = await self.metadata()
        supported = meta.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [a for a in supported if a in ALLOWED_ALGORITHMS]
        if not algorithms:
            raise OIDCError("provider_misconfigured", f"no acceptable signing algorithm in {supported}")
        keys = await self._keys()
        try:
            try:
                token = jwt.decode(id_token, keys, algorithms=algorithms)
            except InvalidKeyIdError:
                kid = _unverified_kid(id_token)
                token = jwt.decode(id_token, await self._keys(missing_kid=kid), algorithms=algorithms)
        except (JoseError, ValueError) as exc:
            raise OIDCError("id_token_invalid", f"signature: {type(exc).__name__}: {exc}") from None
        claims = CodeIDToken(
            token.claims, token.header,
            {"iss": {"essential": True, "value": meta["issuer"]},
             "aud": {"essential": True, "value": self.config.client_id},
             "exp": {"essential": True}, "nonce": {"essential": True}},
            {"nonce": nonce, "client_id": self.config.client_id})
        try:
            claims.validate(leeway=CLOCK_LEEWAY)
        except JoseError as exc:
            raise OIDCError("id_token_invalid", f"claims: {type(exc).__name__}: {exc}") from None
        return dict(claims)

    async def sign_in(self, *, code: str, code_verifier: str, redirect_uri: str, nonce: str) -> Identity:
        tokens = await self.exchange(code=code, code_verifier=code_verifier, redirect_uri=redirect_uri)
        claims = await self.verify_id_token(tokens["id_token"], nonce=nonce)
        if not all(_storable(claims.get(name)) for name in ("sub", "email", "name")):
            # A JSON "\ud800" escape is a string Python holds but UTF-8 (and so SQLite) cannot.
            raise OIDCError("id_token_invalid", "claims: sub, email or name holds a lone surrogate")
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise OIDCError("email_missing", "the ID token carries no email; request the email scope")
        if claims.get("email_verified") is not True:
            raise OIDCError("email_not_verified", f"{email} is not verified at {self.config.name}")
        return Identity(self.config.name, str(claims["sub"]), email, str(claims.get("name") or ""),
                        email_verified=True)
