"""Secrets and tokens: derived keys, access JWTs, opaque tokens and their hashes.

Pure functions; the only state is the Keys object built once from the secret key.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import secrets
import time
import uuid

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

ACCESS_ALGORITHMS = ["HS256"]  # the allow-list: nothing else is ever accepted
AUDIENCE = "agentstead"
ACCESS_TYP = "at+jwt"  # RFC 9068: an access token, never to be confused with an ID token
API_TOKEN_PREFIX = "ast_"


def _derive(secret: str, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"agentstead",
                info=purpose.encode()).derive(secret.encode())


@dataclasses.dataclass(frozen=True)
class Keys:
    """Keys derived from the secret key, one per purpose, so none is reused."""
    access: bytes
    access_kid: str
    csrf: bytes
    cookie: bytes

    @classmethod
    def from_secret(cls, secret: str) -> "Keys":
        access = _derive(secret, "access-token/v1")
        kid = "k1-" + hashlib.sha256(access).hexdigest()[:12]
        return cls(access, kid, _derive(secret, "csrf/v1"), _derive(secret, "cookie/v1"))


@dataclasses.dataclass(frozen=True)
class AccessClaims:
    user_id: str
    session_id: str
    expires_at: float


class InvalidToken(Exception):
    """The token is not one we issued, or no longer valid."""


def issue_access(keys: Keys, issuer: str, user_id: str, session_id: str, ttl: float,
                 now: float | None = None) -> str:
    now = time.time() if now is None else now
    claims = {"iss": issuer, "aud": AUDIENCE, "sub": user_id, "sid": session_id,
              "iat": int(now), "exp": int(now + ttl), "jti": uuid.uuid4().hex}
    return jwt.encode(claims, keys.access, algorithm="HS256", headers={"kid": keys.access_kid, "typ": ACCESS_TYP})


def verify_access(keys: Keys, issuer: str, token: str) -> AccessClaims:
    try:
        header = jwt.get_unverified_header(token)
        if header.get("kid") != keys.access_kid:
            raise InvalidToken("unknown key id")
        if header.get("typ") != ACCESS_TYP:
            raise InvalidToken("not an access token")
        claims = jwt.decode(token, keys.access, algorithms=ACCESS_ALGORITHMS, audience=AUDIENCE,
                            issuer=issuer, options={"require": ["exp", "iat", "sub", "sid", "aud", "iss"]})
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    return AccessClaims(claims["sub"], claims["sid"], float(claims["exp"]))


def opaque(nbytes: int = 32) -> str:
    """A random URL-safe token."""
    return secrets.token_urlsafe(nbytes)


def digest(token: str) -> str:
    """How opaque tokens are stored: sha256 (they are random, so no salt or stretching is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def csrf_token(keys: Keys, session_id: str) -> str:
    """Bound to the session: a CSRF token from another session never matches."""
    mac = hmac.new(keys.csrf, session_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    verifier = secrets.token_urlsafe(48)
    return verifier, create_s256_code_challenge(verifier)


def hmac_equal(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode(), b.encode())
