"""The caller behind a WebSocket, checked again and again (http/ws.py's Connection).

The caller is resolved again (the identity service's `current`) on every
subscribe, whenever the identity service says that user changed (synchronously,
right after the write commits: logout, revocation, disable, role change), on
each of the user's own account events on the bus, and when the session or
token expires. Until that check is done the socket delivers nothing. Gone:
close 4001. Still there but no longer allowed a topic the socket reads (a
demoted administrator on users/*): close 4003; the client reconnects and
subscribes as who it is now. asyncapi.yaml documents both codes.
"""

from __future__ import annotations

import asyncio
import time

from ..bus.bus import Delivery
from ..bus.topics import TopicError, hidden_from
from ..errors import Refused

CLOSE_SESSION_ENDED = 4001         # sign in again
CLOSE_PERMISSIONS_CHANGED = 4003   # reconnect and subscribe again, as who you are now


class Reauthorizing:
    """Mixed into Connection, whose state (principal, identity (the principal cache), authorizer, bus, topics,
    close_soon, and the fields set by `_init_reauth`) it uses."""

    def _init_reauth(self) -> None:
        self.auth_lock = asyncio.Lock()
        self.holding = False             # a change was announced: hold deliveries until re-checked
        self.checked = asyncio.Event()   # set while nothing is held (replay waits on it too)
        self.checked.set()
        self.dirty = False
        self.rechecker: asyncio.Task | None = None
        self.unwatch = None
        self.expiry: asyncio.TimerHandle | None = None

    def _on_own_user_event(self, delivery: Delivery) -> None:
        if delivery.type in ("session.revoked", "account.updated", "token.revoked"):
            self.changed()

    def changed(self) -> None:
        """Who the caller is may have changed: hold deliveries and re-check (synchronous, so
        nothing published after the change reaches the client before the check)."""
        if self.close_code is not None:
            return
        self.holding = self.dirty = True
        self.checked.clear()
        if self.rechecker is None or self.rechecker.done():
            self.rechecker = asyncio.get_running_loop().create_task(self._recheck_while_dirty())

    async def _recheck_while_dirty(self) -> None:
        while self.dirty and self.close_code is None:
            self.dirty = False
            async with self.auth_lock:
                allowed = await self.recheck()
            if not allowed:
                return
        self.holding = False
        self.checked.set()
        for state in list(self.topics.values()):
            if not state.replaying:
                held, state.held = state.held, []
                for delivery in held:
                    state.deliver(delivery)

    async def recheck(self) -> bool:
        """Resolve the caller again (hold auth_lock). False, with the socket closing, when the
        caller is gone (4001) or lost a topic this socket reads (4003)."""
        try:
            principal, until = await self.identity.current(self.principal)
        except Refused as exc:
            self.close_soon(CLOSE_SESSION_ENDED, exc.message[:120])
            return False
        self._expire_at(until)
        if principal == self.principal:
            return True
        old = self.principal
        if not (principal.scopes >= old.scopes and (principal.is_admin or not old.is_admin)):
            for topic in list(self.topics):
                try:
                    await self.authorizer.check(principal, topic)
                except TopicError:
                    self.close_soon(CLOSE_PERMISSIONS_CHANGED,
                                    f"you may no longer read {topic}: reconnect and subscribe again"[:120])
                    return False
        self.principal = principal
        for state in self.topics.values():
            state.hidden = hidden_from(principal, state.topic)
        return True

    def _expire_at(self, until: float) -> None:
        """When the session or token runs out, the check runs again (and closes with 4001)."""
        if self.expiry is not None:
            self.expiry.cancel()
            self.expiry = None
        if until != float("inf"):
            self.expiry = asyncio.get_running_loop().call_later(max(0.0, until - time.time()) + 0.05,
                                                                self.changed)

    async def start(self) -> bool:
        """Watch the caller's identity, then check it once more: a change made between the
        handshake and the watch is not missed. False when the socket is closing already."""
        self.unwatch = self.identity.watch(self.principal.user_id, self.changed)
        self.watch = self.bus.subscribe(f"users/{self.principal.user_id}", self._on_own_user_event)
        async with self.auth_lock:
            return await self.recheck()

    def _stop_reauth(self) -> None:
        if self.unwatch is not None:
            self.unwatch()
        if self.expiry is not None:
            self.expiry.cancel()
        if self.rechecker is not None:
            self.rechecker.cancel()
