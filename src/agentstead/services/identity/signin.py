"""Signing in: OpenID Connect (authorization code with PKCE) and single-use sign-in links.
A sign-in finds or creates the user (by the signup policy), links the identity, opens
a session and audits it, in one transaction after the provider answered."""

from __future__ import annotations

import dataclasses
import logging
import re
import sqlite3
from urllib.parse import quote, urlsplit

import aiohttp

from ...auth import tokens
from ...auth.oidc import Identity, OIDCClient, OIDCError, ProviderConfig
from ...bus import events as ev
from ...errors import Refused
from ...settings import Settings
from ...store import logins as login_store
from ...store import users as user_store
from ...store.db import Database
from ...store.users import User
from ...timeutil import later_iso
from .context import Context, audit
from .principals import Principals
from .sessions import IssuedSession, Sessions

log = logging.getLogger("agentstead.identity")
LOGIN_STATE_TTL = 600          # seconds a sign-in may take at the provider
_NOT_IN_NEXT = re.compile(r"[\x00-\x1f\x7f\\]")   # control characters and backslashes
_NEXT_SAFE = "/?#&=%:@!$'()*+,;~-._[]"                # kept as they are; the rest is percent-encoded


@dataclasses.dataclass(frozen=True)
class LoginStart:
    url: str
    state: str


def safe_next(path: str | None) -> str:
    """Where to go after sign-in, as a same-origin path safe to put in a Location header: an
    absolute path (never //host, a scheme or a backslash: no open redirect), no control
    characters (no header splitting), non-ASCII percent-encoded; anything else is "/"."""
    if (not path or len(path) > 512 or not path.startswith("/") or path.startswith("//")
            or _NOT_IN_NEXT.search(path)):
        return "/"
    parts = urlsplit(path)
    if parts.scheme or parts.netloc:
        return "/"
    return quote(path, safe=_NEXT_SAFE)


def _may_attach(conn: sqlite3.Connection, user: User, identity: Identity) -> None:
    """A first sign-in at a provider joins an existing account by email only when the
    provider asserted the address verified, and only when the account has no identity at
    that provider yet. A second subject at the same provider with the same address is a
    different account there (deleted and recreated, or the address was given to someone
    else); it must not inherit this one. docs/security.md, "Account linking"."""
    if not identity.email_verified:
        raise Refused(403, "email_not_verified", f"{identity.email} is not verified at {identity.provider}")
    if user_store.has_identity(conn, user.id, identity.provider):
        raise Refused(409, "identity_conflict",
                      f"{identity.email} is already linked to another {identity.provider} account")


