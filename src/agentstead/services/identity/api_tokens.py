"""API tokens for scripts: created with scopes no wider than their creator's, listed,
revoked; only their hashes are stored. When each was last used is written in batches."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
import uuid
from typing import Any, Callable

from ...auth import tokens
from ...auth.access import Principal, expand, token_scopes_allowed
from ...bus import events as ev
from ...errors import Refused, invalid, not_found
from ...settings import Settings
from ...store import api_tokens as token_store
from ...store.api_tokens import ApiToken
from ...store.db import Database
from ...timeutil import iso, now, now_iso
from .context import Context, audit
from .principals import Principals

TOUCH_INTERVAL = 60.0   # a token's last-used time is written at most this often
Record = Callable[[sqlite3.Connection, Any], None]


class TokenUse:
    """When tokens were last used, noted per request and written in batches."""

    def __init__(self) -> None:
        self._touched: dict[str, float] = {}
        self.pending: dict[str, str] = {}

    def note(self, token_id: str) -> None:
        mono = time.monotonic()
        if mono - self._touched.get(token_id, -1e9) >= TOUCH_INTERVAL:
            self._touched[token_id] = mono
            self.pending[token_id] = now_iso()

    def take(self) -> dict[str, str]:
        pending, self.pending = self.pending, {}
        return pending


def _create(conn: sqlite3.Connection, row: ApiToken, plain: str, ctx: Context, record: Record | None) -> None:
    token_store.create(conn, row)
    audit(conn, "token.created", ctx, actor_id=row.user_id, target=row.id, name=row.name, scopes=list(row.scopes),
          expires_at=row.expires_at)
    if record is not None:
        record(conn, (row, plain))


def _revoke(conn: sqlite3.Connection, principal: Principal, token_id: str, ctx: Context) -> None:
    row = token_store.get_owned(conn, token_id, principal.user_id)
    if row is None or row.revoked_at is not None:
        raise not_found("token")
    token_store.revoke(conn, token_id)
    audit(conn, "token.revoked", ctx, actor_id=principal.user_id, target=token_id)


class ApiTokens:
    def __init__(self, db: Database, settings: Settings, principals: Principals, use: TokenUse):
        self.db = db
        self.settings = settings
        self.principals = principals
        self.use = use

    async def create(self, principal: Principal, name: str, scopes: set[str], expires_in_days: int | None,
                     ctx: Context, record: Record | None = None) -> tuple[ApiToken, str]:
        """A new token (its value is only in the answer), audited and announced in one
        transaction; `record(conn, (row, plain))`: the request's Idempotency-Key."""
        user = await self.principals.user(principal.user_id)
        if user is None:
            raise not_found("user")
        if not token_scopes_allowed(user.role, scopes) or not expand(scopes) <= principal.scopes:
            raise Refused(403, "insufficient_scope", "a token cannot have scopes its creator lacks")
        days = expires_in_days or self.settings.api_token_max_days
        if days > self.settings.api_token_max_days:
            raise invalid("/expires_in_days", f"must be at most {self.settings.api_token_max_days}")
        plain = tokens.new_api_token()
        row = ApiToken(str(uuid.uuid4()), user.id, name, tokens.digest(plain), tuple(sorted(scopes)), now_iso(),
                       iso(now() + dt.timedelta(days=days)), None, None)
        await self.db.write(_create, row, plain, ctx, record,
                            events=[(f"users/{user.id}", ev.TokenCreated(row.id, name, list(row.scopes)))])
        return row, plain

    async def list(self, principal: Principal) -> list[ApiToken]:
        return await self.db.read(token_store.for_user, principal.user_id)

    async def revoke(self, principal: Principal, token_id: str, ctx: Context) -> None:
        """Revoked, audited and announced in one transaction (the principal cache hears it)."""
        await self.db.write(_revoke, principal, token_id, ctx,
                            events=[(f"users/{principal.user_id}", ev.TokenRevoked(token_id))])

    async def flush_use(self) -> None:
        """Write the batched last-used times (a background task does, and shutdown)."""
        used = self.use.take()
        if used:
            await self.db.write(token_store.touch, used)
