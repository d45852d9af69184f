"""Identity and access: sign-in, sessions, API tokens, users, audit.

The rules live here; SQL lives in store/; HTTP lives in http/. State kept in
memory (caches of users, session families and API tokens, WebSocket tickets)
is safe because one process owns the database: every change goes through
this service, which updates the cache after the write commits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import math
import re
import time
import uuid
from urllib.parse import quote, urlsplit
from typing import Any, Callable

import aiohttp

from ..auth import tokens
from ..auth.access import ROLE_SCOPES, Principal, expand, token_scopes_allowed
from ..auth.oidc import Identity, OIDCClient, OIDCError, ProviderConfig
from ..settings import Settings
from ..bus import events as ev
from ..bus.bus import Bus
from ..bus.events import Event
from ..store import api_tokens as token_store
from ..store import audit as audit_store
from ..store import logins as login_store
from ..store import sessions as session_store
from ..store import users as user_store
from ..store.db import Database, in_thread
from ..timeutil import iso, later_iso, now, now_iso, parse

log = logging.getLogger("agentstead.identity")

LOGIN_STATE_TTL = 600          # seconds a sign-in may take at the provider
LOGIN_LINK_TTL = 15 * 60
WS_TICKET_TTL = 30.0
TOUCH_INTERVAL = 60.0          # API token last-used time is written at most this often
PRINCIPAL_CACHE_SIZE = 10_000  # entries per in-memory map before it starts over


def _epoch(stored: str) -> float:
    """A stored timestamp (timeutil format) as epoch seconds: parsed once, when cached."""
    return parse(stored).timestamp()


class AuthError(Exception):
    """A refusal meant for the client: HTTP status, stable code, message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclasses.dataclass(frozen=True)
class Context:
    """Where a request came from, for the audit log."""
    ip: str = ""
    user_agent: str = ""


@dataclasses.dataclass(frozen=True)
class IssuedSession:
    user: user_store.User
    session_id: str
    refresh_token: str
    access_token: str
    csrf_token: str
    next_path: str = "/"


@dataclasses.dataclass(frozen=True)
class LoginStart:
    url: str
    state: str


_NOT_IN_NEXT = re.compile(r"[\x00-\x1f\x7f\\]")   # control characters and backslashes
_NEXT_SAFE = "/?#&=%:@!$'()*+,;~-._[]"                # kept as they are; the rest is percent-encoded


def _safe_next(path: str | None) -> str:
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


