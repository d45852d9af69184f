"""Idempotency-Keys as the store keeps them: a key, the request it came with and the first
response (sealed by http/idempotency.py, which holds the HTTP side of the rules)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any, Callable

from ..store import idempotency as store
from ..store.db import Database
from ..store.idempotency import KeyTaken, Stored  # noqa: F401 (what callers catch and get)
from ..timeutil import iso, now


class IdempotencyKeys:
    def __init__(self, db: Database, ttl: float):
        self.db = db
        self.ttl = ttl

    async def find(self, scope: str, key: str) -> Stored | None:
        """The live (unexpired) entry of a key, or None."""
        return await self.db.read(store.get, scope, key, iso(now()))

    def recorder(self, scope: str, key: str, fingerprint: str,
                 seal: Callable[[Any], tuple[int, bytes]]) -> Callable[[sqlite3.Connection, Any], None]:
        """What a service calls inside its change's transaction with its result: stores the key
        with the response `seal` makes of it ((status, sealed bytes)). A live key stored by
        another request first raises KeyTaken there, rolling the change back."""
        def record(conn: sqlite3.Connection, result: Any) -> None:
            status, sealed = seal(result)
            moment = now()
            store.save(conn, scope, key, fingerprint, status, sealed, iso(moment),
                       iso(moment + dt.timedelta(seconds=self.ttl)))
        return record

    async def forget_expired(self) -> None:
        """Keys past their time are deleted, in bounded batches."""
        while await self.db.write(store.purge, iso(now())) >= 10_000:
            pass
