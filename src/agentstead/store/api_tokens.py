"""SQL for API tokens (only their hashes are stored)."""

from __future__ import annotations

import dataclasses

import sqlite3

from ..timeutil import now_iso
from .connection import inline


@dataclasses.dataclass(frozen=True)
class ApiToken:
    id: str
    user_id: str
    name: str
    token_hash: str
    scopes: tuple[str, ...]
    created_at: str
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now_iso())


_COLUMNS = "id, user_id, name, token_hash, scopes, created_at, expires_at, last_used_at, revoked_at"


def _token(row) -> ApiToken | None:
    if row is None:
        return None
    values = list(row)
    values[4] = tuple(values[4].split())
    return ApiToken(*values)


def create(conn: sqlite3.Connection, token: ApiToken) -> None:
    conn.execute(f"INSERT INTO api_tokens ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                 (token.id, token.user_id, token.name, token.token_hash, " ".join(token.scopes),
                  token.created_at, token.expires_at))


@inline
def by_hash(conn: sqlite3.Connection, token_hash: str) -> ApiToken | None:
    return _token(conn.execute(f"SELECT {_COLUMNS} FROM api_tokens WHERE token_hash = ?", (token_hash,)).fetchone())


@inline
def by_id(conn: sqlite3.Connection, token_id: str) -> ApiToken | None:
    return _token(conn.execute(f"SELECT {_COLUMNS} FROM api_tokens WHERE id = ?", (token_id,)).fetchone())


def for_user(conn: sqlite3.Connection, user_id: str) -> list[ApiToken]:
    return [_token(r) for r in conn.execute(
        f"SELECT {_COLUMNS} FROM api_tokens WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at DESC",
        (user_id,))]


def get_owned(conn: sqlite3.Connection, token_id: str, user_id: str) -> ApiToken | None:
    return _token(conn.execute(f"SELECT {_COLUMNS} FROM api_tokens WHERE id = ? AND user_id = ?",
                               (token_id, user_id)).fetchone())


def revoke(conn: sqlite3.Connection, token_id: str) -> None:
    conn.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now_iso(), token_id))


def revoke_for_user(conn: sqlite3.Connection, user_id: str) -> list[str]:
    """Revokes every live token of the user; returns their hashes."""
    hashes = [r[0] for r in conn.execute("SELECT token_hash FROM api_tokens WHERE user_id = ? AND revoked_at IS NULL",
                                         (user_id,))]
    conn.execute("UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
                 (now_iso(), user_id))
    return hashes


def touch(conn: sqlite3.Connection, used: dict[str, str]) -> None:
    """Record last-used times (token id -> time)."""
    conn.executemany("UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
                     [(at, token_id) for token_id, at in used.items()])