class SignIn:
    def __init__(self, db: Database, settings: Settings, http: aiohttp.ClientSession, sessions: Sessions,
                 principals: Principals):
        self.db = db
        self.settings = settings
        self.sessions = sessions
        self.principals = principals
        self.providers = {p["name"]: OIDCClient(ProviderConfig(
            name=p["name"], issuer=p["issuer"], client_id=p["client_id"], client_secret=p["client_secret"],
            display_name=p["display_name"], scopes=tuple(p["scopes"])), http)
            for p in settings.oidc_providers}

    def redirect_uri(self, provider: str) -> str:
        return f"{self.settings.public_url}/auth/callback/{provider}"

    def _client(self, provider: str) -> OIDCClient:
        client = self.providers.get(provider)
        if client is None:
            raise Refused(404, "unknown_provider", f"no sign-in provider named {provider!r}")
        return client

    async def start(self, provider: str, next_path: str | None) -> LoginStart:
        client = self._client(provider)
        state, nonce = tokens.opaque(), tokens.opaque()
        verifier, challenge = tokens.pkce_pair()
        try:
            url = await client.authorization_url(redirect_uri=self.redirect_uri(provider), state=state,
                                                  nonce=nonce, code_challenge=challenge)
        except OIDCError as exc:
            log.warning("sign-in provider unavailable", extra={"provider": provider, "detail": exc.detail})
            raise Refused(502, exc.code, f"the sign-in provider {provider!r} cannot be reached now") from None
        await self.db.write(login_store.put_state, tokens.digest(state), login_store.LoginState(
            provider, nonce, verifier, safe_next(next_path), later_iso(LOGIN_STATE_TTL)))
        return LoginStart(url, state)

    async def finish(self, provider: str, *, code: str | None, state: str | None, cookie_state: str | None,
                     error: str | None, ctx: Context, iss: str | None = None) -> IssuedSession:
        """Complete the code flow. Raises Refused with a code safe to show; audits either way."""
        try:
            return await self._finish(provider, code, state, cookie_state, error, ctx, iss)
        except OIDCError as exc:
            await self._failed(ctx, provider, exc.code, exc.detail)
            raise Refused(401, exc.code, "sign-in failed") from None
        except Refused as exc:
            await self._failed(ctx, provider, exc.code, exc.message)
            raise

    async def _failed(self, ctx: Context, target: str, reason: str, detail: str | None = None) -> None:
        extra = {"detail": detail} if detail is not None else {}
        await self.db.write(audit, "auth.signin", ctx, outcome="failure", target=target, reason=reason, **extra)

    async def _finish(self, provider, code, state, cookie_state, error, ctx, iss) -> IssuedSession:
        client = self._client(provider)
        if not state or not cookie_state or not tokens.hmac_equal(state, cookie_state):
            raise Refused(400, "state_mismatch", "the sign-in was not started in this browser, or expired")
        pending = await self.db.write(login_store.take_state, tokens.digest(state))
        if pending is None or pending.provider != provider:
            raise Refused(400, "state_mismatch", "the sign-in state is unknown, used or expired")
        if iss is not None and iss.rstrip("/") != client.config.issuer.rstrip("/"):
            # RFC 9207 mix-up defence: the response must come from the provider the flow started with.
            raise Refused(400, "issuer_mismatch", "the authorization response came from another issuer")
        if error:
            raise Refused(401, "provider_refused", f"the provider answered {error[:64]!r}")
        if not code:
            raise Refused(400, "code_missing", "the provider sent no authorization code")
        identity = await client.sign_in(code=code, code_verifier=pending.code_verifier,
                                        redirect_uri=self.redirect_uri(provider), nonce=pending.nonce)
        user, created, session = await self.db.write(self._signed_in, identity, ctx, events=lambda r: [
            ("system", ev.UserCreated(r[0].id, r[0].email, r[0].role))] if r[1] else [])
        return self._issued(user, session, safe_next(pending.next_path))

    def _signed_in(self, conn: sqlite3.Connection, identity: Identity, ctx: Context):
        """The user (found, joined by verified email, or created by the signup policy), the
        identity linked, a new session, audited. Returns (user, created, session)."""
        policy = self.settings.signup_policy
        created = False
        user = user_store.by_identity(conn, identity.provider, identity.subject)
        if user is None:
            user = user_store.by_email(conn, identity.email)
            if user is not None:
                _may_attach(conn, user, identity)
            else:
                domain = identity.email.rsplit("@", 1)[1].lower()
                if not (policy == "open" or (policy == "domains" and domain in self.settings.signup_domains)):
                    raise Refused(403, "signup_closed", f"{identity.email} has no account here; ask an administrator")
                user, created = user_store.create(conn, identity.email, name=identity.name), True
                audit(conn, "user.created", ctx, actor_id=user.id, target=user.id, via=identity.provider,
                      policy=policy)
        if user.disabled:
            raise Refused(403, "account_disabled", "this account is disabled")
        user_store.link_identity(conn, identity.provider, identity.subject, user.id, identity.email)
        session = self.sessions.create(conn, user, ctx)
        audit(conn, "auth.signin", ctx, actor_id=user.id, target=identity.provider, session_id=session[0])
        return user, created, session

    def _issued(self, user: User, session: tuple[str, str, str], next_path: str = "/") -> IssuedSession:
        session_id, refresh, expires = session
        self.principals.known_user(user)
        self.principals.known_session(session_id, expires)
        return self.sessions.tokens_for(user, session_id, refresh, next_path)

    async def use_link(self, token: str, ctx: Context) -> IssuedSession:
        """A single-use sign-in link (users.py: login_link): a session, audited either way."""
        def use(conn: sqlite3.Connection):
            user_id = login_store.use_link(conn, tokens.digest(token))
            user = user_store.get(conn, user_id) if user_id else None
            if user is None or user.disabled:
                audit(conn, "auth.signin", ctx, outcome="failure", target="login-link", reason="link_invalid")
                return None
            session = self.sessions.create(conn, user, ctx)
            audit(conn, "auth.signin", ctx, actor_id=user.id, target="login-link", session_id=session[0])
            return user, session
        result = await self.db.write(use)
        if result is None:
            raise Refused(401, "link_invalid", "this sign-in link is invalid, used or expired")
        return self._issued(*result)
