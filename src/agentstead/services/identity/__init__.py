"""Identity and access, one module per concern (docs/architecture.md, Identity):

  principals.py   the one principal cache and every invalidation of it
  sessions.py     browser sessions: issue, refresh, logout
  api_tokens.py   API tokens
  users.py        users and administration, sign-in links, the audit log
  signin.py       OpenID Connect sign-in and sign-in links
  tickets.py      WebSocket tickets

`Identity` puts them together (the app keeps it under keys.IDENTITY). The rules live
here; SQL lives in store/; HTTP lives in http/.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

from ...auth import tokens
from ...bus.bus import Bus
from ...settings import Settings
from ...store.db import Database
from .api_tokens import ApiTokens, TokenUse
from .context import Context
from .principals import Principals
from .sessions import IssuedSession, Sessions
from .signin import LOGIN_STATE_TTL, SignIn
from .tickets import WsTickets
from .users import LOGIN_LINK_TTL, Users

__all__ = ["Identity", "Context", "IssuedSession", "LOGIN_LINK_TTL", "LOGIN_STATE_TTL"]
log = logging.getLogger("agentstead.identity")


class Identity:
    def __init__(self, db: Database, settings: Settings, http: aiohttp.ClientSession, bus: Bus | None = None):
        self.db = db
        use = TokenUse()
        self.principals = Principals(db, tokens.Keys.from_secret(settings.secret_key), settings.public_url, use.note)
        self.sessions = Sessions(db, settings, self.principals)
        self.tokens = ApiTokens(db, settings, self.principals, use)
        self.users = Users(db, settings)
        self.signin = SignIn(db, settings, http, self.sessions, self.principals)
        self.tickets = WsTickets(db, self.principals)
        self.bus = bus
        if bus is not None:   # the account events of every user keep the cache true
            self._subscription = bus.subscribe("users/*", self.principals.account_event)

    async def maintenance(self, interval: float = 30.0) -> None:
        """In the background: write token last-used times; purge old audit entries hourly."""
        last_purge = 0.0
        while True:
            await asyncio.sleep(interval)
            try:
                await self.tokens.flush_use()
                if time.monotonic() - last_purge > 3600:
                    await self.users.purge_audit()
                    last_purge = time.monotonic()
            except Exception:  # keep the loop alive; the next round retries
                log.exception("identity maintenance failed")

    def close(self) -> None:
        if self.bus is not None:
            self.bus.unsubscribe(self._subscription)
