"""Who a credential is: the one principal cache, and every invalidation of it.

A request's credential (the access cookie's JWT, or an API token) resolves to a
`Principal` here. What that takes (the user, the session's end, the token's
row) is read once and kept in memory; a resolved principal is kept until its
credential expires. Every change to who may do what (logout, logout everywhere,
a reused refresh token, a revoked token, a role change, a disabled account) is
announced on the user's `users/{id}` topic in the transaction that makes it, and
this cache hears those events on the bus (`account_event`): it forgets what
they make stale, then tells the user's open connections (`watch`: WebSockets and
SSE streams re-check before delivering anything more). Because the cache learns
from the bus, a second instance on the same bus learns the same (issue "Scale out").

A database read that started before an invalidation is not cached (`_generation`).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Callable

from ...auth import tokens
from ...auth.access import ROLE_SCOPES, Principal, expand
from ...bus.bus import Delivery
from ...errors import Refused
from ...store import api_tokens as token_store
from ...store import sessions as session_store
from ...store import users as user_store
from ...store.api_tokens import ApiToken
from ...store.db import Database
from ...store.users import User
from .context import epoch

log = logging.getLogger("agentstead.identity")
CACHE_SIZE = 10_000   # entries per in-memory map before it starts over
INVALIDATING = frozenset({"session.revoked", "token.revoked", "account.updated"})


def _remember(cache: dict, key: str, value) -> None:
    if len(cache) >= CACHE_SIZE:
        cache.clear()
    cache[key] = value


def token_principal(row: ApiToken, user: User) -> Principal:
    scopes = expand(row.scopes) & ROLE_SCOPES[user.role]  # a demoted owner's token loses admin
    return Principal(user.id, user.email, user.role, scopes, "token", token_id=row.id)


class Principals:
    def __init__(self, db: Database, keys: tokens.Keys, issuer: str, note_use: Callable[[str], None]):
        self.db = db
        self.keys = keys
        self.issuer = issuer
        self._note_use = note_use                           # an API token was used (api_tokens.py)
        self._users: dict[str, User] = {}
        self._sessions: dict[str, float] = {}               # session id -> end (epoch seconds; 0: ended)
        self._tokens: dict[str, tuple[ApiToken, float]] = {}   # digest -> (row, expiry)
        # The per-request fast path: "s"|"t" + credential digest -> (principal, valid until). The
        # prefix keeps an API token sent as the access cookie from matching (and vice versa).
        self._resolved: dict[str, tuple[Principal, float]] = {}
        self._watchers: dict[str, set[Callable[[], None]]] = {}
        self._forgetters: list[Callable[[str], None]] = []  # other per-user state (WebSocket tickets)
        self._generation = 0

    # ---- invalidation ----------------------------------------------------------

    def account_event(self, delivery: Delivery) -> None:
        """A bus subscriber on users/*: the events that change who a user is invalidate."""
        if delivery.type not in INVALIDATING:
            return
        user_id = delivery.topic.split("/", 1)[1]
        if delivery.type == "session.revoked":
            for session_id in delivery.data["session_ids"]:
                self._sessions[session_id] = 0.0
        elif delivery.type == "token.revoked":
            self._drop_tokens(lambda row: row.id == delivery.data["token_id"])
        else:   # account.updated: a new role, or disabled (its tokens revoked with it)
            self._users.pop(user_id, None)
            self._drop_tokens(lambda row: row.user_id == user_id)
        self.invalidate(user_id)

    def _drop_tokens(self, which: Callable[[ApiToken], bool]) -> None:
        for digest in [d for d, (row, _) in self._tokens.items() if which(row)]:
            del self._tokens[digest]

    def invalidate(self, user_id: str) -> None:
        """Forget every resolved principal and the user's other state, and tell the user's open
        connections: the very next request, ticket or subscription is resolved again."""
        self._generation += 1
        self._resolved.clear()
        for forget in self._forgetters:
            forget(user_id)
        for callback in list(self._watchers.get(user_id, ())):
            try:
                callback()
            except Exception:  # one broken connection never keeps the others from hearing it
                log.exception("identity watcher failed")

    def on_invalidate(self, forget: Callable[[str], None]) -> None:
        """`forget(user_id)` runs with every invalidation (per-user state kept elsewhere)."""
        self._forgetters.append(forget)

    def watch(self, user_id: str, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` (synchronously, right after the change commits) whenever who
        `user_id` is changes; returns the function that stops it."""
        self._watchers.setdefault(user_id, set()).add(callback)

        def stop() -> None:
            watchers = self._watchers.get(user_id)
            if watchers is not None:
                watchers.discard(callback)
                if not watchers:
                    del self._watchers[user_id]
        return stop

    # ---- what is known ---------------------------------------------------------

    def known_user(self, user: User) -> None:
        """A user row read inside a write (the current one)."""
        self._users[user.id] = user

    def known_session(self, session_id: str, expires_at: str) -> None:
        self._sessions[session_id] = epoch(expires_at)

    async def user(self, user_id: str) -> User | None:
        user = self._users.get(user_id)
        if user is None:
            generation = self._generation
            user = await self.db.read(user_store.get, user_id)
            if user is not None and generation == self._generation:
                self._users[user_id] = user
        return user

    async def active_user(self, user_id: str) -> User:
        user = await self.user(user_id)
        if user is None or user.disabled:
            raise Refused(401, "account_disabled", "this account is disabled")
        return user

    async def _session_end(self, session_id: str) -> float:
        end = self._sessions.get(session_id)
        if end is None:
            generation = self._generation
            family = await self.db.read(session_store.get_family, session_id)
            end = epoch(family.expires_at) if family is not None and family.revoked_at is None else 0.0
            if generation == self._generation:
                self._sessions[session_id] = end
        return end

    # ---- resolving credentials ----------------------------------------------------

    def cached_session(self, token: str) -> Principal | None:
        """The fast path for an access cookie: a principal resolved earlier, still valid
        (token and session not expired, nothing invalidated since). None: use from_access_token."""
        entry = self._resolved.get("s" + tokens.digest(token))
        if entry is not None and entry[1] > time.time():
            return entry[0]
        return None

    def cached_api_token(self, token: str) -> Principal | None:
        """The fast path for `Authorization: Bearer ast_...`; None: use from_api_token."""
        entry = self._resolved.get("t" + tokens.digest(token))
        if entry is not None and entry[1] > time.time():
            principal = entry[0]
            self._note_use(principal.token_id)
            return principal
        return None

    async def from_access_token(self, token: str) -> Principal:
        generation = self._generation
        try:
            claims = tokens.verify_access(self.keys, self.issuer, token)
        except tokens.InvalidToken as exc:
            code = "token_expired" if "expired" in str(exc).lower() else "unauthorized"
            raise Refused(401, code, "the access token is expired; POST /auth/refresh"
                          if code == "token_expired" else "invalid access token") from None
        session_end = await self._session_end(claims.session_id)
        if session_end <= time.time():
            raise Refused(401, "session_ended", "the session has ended; sign in again")
        user = await self.active_user(claims.user_id)
        principal = Principal(user.id, user.email, user.role, ROLE_SCOPES[user.role], "session",
                              session_id=claims.session_id)
        if generation == self._generation:  # nothing changed while this was being read
            _remember(self._resolved, "s" + tokens.digest(token), (principal, min(claims.expires_at, session_end)))
        return principal

    async def from_api_token(self, token: str) -> Principal:
        generation = self._generation
        digest = tokens.digest(token)
        entry = self._tokens.get(digest)
        if entry is None:
            row = await self.db.read(token_store.by_hash, digest)
            if row is None:
                raise Refused(401, "unauthorized", "unknown API token")
            entry = (row, epoch(row.expires_at) if row.expires_at else math.inf)
            if generation == self._generation:
                self._tokens[digest] = entry
        row, expires = entry
        if row.revoked_at is not None:
            raise Refused(401, "token_revoked", "this API token is revoked")
        if expires <= time.time():
            raise Refused(401, "token_expired", "this API token has expired")
        user = await self.active_user(row.user_id)
        self._note_use(row.id)
        principal = token_principal(row, user)
        if generation == self._generation:
            _remember(self._resolved, "t" + digest, (principal, expires))
        return principal

    async def current(self, principal: Principal) -> tuple[Principal, float]:
        """The caller behind a long-lived connection (a WebSocket, its ticket, an SSE stream) as
        they are now, and until when (epoch seconds): the session or API token still live, the
        user still active, scopes from the current role. Raises Refused when they are gone."""
        if principal.via == "session" and principal.session_id is not None:
            end = await self._session_end(principal.session_id)
            if end <= time.time():
                raise Refused(401, "session_ended", "the session has ended; sign in again")
            user = await self.active_user(principal.user_id)
            return Principal(user.id, user.email, user.role, ROLE_SCOPES[user.role], "session",
                             session_id=principal.session_id), end
        row = await self.db.read(token_store.by_id, principal.token_id or "")
        if row is None or row.user_id != principal.user_id or row.revoked_at is not None:
            raise Refused(401, "token_revoked", "this API token is revoked")
        expires = epoch(row.expires_at) if row.expires_at else math.inf
        if expires <= time.time():
            raise Refused(401, "token_expired", "this API token has expired")
        return token_principal(row, await self.active_user(row.user_id)), expires

    # ---- CSRF ----------------------------------------------------------------------

    def csrf_ok(self, principal: Principal, presented: str) -> bool:
        return (principal.session_id is not None and bool(presented)
                and tokens.hmac_equal(tokens.csrf_token(self.keys, principal.session_id), presented))

    def csrf_for(self, principal: Principal) -> str | None:
        return tokens.csrf_token(self.keys, principal.session_id) if principal.session_id else None
