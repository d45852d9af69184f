"""Single-use WebSocket tickets: for clients that cannot send a cookie or a header with
the upgrade. A ticket is short-lived, used once, and resolved again when used: it gives
nothing more than its owner may do then. Tickets live in the database (only their
digest), so one issued by one instance is redeemed on any (docs/scale-out.md)."""

from __future__ import annotations

import time

from ...auth import tokens
from ...auth.access import Principal
from ...errors import Refused
from ...store import ws_tickets as store
from ...store.db import Database
from .principals import Principals

TTL = 30.0


class WsTickets:
    def __init__(self, db: Database, principals: Principals):
        self.db = db
        self.principals = principals
        principals.on_invalidate(self._forget)

    async def issue(self, principal: Principal) -> tuple[str, float]:
        """A ticket and its lifetime in seconds."""
        ticket = tokens.opaque()
        now = time.time()
        await self.db.write(store.issue, tokens.digest(ticket), store.Ticket(
            principal.user_id, principal.via, principal.session_id, principal.token_id, now + TTL), now)
        return ticket, TTL

    async def redeem(self, ticket: str) -> Principal | None:
        """Single use: who the ticket's owner is now, or None (unknown, used, expired, or the
        owner signed out, was revoked, disabled or changed since)."""
        row = await self.db.write(store.take, tokens.digest(ticket))
        if row is None or row.expires_at < time.time():
            return None
        asked = Principal(row.user_id, "", "", frozenset(), row.via, session_id=row.session_id,
                          token_id=row.token_id)
        try:
            principal, _ = await self.principals.current(asked)
        except Refused:
            return None
        return principal

    def _forget(self, user_id: str) -> None:
        """Who the user is changed: their tickets go (every instance hears the change and
        deletes; the first one's delete finds them)."""
        self.db.write(store.forget_user, user_id)
