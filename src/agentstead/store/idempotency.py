"""SQL for Idempotency-Keys: a key, the request it came with and the first response."""

from __future__ import annotations

import dataclasses
import sqlite3

from .connection import inline


@dataclasses.dataclass(frozen=True)
class Stored:
    fingerprint: str
    status: int
    response: bytes    # encrypted by the caller


class KeyTaken(Exception):
    """The key was stored by another request first (in this transaction's way): the
    transaction rolls back, so the change is made once; the caller answers with the first."""


def save(conn: sqlite3.Connection, scope: str, key: str, fingerprint: str, status: int, response: bytes,
              now: str, expires_at: str) -> None:
    """In the change's own transaction: the key and the response. A live row with this key
    raises KeyTaken (rolling the change back); an expired one is replaced."""
    changed = conn.execute(
        "INSERT INTO idempotency_keys (scope, key, fingerprint, status, response, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, "
        "status = excluded.status, response = excluded.response, created_at = excluded.created_at, "
        "expires_at = excluded.expires_at WHERE idempotency_keys.expires_at <= excluded.created_at",
        (scope, key, fingerprint, status, response, now, expires_at)).rowcount
    if not changed:
        raise KeyTaken(key)


@inline
def get(conn: sqlite3.Connection, scope: str, key: str, now: str) -> Stored | None:
    """The live (unexpired) entry of a key, or None."""
    row = conn.execute("SELECT fingerprint, status, response FROM idempotency_keys "
                       "WHERE scope = ? AND key = ? AND expires_at > ?", (scope, key, now)).fetchone()
    return Stored(row[0], row[1], row[2]) if row else None


def purge(conn: sqlite3.Connection, now: str, limit: int = 10_000) -> int:
    """Forget expired keys (a bounded batch per call)."""
    return conn.execute("DELETE FROM idempotency_keys WHERE (scope, key) IN (SELECT scope, key FROM idempotency_keys "
                        "WHERE expires_at <= ? LIMIT ?)", (now, limit)).rowcount