class IdentityService:
    def __init__(self, db: Database, settings: Settings, http: aiohttp.ClientSession, bus: Bus | None = None):
        self.db = db
        self.bus = bus
        self.settings = settings
        self.keys = tokens.Keys.from_secret(settings.secret_key)
        self.issuer = settings.public_url
        self.providers = {p["name"]: OIDCClient(ProviderConfig(
            name=p["name"], issuer=p["issuer"], client_id=p["client_id"], client_secret=p["client_secret"],
            display_name=p["display_name"], scopes=tuple(p["scopes"])), http)
            for p in settings.oidc_providers}
        # In-memory state, filled from the database on first use. Every change to who may do
        # what (revoke, disable, role, logout) goes through _invalidate() after its write commits.
        self._users: dict[str, user_store.User] = {}
        self._families: dict[str, float] = {}         # session id -> end (epoch seconds; 0: ended)
        self._api_tokens: dict[str, tuple[token_store.ApiToken, float]] = {}  # digest -> (row, expiry)
        self._touched: dict[str, float] = {}
        self._touch_pending: dict[str, str] = {}
        self._ws_tickets: dict[str, tuple[Principal, float]] = {}
        self._verified: dict[str, tokens.AccessClaims] = {}
        # The per-request fast path: credential digest -> (principal, valid until epoch seconds).
        # Separate maps, so an API token sent as the access cookie never matches (or vice versa).
        self._session_principals: dict[str, tuple[Principal, float]] = {}
        self._token_principals: dict[str, tuple[Principal, float]] = {}
        self._csrf: dict[str, str] = {}
        # Long-lived connections (WebSockets, SSE) of a user, told synchronously after each change
        # to who that user is (see watch), so they re-check before delivering anything more.
        self._watchers: dict[str, set[Callable[[], None]]] = {}
        # Bumped by every invalidation: a database read that started before it must not be cached.
        self._generation = 0

    # ---- audit and events --------------------------------------------------

    async def notify(self, topic: str, event: Event) -> None:
        """Publish after the write committed (the bus appends it to the log first)."""
        if self.bus is not None:
            await self.bus.publish(topic, event)

    async def audit(self, action: str, ctx: Context, *, outcome: str = "success", actor_id: str | None = None,
                    target: str = "", **details: Any) -> None:
        async with self.db.write() as conn:
            await audit_store.append(conn, audit_store.Record(action, outcome, actor_id, target, ctx.ip,
                                                               ctx.user_agent, details))

    # ---- OpenID Connect sign-in ------------------------------------------

    def redirect_uri(self, provider: str) -> str:
        return f"{self.settings.public_url}/auth/callback/{provider}"

    async def start_login(self, provider: str, next_path: str | None) -> LoginStart:
        client = self.providers.get(provider)
        if client is None:
            raise AuthError(404, "unknown_provider", f"no sign-in provider named {provider!r}")
        state, nonce = tokens.opaque(), tokens.opaque()
        verifier, challenge = tokens.pkce_pair()
        try:
            url = await client.authorization_url(redirect_uri=self.redirect_uri(provider), state=state,
                                                  nonce=nonce, code_challenge=challenge)
        except OIDCError as exc:
            log.warning("sign-in provider unavailable", extra={"provider": provider, "detail": exc.detail})
            raise AuthError(502, exc.code, f"the sign-in provider {provider!r} cannot be reached now") from None
        async with self.db.write() as conn:
            await login_store.put_state(conn, tokens.digest(state), login_store.LoginState(
                provider, nonce, verifier, _safe_next(next_path), later_iso(LOGIN_STATE_TTL)))
        return LoginStart(url, state)

    async def finish_login(self, provider: str, *, code: str | None, state: str | None, cookie_state: str | None,
                           error: str | None, ctx: Context, iss: str | None = None) -> IssuedSession:
        """Complete the code flow. Raises AuthError with a code safe to show; audits either way."""
        try:
            return await self._finish_login(provider, code, state, cookie_state, error, ctx, iss)
        except OIDCError as exc:
            await self.audit("auth.signin", ctx, outcome="failure", target=provider, reason=exc.code,
                             detail=exc.detail)
            raise AuthError(401, exc.code, "sign-in failed") from None
        except AuthError as exc:
            await self.audit("auth.signin", ctx, outcome="failure", target=provider, reason=exc.code,
                             detail=exc.message)
            raise

    async def _finish_login(self, provider, code, state, cookie_state, error, ctx, iss) -> IssuedSession:
        client = self.providers.get(provider)
        if client is None:
            raise AuthError(404, "unknown_provider", f"no sign-in provider named {provider!r}")
        if not state or not cookie_state or not tokens.hmac_equal(state, cookie_state):
            raise AuthError(400, "state_mismatch", "the sign-in was not started in this browser, or expired")
        async with self.db.write() as conn:
            pending = await login_store.take_state(conn, tokens.digest(state))
        if pending is None or pending.provider != provider:
            raise AuthError(400, "state_mismatch", "the sign-in state is unknown, used or expired")
        if iss is not None and iss.rstrip("/") != client.config.issuer.rstrip("/"):
            # RFC 9207 mix-up defence: the response must come from the provider the flow started with.
            raise AuthError(400, "issuer_mismatch", "the authorization response came from another issuer")
        if error:
            raise AuthError(401, "provider_refused", f"the provider answered {error[:64]!r}")
        if not code:
            raise AuthError(400, "code_missing", "the provider sent no authorization code")
        identity = await client.sign_in(code=code, code_verifier=pending.code_verifier,
                                        redirect_uri=self.redirect_uri(provider), nonce=pending.nonce)
        user = await self._user_for(identity, ctx)
        issued = await self._issue(user, ctx, _safe_next(pending.next_path))
        await self.audit("auth.signin", ctx, actor_id=user.id, target=provider, session_id=issued.session_id)
        return issued

    async def _user_for(self, identity: Identity, ctx: Context) -> user_store.User:
        policy = self.settings.signup_policy
        domain = identity.email.rsplit("@", 1)[1].lower()
        created = None
        async with self.db.write() as conn:
            user = await user_store.by_identity(conn, identity.provider, identity.subject)
            if user is None:
                user = await user_store.by_email(conn, identity.email)
                if user is not None:
                    await self._may_attach(conn, user, identity)
                if user is None:
                    allowed = policy == "open" or (policy == "domains" and domain in self.settings.signup_domains)
                    if not allowed:
                        raise AuthError(403, "signup_closed",
                                        f"{identity.email} has no account here; ask an administrator")
                    user = await user_store.create(conn, identity.email, name=identity.name)
                    created = user
                    await audit_store.append(conn, audit_store.Record(
                        "user.created", actor_id=user.id, target=user.id, ip=ctx.ip, user_agent=ctx.user_agent,
                        details={"via": identity.provider, "policy": policy}))
            if user.disabled:
                raise AuthError(403, "account_disabled", "this account is disabled")
            await user_store.link_identity(conn, identity.provider, identity.subject, user.id, identity.email)
        self._users[user.id] = user  # read inside the write: the current row
        if created is not None:
            await self.notify("system", ev.UserCreated(created.id, created.email, created.role))
        return user

    @staticmethod
    async def _may_attach(conn, user: user_store.User, identity: Identity) -> None:
        """A first sign-in at a provider joins an existing account by email only when the
        provider asserted the address verified, and only when the account has no identity at
        that provider yet. A second subject at the same provider with the same address is a
        different account there (deleted and recreated, or the address was given to someone
        else); it must not inherit this one. docs/security.md, "Account linking"."""
        if not identity.email_verified:
            raise AuthError(403, "email_not_verified", f"{identity.email} is not verified at {identity.provider}")
        if await user_store.has_identity(conn, user.id, identity.provider):
            raise AuthError(409, "identity_conflict",
                            f"{identity.email} is already linked to another {identity.provider} account")

    # ---- sessions ----------------------------------------------------------

    async def _issue(self, user: user_store.User, ctx: Context, next_path: str = "/") -> IssuedSession:
        session_id = str(uuid.uuid4())
        refresh = tokens.opaque()
        expires = later_iso(self.settings.session_ttl_days * 86400)
        async with self.db.write() as conn:
            await session_store.create_family(conn, session_id, user.id, expires, ctx.ip, ctx.user_agent)
            await session_store.add_refresh(conn, tokens.digest(refresh), session_id)
        self._families[session_id] = _epoch(expires)
        return self._session_tokens(user, session_id, refresh, next_path)

    def _session_tokens(self, user, session_id, refresh, next_path="/") -> IssuedSession:
        access = tokens.issue_access(self.keys, self.issuer, user.id, session_id,
                                     self.settings.access_token_ttl_seconds)
        return IssuedSession(user, session_id, refresh, access, tokens.csrf_token(self.keys, session_id), next_path)

    async def refresh(self, refresh_token: str | None, ctx: Context) -> IssuedSession:
        """Rotate: the presented token is spent and a new one issued. Reuse revokes the family."""
        if not refresh_token:
            raise AuthError(401, "unauthorized", "no session")
        reuse = None
        async with self.db.write() as conn:
            found = await session_store.find_refresh(conn, tokens.digest(refresh_token))
            if found is None:
                raise AuthError(401, "unauthorized", "unknown session")
            token, family = found
            if token.rotated_at is not None:
                await session_store.revoke_family(conn, family.id, "refresh token reused")
                reuse = family
            elif not family.active:
                raise AuthError(401, "session_ended", "the session has ended; sign in again")
            else:
                user = await user_store.get_in(conn, family.user_id)
                if user is None or user.disabled:
                    raise AuthError(401, "account_disabled", "this account is disabled")
                new = tokens.opaque()
                await session_store.mark_rotated(conn, token.token_hash)
                await session_store.add_refresh(conn, tokens.digest(new), family.id)
        if reuse is not None:
            self._families[reuse.id] = 0.0
            self._invalidate(reuse.user_id)
            await self.audit("session.reuse_detected", ctx, outcome="failure", actor_id=reuse.user_id,
                             target=reuse.id)
            await self.notify(f"users/{reuse.user_id}", ev.SessionRevoked([reuse.id], "refresh token reused"))
            raise AuthError(401, "session_revoked", "this session was revoked because its token was reused")
        self._users[user.id] = user
        return self._session_tokens(user, family.id, new)

    async def logout(self, principal: Principal, ctx: Context) -> None:
        if principal.session_id is None:
            raise AuthError(400, "not_a_session", "API tokens are revoked with DELETE /api/tokens/{id}")
        async with self.db.write() as conn:
            await session_store.revoke_family(conn, principal.session_id, "logout")
        self._families[principal.session_id] = 0.0
        self._invalidate(principal.user_id)
        await self.audit("session.revoked", ctx, actor_id=principal.user_id, target=principal.session_id,
                         reason="logout")
        await self.notify(f"users/{principal.user_id}", ev.SessionRevoked([principal.session_id], "logout"))

    async def logout_all(self, principal: Principal, ctx: Context) -> int:
        async with self.db.write() as conn:
            ids = await session_store.revoke_user_families(conn, principal.user_id, "logout everywhere")
        for session_id in ids:
            self._families[session_id] = 0.0
        self._invalidate(principal.user_id)
        await self.audit("session.revoked", ctx, actor_id=principal.user_id, target=principal.user_id,
                         reason="logout everywhere", count=len(ids))
        await self.notify(f"users/{principal.user_id}", ev.SessionRevoked(ids, "logout everywhere"))
        return len(ids)

    async def sessions_of(self, principal: Principal) -> list[session_store.Family]:
        return await session_store.active_for_user(self.db, principal.user_id)

    # ---- authenticating requests -----------------------------------------

    def _invalidate(self, user_id: str) -> None:
        """Forget every resolved principal and the user's WebSocket tickets, and tell the
        user's open connections. Called after each write that changes who may do what (logout,
        logout everywhere, refresh-token reuse, token revocation, role change, disable): the
        very next request, ticket or subscription is resolved again from the updated state."""
        self._generation += 1
        self._session_principals.clear()
        self._token_principals.clear()
        for key in [k for k, (p, _) in self._ws_tickets.items() if p.user_id == user_id]:
            del self._ws_tickets[key]
        for callback in list(self._watchers.get(user_id, ())):
            try:
                callback()
            except Exception:  # one broken connection never keeps the others from hearing it
                log.exception("identity watcher failed")

    def watch(self, user_id: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` (synchronously, right after the write commits) whenever who
        `user_id` is changes; returns the function that stops it."""
        self._watchers.setdefault(user_id, set()).add(callback)

        def stop() -> None:
            watchers = self._watchers.get(user_id)
            if watchers is not None:
                watchers.discard(callback)
                if not watchers:
                    del self._watchers[user_id]
        return stop

    async def current(self, principal: Principal) -> tuple[Principal, float]:
        """The caller behind a long-lived connection (a WebSocket, its ticket, an SSE stream) as
        they are now, and until when (epoch seconds): the session or API token still live, the
        user still active, scopes from the current role. Raises AuthError when they are gone."""
        if principal.via == "session" and principal.session_id is not None:
            end = await self._family_end(principal.session_id)
            if end <= time.time():
                raise AuthError(401, "session_ended", "the session has ended; sign in again")
            user = await self._active_user(principal.user_id)
            return Principal(user.id, user.email, user.role, ROLE_SCOPES[user.role], "session",
                             session_id=principal.session_id), end
        row = await token_store.by_id(self.db, principal.token_id or "")
        if row is None or row.user_id != principal.user_id or row.revoked_at is not None:
            raise AuthError(401, "token_revoked", "this API token is revoked")
        expires = _epoch(row.expires_at) if row.expires_at else math.inf
        if expires <= time.time():
            raise AuthError(401, "token_expired", "this API token has expired")
        user = await self._active_user(row.user_id)
        return self._token_principal(row, user), expires

    async def _active_user(self, user_id: str) -> user_store.User:
        user = await self.user(user_id)
        if user is None or user.disabled:
            raise AuthError(401, "account_disabled", "this account is disabled")
        return user

    @staticmethod
    def _token_principal(row: token_store.ApiToken, user: user_store.User) -> Principal:
        scopes = expand(row.scopes) & ROLE_SCOPES[user.role]  # a demoted owner's token loses admin
        return Principal(user.id, user.email, user.role, scopes, "token", token_id=row.id)

    @staticmethod
    def _remember(cache: dict, key: str, value) -> None:
        if len(cache) >= PRINCIPAL_CACHE_SIZE:
            cache.clear()
        cache[key] = value

    async def user(self, user_id: str) -> user_store.User | None:
        user = self._users.get(user_id)
        if user is None:
            generation = self._generation
            user = await user_store.get(self.db, user_id)
            if user is not None and generation == self._generation:
                self._users[user_id] = user
        return user

    def cached_session(self, token: str) -> Principal | None:
        """The fast path for an access cookie: a principal resolved earlier, still valid
        (token and session not expired, nothing invalidated since). None: use from_access_token."""
        entry = self._session_principals.get(tokens.digest(token))
        if entry is not None and entry[1] > time.time():
            return entry[0]
        return None

    def cached_api_token(self, token: str) -> Principal | None:
        """The fast path for `Authorization: Bearer ast_...`; None: use from_api_token."""
        entry = self._token_principals.get(tokens.digest(token))
        if entry is not None and entry[1] > time.time():
            principal = entry[0]
            self._note_use(principal.token_id)
            return principal
        return None

    async def _family_end(self, session_id: str) -> float:
        end = self._families.get(session_id)
        if end is None:
            generation = self._generation
            family = await session_store.get_family(self.db, session_id)
            end = _epoch(family.expires_at) if family is not None and family.revoked_at is None else 0.0
            if generation == self._generation:
                self._families[session_id] = end
        return end

    async def from_access_token(self, token: str) -> Principal:
        generation = self._generation
        claims = self._verified.get(token)
        if claims is not None and claims.expires_at <= time.time():
            claims = None
            self._verified.pop(token, None)
        try:
            if claims is None:
                claims = tokens.verify_access(self.keys, self.issuer, token)
                # A verified token is remembered until it expires: the signature check
                # was half the cost of a cookie-authenticated request (bench/RESULTS.md).
                self._remember(self._verified, token, claims)
        except tokens.InvalidToken as exc:
            code = "token_expired" if "expired" in str(exc).lower() else "unauthorized"
            raise AuthError(401, code, "the access token is expired; POST /auth/refresh"
                            if code == "token_expired" else "invalid access token") from None
        session_end = await self._family_end(claims.session_id)
        if session_end <= time.time():
            raise AuthError(401, "session_ended", "the session has ended; sign in again")
        user = await self.user(claims.user_id)
        if user is None or user.disabled:
            raise AuthError(401, "account_disabled", "this account is disabled")
        principal = Principal(user.id, user.email, user.role, ROLE_SCOPES[user.role], "session",
                              session_id=claims.session_id)
        if generation == self._generation:  # nothing changed while this was being read
            self._remember(self._session_principals, tokens.digest(token),
                           (principal, min(claims.expires_at, session_end)))
        return principal

    async def from_api_token(self, token: str) -> Principal:
        generation = self._generation
        digest = tokens.digest(token)
        entry = self._api_tokens.get(digest)
        if entry is None:
            row = await token_store.by_hash(self.db, digest)
            if row is None:
                raise AuthError(401, "unauthorized", "unknown API token")
            entry = (row, _epoch(row.expires_at) if row.expires_at else math.inf)
            if generation == self._generation:
                self._api_tokens[digest] = entry
        row, expires = entry
        if row.revoked_at is not None:
            raise AuthError(401, "token_revoked", "this API token is revoked")
        if expires <= time.time():
            raise AuthError(401, "token_expired", "this API token has expired")
        user = await self._active_user(row.user_id)
        self._note_use(row.id)
        principal = self._token_principal(row, user)
        if generation == self._generation:
            self._remember(self._token_principals, digest, (principal, expires))
        return principal

    def _note_use(self, token_id: str) -> None:
        mono = time.monotonic()
        if mono - self._touched.get(token_id, -1e9) >= TOUCH_INTERVAL:
            self._touched[token_id] = mono
            self._touch_pending[token_id] = now_iso()

    async def flush_token_use(self) -> None:
        """Write batched last-used times (called by a background task and on shutdown)."""
        pending, self._touch_pending = self._touch_pending, {}
        await token_store.touch(self.db, pending)

    def _csrf_token(self, session_id: str) -> str:
        value = self._csrf.get(session_id)
        if value is None:
            value = tokens.csrf_token(self.keys, session_id)
            self._remember(self._csrf, session_id, value)
        return value

    def csrf_ok(self, principal: Principal, presented: str) -> bool:
        return (principal.session_id is not None and bool(presented)
                and tokens.hmac_equal(self._csrf_token(principal.session_id), presented))

    def csrf_for(self, principal: Principal) -> str | None:
        return self._csrf_token(principal.session_id) if principal.session_id else None

    # ---- WebSocket tickets -----------------------------------------------

    def issue_ws_ticket(self, principal: Principal) -> tuple[str, float]:
        mono = time.monotonic()
        for key in [k for k, (_, exp) in self._ws_tickets.items() if exp < mono]:
            del self._ws_tickets[key]
        ticket = tokens.opaque()
        self._ws_tickets[tokens.digest(ticket)] = (principal, mono + WS_TICKET_TTL)
        return ticket, WS_TICKET_TTL

    async def redeem_ws_ticket(self, ticket: str) -> Principal | None:
        """Single use, short-lived, and resolved again now: a ticket issued before a logout,
        a revocation, a disable or a role change gives nothing more than the caller has now."""
        entry = self._ws_tickets.pop(tokens.digest(ticket), None)
        if entry is None or entry[1] < time.monotonic():
            return None
        try:
            principal, _ = await self.current(entry[0])
        except AuthError:
            return None
        return principal

    # ---- API tokens ----------------------------------------------------------

    async def create_api_token(self, principal: Principal, name: str, scopes: set[str], expires_in_days: int | None,
                               ctx: Context, record=None) -> tuple[token_store.ApiToken, str]:
        """`record(conn, (row, plain))`: the request's Idempotency-Key and response, in the same transaction."""
        user = await self.user(principal.user_id)
        assert user is not None
        if not token_scopes_allowed(user.role, scopes) or not expand(scopes) <= principal.scopes:
            raise AuthError(403, "insufficient_scope", "a token cannot have scopes its creator lacks")
        days = expires_in_days or self.settings.api_token_max_days
        if days > self.settings.api_token_max_days:
            raise AuthError(422, "validation_failed",
                            f"expires_in_days must be at most {self.settings.api_token_max_days}")
        plain = tokens.new_api_token()
        row = token_store.ApiToken(str(uuid.uuid4()), user.id, name, tokens.digest(plain),
                                   tuple(sorted(scopes)), now_iso(), iso(now() + dt.timedelta(days=days)),
                                   None, None)
        async with self.db.write() as conn:
            await token_store.create(conn, row)
            await audit_store.append(conn, audit_store.Record(
                "token.created", actor_id=user.id, target=row.id, ip=ctx.ip, user_agent=ctx.user_agent,
                details={"name": name, "scopes": list(row.scopes), "expires_at": row.expires_at}))
            if record is not None:
                await in_thread(conn, record, (row, plain))
        await self.notify(f"users/{user.id}", ev.TokenCreated(row.id, name, list(row.scopes)))
        return row, plain

    async def list_api_tokens(self, principal: Principal) -> list[token_store.ApiToken]:
        return await token_store.for_user(self.db, principal.user_id)

    async def revoke_api_token(self, principal: Principal, token_id: str, ctx: Context) -> None:
        async with self.db.write() as conn:
            row = await token_store.get_owned(conn, token_id, principal.user_id)
            if row is None or row.revoked_at is not None:
                raise AuthError(404, "not_found", "no such token")
            await token_store.revoke(conn, token_id)
            await audit_store.append(conn, audit_store.Record(
                "token.revoked", actor_id=principal.user_id, target=token_id, ip=ctx.ip, user_agent=ctx.user_agent))
        self._api_tokens.pop(row.token_hash, None)
        self._invalidate(principal.user_id)
        await self.notify(f"users/{principal.user_id}", ev.TokenRevoked(token_id))

    # ---- users (admin and CLI) -------------------------------------------

    async def create_user(self, email: str, role: str, ctx: Context, actor_id: str | None = None) -> user_store.User:
        async with self.db.write() as conn:
            if await user_store.by_email(conn, email) is not None:
                raise AuthError(409, "conflict", f"a user with email {email} exists")
            user = await user_store.create(conn, email, role=role)
            await audit_store.append(conn, audit_store.Record(
                "user.created", actor_id=actor_id, target=user.id, ip=ctx.ip, user_agent=ctx.user_agent,
                details={"email": email, "role": role}))
        await self.notify("system", ev.UserCreated(user.id, user.email, user.role))
        return user

    async def ensure_initial_admin(self, email: str) -> user_store.User | None:
        """At startup, while there is no administrator: make the configured email one (created,
        or a member promoted), audited. Returns that user, or None when an admin exists."""
        async with self.db.write() as conn:
            if await user_store.count_admins(conn) > 0:
                return None
            ctx = Context(user_agent="agentstead (initial_admin_email)")
            existing = await user_store.by_email(conn, email)
            if existing is None:
                user = await user_store.create(conn, email, role="admin")
                action, details = "user.created", {"email": email, "role": "admin"}
            else:
                user = await user_store.update(conn, existing.id, role="admin", disabled=False)
                action, details = "user.updated", {"changes": {"role": {"from": existing.role, "to": "admin"}}}
            await audit_store.append(conn, audit_store.Record(
                action, target=user.id, ip=ctx.ip, user_agent=ctx.user_agent,
                details={**details, "source": "initial_admin_email"}))
        if existing is None:
            await self.notify("system", ev.UserCreated(user.id, user.email, user.role))
        else:
            self._users[user.id] = user
            self._invalidate(user.id)
            await self.notify(f"users/{user.id}", ev.AccountUpdated(user.role, user.disabled))
        return user

    async def update_user(self, actor: Principal, user_id: str, ctx: Context, *, role: str | None = None,
                          disabled: bool | None = None) -> user_store.User:
        revoked_hashes: list[str] = []
        revoked_families: list[str] = []
        async with self.db.write() as conn:
            before = await user_store.get_in(conn, user_id)
            if before is None:
                raise AuthError(404, "not_found", "no such user")
            losing_admin = before.role == "admin" and not before.disabled and (role == "member" or disabled)
            if losing_admin and await user_store.count_admins(conn) <= 1:
                raise AuthError(409, "last_admin", "this is the last active administrator")
            after = await user_store.update(conn, user_id, role=role, disabled=disabled)
            if disabled:
                revoked_families = await session_store.revoke_user_families(conn, user_id, "account disabled")
                revoked_hashes = await token_store.revoke_for_user(conn, user_id)
            changes = {k: {"from": getattr(before, k), "to": v} for k, v in
                       (("role", role), ("disabled", disabled)) if v is not None and getattr(before, k) != v}
            await audit_store.append(conn, audit_store.Record(
                "user.updated", actor_id=actor.user_id, target=user_id, ip=ctx.ip, user_agent=ctx.user_agent,
                details={"changes": changes, "sessions_revoked": len(revoked_families),
                         "tokens_revoked": len(revoked_hashes)}))
        assert after is not None
        self._users[user_id] = after
        for family_id in revoked_families:
            self._families[family_id] = 0.0
        for digest in revoked_hashes:
            self._api_tokens.pop(digest, None)
        self._invalidate(user_id)
        await self.notify(f"users/{user_id}", ev.AccountUpdated(after.role, after.disabled))
        if revoked_families:
            await self.notify(f"users/{user_id}", ev.SessionRevoked(revoked_families, "account disabled"))
        return after

    async def identities(self, user_id: str) -> list[user_store.Identity]:
        if await user_store.get(self.db, user_id) is None:
            raise AuthError(404, "not_found", "no such user")
        return await user_store.identities_of(self.db, user_id)

    async def unlink_identity(self, actor: Principal, user_id: str, provider: str, subject: str,
                              ctx: Context) -> None:
        """An administrator removes one of a user's sign-in identities: that subject at that
        provider no longer reaches the account, and the account is free to take another
        identity there (how an `identity_conflict` is settled on purpose). The user's
        sessions stay; disable the user to end them."""
        async with self.db.write() as conn:
            if await user_store.get_in(conn, user_id) is None:
                raise AuthError(404, "not_found", "no such user")
            if not await user_store.unlink_identity(conn, user_id, provider, subject):
                raise AuthError(404, "not_found", "the user has no such identity")
            await audit_store.append(conn, audit_store.Record(
                "identity.unlinked", actor_id=actor.user_id, target=user_id, ip=ctx.ip, user_agent=ctx.user_agent,
                details={"provider": provider, "subject": subject}))

    async def list_users(self, *, limit: int, after: str | None, query: str) -> list[user_store.User]:
        return await user_store.page(self.db, limit=limit, after=after, query=query)

    async def login_link(self, email: str, ctx: Context) -> str:
        token = tokens.opaque()
        async with self.db.write() as conn:
            user = await user_store.by_email(conn, email)
            if user is None:
                raise AuthError(404, "not_found", f"no user with email {email}; create it first")
            if user.disabled:
                raise AuthError(409, "account_disabled", f"{email} is disabled")
            await login_store.put_link(conn, tokens.digest(token), user.id, later_iso(LOGIN_LINK_TTL))
            await audit_store.append(conn, audit_store.Record(
                "login_link.created", target=user.id, ip=ctx.ip, user_agent=ctx.user_agent))
        return f"{self.settings.public_url}/auth/link/{token}"

    async def use_login_link(self, token: str, ctx: Context) -> IssuedSession:
        async with self.db.write() as conn:
            user_id = await login_store.use_link(conn, tokens.digest(token))
            user = await user_store.get_in(conn, user_id) if user_id else None
        if user is None or user.disabled:
            await self.audit("auth.signin", ctx, outcome="failure", target="login-link", reason="link_invalid")
            raise AuthError(401, "link_invalid", "this sign-in link is invalid, used or expired")
        issued = await self._issue(user, ctx)
        await self.audit("auth.signin", ctx, actor_id=user.id, target="login-link", session_id=issued.session_id)
        return issued

    async def purge_audit(self) -> int:
        cutoff = iso(now() - dt.timedelta(days=self.settings.audit_retention_days))
        return await audit_store.purge_before(self.db, cutoff)


async def maintenance(service: IdentityService, interval: float = 30.0) -> None:
    """Background: flush token last-used times; purge old audit entries hourly."""
    last_purge = 0.0
    while True:
        await asyncio.sleep(interval)
        try:
            await service.flush_token_use()
            if time.monotonic() - last_purge > 3600:
                await service.purge_audit()
                last_purge = time.monotonic()
        except Exception:  # keep the loop alive; the next round retries
            log.exception("identity maintenance failed")
