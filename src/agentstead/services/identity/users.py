"""Users and their administration (admin API and CLI): create, the initial administrator,
role, disable and daily budget, sign-in identities, sign-in links, the audit log.
Every change commits with its audit row and its event."""

from __future__ import annotations

import datetime as dt
import sqlite3

from ...auth import tokens
from ...auth.access import Principal
from ...bus import events as ev
from ...errors import Refused, not_found
from ...settings import Settings
from ...store import api_tokens as token_store
from ...store import audit as audit_store
from ...store import logins as login_store
from ...store import sessions as session_store
from ...store import usage as usage_store
from ...store import users as user_store
from ...store.db import Database
from ...store.users import Identity, User
from ...timeutil import iso, later_iso, now
from .context import Context, audit

LOGIN_LINK_TTL = 15 * 60
_UNSET = object()   # daily_token_budget not given (None restores the default)


def _create(conn: sqlite3.Connection, email: str, role: str, ctx: Context, actor_id: str | None) -> User:
    if user_store.by_email(conn, email) is not None:
        raise Refused(409, "conflict", f"a user with email {email} exists")
    user = user_store.create(conn, email, role=role)
    audit(conn, "user.created", ctx, actor_id=actor_id, target=user.id, email=email, role=role)
    return user


def _initial_admin(conn: sqlite3.Connection, email: str) -> tuple[User, bool] | None:
    """(the administrator, whether created) while there is none; None when one exists."""
    if user_store.count_admins(conn) > 0:
        return None
    ctx = Context(user_agent="agentstead (initial_admin_email)")
    existing = user_store.by_email(conn, email)
    if existing is None:
        user = user_store.create(conn, email, role="admin")
        audit(conn, "user.created", ctx, target=user.id, email=email, role="admin", source="initial_admin_email")
    else:
        user = user_store.update(conn, existing.id, role="admin", disabled=False)
        audit(conn, "user.updated", ctx, target=user.id, changes={"role": {"from": existing.role, "to": "admin"}},
              source="initial_admin_email")
    return user, existing is None


def _update(conn: sqlite3.Connection, actor: Principal, user_id: str, ctx: Context, role: str | None,
            disabled: bool | None, budget) -> tuple[User, list[str], bool]:
    """(the user after, the sessions revoked, whether role or disabled changed)."""
    before = user_store.get(conn, user_id)
    if before is None:
        raise not_found("user")
    account = role is not None or disabled is not None
    revoked: list[str] = []
    if account:
        losing_admin = before.role == "admin" and not before.disabled and (role == "member" or disabled)
        if losing_admin and user_store.count_admins(conn) <= 1:
            raise Refused(409, "last_admin", "this is the last active administrator")
        after = user_store.update(conn, user_id, role=role, disabled=disabled)
        hashes: list[str] = []
        if disabled:
            revoked = session_store.revoke_user_families(conn, user_id, "account disabled")
            hashes = token_store.revoke_for_user(conn, user_id)
        changes = {k: {"from": getattr(before, k), "to": v} for k, v in (("role", role), ("disabled", disabled))
                   if v is not None and getattr(before, k) != v}
        audit(conn, "user.updated", ctx, actor_id=actor.user_id, target=user_id, changes=changes,
              sessions_revoked=len(revoked), tokens_revoked=len(hashes))
    else:
        after = before
    if budget is not _UNSET:
        usage_store.set_budget(conn, user_id, budget)
        audit(conn, "user.budget", ctx, actor_id=actor.user_id, target=user_id, daily_token_budget=budget)
    return after, revoked, account


def _updated_events(result: tuple[User, list[str], bool]) -> list[tuple[str, ev.Event]]:
    user, revoked, account = result
    events: list[tuple[str, ev.Event]] = []
    if account:
        events.append((f"users/{user.id}", ev.AccountUpdated(user.role, user.disabled)))
    if revoked:
        events.append((f"users/{user.id}", ev.SessionRevoked(revoked, "account disabled")))
    return events


