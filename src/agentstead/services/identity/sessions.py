"""Browser sessions: a family of rotating refresh tokens per sign-in, short-lived access
tokens (JWT), logout and logout everywhere. Reusing a spent refresh token revokes
the whole family (someone else has it)."""

from __future__ import annotations

import dataclasses
import sqlite3
import uuid

from ...auth import tokens
from ...auth.access import Principal
from ...bus import events as ev
from ...errors import Refused
from ...settings import Settings
from ...store import sessions as session_store
from ...store import users as user_store
from ...store.db import Database
from ...store.sessions import Family
from ...store.users import User
from ...timeutil import later_iso
from .context import Context, audit
from .principals import Principals


@dataclasses.dataclass(frozen=True)
class IssuedSession:
    user: User
    session_id: str
    refresh_token: str
    access_token: str
    csrf_token: str
    next_path: str = "/"


def _revoked(user_id: str, session_ids: list[str], reason: str) -> list[tuple[str, ev.Event]]:
    return [(f"users/{user_id}", ev.SessionRevoked(session_ids, reason))]


def _rotate(conn: sqlite3.Connection, presented: str, new: str, ctx: Context):
    """The presented refresh token is spent and `new` issued in its family; a spent one
    (reuse) revokes the family, audited. Returns (family, user, reused)."""
    found = session_store.find_refresh(conn, tokens.digest(presented))
    if found is None:
        raise Refused(401, "unauthorized", "unknown session")
    token, family = found
    if token.rotated_at is not None:
        session_store.revoke_family(conn, family.id, "refresh token reused")
        audit(conn, "session.reuse_detected", ctx, outcome="failure", actor_id=family.user_id, target=family.id)
        return family, None, True
    if not family.active:
        raise Refused(401, "session_ended", "the session has ended; sign in again")
    user = user_store.get(conn, family.user_id)
    if user is None or user.disabled:
        raise Refused(401, "account_disabled", "this account is disabled")
    session_store.mark_rotated(conn, token.token_hash)
    session_store.add_refresh(conn, tokens.digest(new), family.id)
    return family, user, False


def _logout(conn: sqlite3.Connection, principal: Principal, ctx: Context) -> None:
    session_store.revoke_family(conn, principal.session_id, "logout")
    audit(conn, "session.revoked", ctx, actor_id=principal.user_id, target=principal.session_id, reason="logout")


def _logout_all(conn: sqlite3.Connection, principal: Principal, ctx: Context) -> list[str]:
    ids = session_store.revoke_user_families(conn, principal.user_id, "logout everywhere")
    audit(conn, "session.revoked", ctx, actor_id=principal.user_id, target=principal.user_id,
          reason="logout everywhere", count=len(ids))
    return ids


class Sessions:
    def __init__(self, db: Database, settings: Settings, principals: Principals):
        self.db = db
        self.settings = settings
        self.principals = principals
        self.keys = principals.keys
        self.issuer = principals.issuer

    def create(self, conn: sqlite3.Connection, user: User, ctx: Context) -> tuple[str, str, str]:
        """In a sign-in's transaction: a new session (family) with its first refresh token.
        Returns (session id, refresh token, expires_at); `tokens_for` makes the rest after it."""
        session_id, refresh = str(uuid.uuid4()), tokens.opaque()
        expires = later_iso(self.settings.session_ttl_days * 86400)
        session_store.create_family(conn, session_id, user.id, expires, ctx.ip, ctx.user_agent)
        session_store.add_refresh(conn, tokens.digest(refresh), session_id)
        return session_id, refresh, expires

    def tokens_for(self, user: User, session_id: str, refresh: str, next_path: str = "/") -> IssuedSession:
        access = tokens.issue_access(self.keys, self.issuer, user.id, session_id,
                                     self.settings.access_token_ttl_seconds)
        return IssuedSession(user, session_id, refresh, access, tokens.csrf_token(self.keys, session_id), next_path)

    async def refresh(self, refresh_token: str | None, ctx: Context) -> IssuedSession:
        """Rotate: the presented token is spent and a new one issued. Reuse revokes the family."""
        if not refresh_token:
            raise Refused(401, "unauthorized", "no session")
        new = tokens.opaque()
        family, user, reused = await self.db.write(
            _rotate, refresh_token, new, ctx,
            events=lambda r: _revoked(r[0].user_id, [r[0].id], "refresh token reused") if r[2] else [])
        if reused:
            raise Refused(401, "session_revoked", "this session was revoked because its token was reused")
        self.principals.known_user(user)
        return self.tokens_for(user, family.id, new)

    async def logout(self, principal: Principal, ctx: Context) -> None:
        """This session ends: revoked, audited and announced in one transaction."""
        if principal.session_id is None:
            raise Refused(400, "not_a_session", "API tokens are revoked with DELETE /api/tokens/{id}")
        await self.db.write(_logout, principal, ctx,
                            events=_revoked(principal.user_id, [principal.session_id], "logout"))

    async def logout_all(self, principal: Principal, ctx: Context) -> int:
        """Every session of the caller ends; returns how many."""
        ids = await self.db.write(_logout_all, principal, ctx,
                                  events=lambda ids: _revoked(principal.user_id, ids, "logout everywhere"))
        return len(ids)

    async def of(self, principal: Principal) -> list[Family]:
        return await self.db.read(session_store.active_for_user, principal.user_id)
