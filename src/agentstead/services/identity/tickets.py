"""Single-use WebSocket tickets: for clients that cannot send a cookie or a header with
the upgrade. A ticket is short-lived, used once, and resolved again when used: it gives
nothing more than its owner may do then."""

from __future__ import annotations

import time

from ...auth import tokens
from ...auth.access import Principal
from ...errors import Refused
from .principals import Principals

TTL = 30.0


class WsTickets:
    def __init__(self, principals: Principals):
        self.principals = principals
        self._tickets: dict[str, tuple[Principal, float]] = {}   # digest -> (principal, monotonic expiry)
        principals.on_invalidate(self._forget)

    def issue(self, principal: Principal) -> tuple[str, float]:
        """A ticket and its lifetime in seconds."""
        mono = time.monotonic()
        for key in [k for k, (_, exp) in self._tickets.items() if exp < mono]:
            del self._tickets[key]
        ticket = tokens.opaque()
        self._tickets[tokens.digest(ticket)] = (principal, mono + TTL)
        return ticket, TTL

    async def redeem(self, ticket: str) -> Principal | None:
        """Single use: who the ticket's owner is now, or None (unknown, used, expired, or the
        owner signed out, was revoked, disabled or changed since)."""
        entry = self._tickets.pop(tokens.digest(ticket), None)
        if entry is None or entry[1] < time.monotonic():
            return None
        try:
            principal, _ = await self.principals.current(entry[0])
        except Refused:
            return None
        return principal

    def _forget(self, user_id: str) -> None:
        for key in [k for k, (p, _) in self._tickets.items() if p.user_id == user_id]:
            del self._tickets[key]