def _unlink(conn: sqlite3.Connection, actor: Principal, user_id: str, provider: str, subject: str,
            ctx: Context) -> None:
    if user_store.get(conn, user_id) is None:
        raise not_found("user")
    if not user_store.unlink_identity(conn, user_id, provider, subject):
        raise Refused(404, "not_found", "the user has no such identity")
    audit(conn, "identity.unlinked", ctx, actor_id=actor.user_id, target=user_id, provider=provider, subject=subject)


def _login_link(conn: sqlite3.Connection, email: str, token_hash: str, ctx: Context) -> None:
    user = user_store.by_email(conn, email)
    if user is None:
        raise Refused(404, "not_found", f"no user with email {email}; create it first")
    if user.disabled:
        raise Refused(409, "account_disabled", f"{email} is disabled")
    login_store.put_link(conn, token_hash, user.id, later_iso(LOGIN_LINK_TTL))
    audit(conn, "login_link.created", ctx, target=user.id)


class Users:
    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings

    async def create(self, email: str, role: str, ctx: Context, actor_id: str | None = None) -> User:
        return await self.db.write(_create, email, role, ctx, actor_id, events=lambda user: [
            ("system", ev.UserCreated(user.id, user.email, user.role))])

    async def by_email(self, email: str) -> User | None:
        return await self.db.read(user_store.by_email, email)

    async def ensure_initial_admin(self, email: str) -> User | None:
        """At startup, while there is no administrator: make the configured email one (created,
        or a member promoted), audited. Returns that user, or None when an admin exists."""
        def events(result):
            if result is None:
                return []
            user, created = result
            if created:
                return [("system", ev.UserCreated(user.id, user.email, user.role))]
            return [(f"users/{user.id}", ev.AccountUpdated(user.role, user.disabled))]
        result = await self.db.write(_initial_admin, email, events=events)
        return result[0] if result is not None else None

    async def update(self, actor: Principal, user_id: str, ctx: Context, *, role: str | None = None,
                     disabled: bool | None = None, daily_token_budget=_UNSET) -> User:
        """Role, disabled (which ends the user's sessions and tokens) and the daily token budget
        (None: the default), audited and announced in one transaction."""
        user, _, _ = await self.db.write(_update, actor, user_id, ctx, role, disabled, daily_token_budget,
                                         events=_updated_events)
        return user

    async def get(self, user_id: str) -> User:
        user = await self.db.read(user_store.get, user_id)
        if user is None:
            raise not_found("user")
        return user

    async def identities(self, user_id: str) -> list[Identity]:
        await self.get(user_id)
        return await self.db.read(user_store.identities_of, user_id)

    async def unlink_identity(self, actor: Principal, user_id: str, provider: str, subject: str,
                              ctx: Context) -> None:
        """An administrator removes one of a user's sign-in identities: that subject at that
        provider no longer reaches the account, and the account is free to take another
        identity there (how an `identity_conflict` is settled on purpose). The user's
        sessions stay; disable the user to end them."""
        await self.db.write(_unlink, actor, user_id, provider, subject, ctx)

    async def list(self, *, limit: int, after: str | None, query: str) -> list[User]:
        return await self.db.read(user_store.page, limit=limit, after=after, query=query)

    async def login_link(self, email: str, ctx: Context) -> str:
        """A single-use sign-in link for an existing user (LOGIN_LINK_TTL), audited."""
        token = tokens.opaque()
        await self.db.write(_login_link, email, tokens.digest(token), ctx)
        return f"{self.settings.public_url}/auth/link/{token}"

    async def audit_log(self, **filters) -> list[audit_store.AuditEntry]:
        """Newest first (store/audit.py: page)."""
        return await self.db.read(audit_store.page, **filters)

    async def purge_audit(self) -> int:
        cutoff = iso(now() - dt.timedelta(days=self.settings.audit_retention_days))
        return await self.db.write(audit_store.purge_before, cutoff)
