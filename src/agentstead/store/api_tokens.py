"""SQL for API tokens (only their hashes are stored)."""

from __future__ import annotations

import dataclasses

import aiosqlite

from ..timeutil import now_iso
from .db import Database, fetch_all, fetch_one


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


async def create(conn: aiosqlite.Connection, token: ApiToken) -> None:
    await conn.execute(
        f"INSERT INTO api_tokens ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
        (token.id, token.user_id, token.name, token.token_hash, " ".join(token.scopes),
         token.created_at, token.expires_at))


async def by_hash(db: Database, token_hash: str) -> ApiToken | None:
    rows = await db.small(f"SELECT {_COLUMNS} FROM api_tokens WHERE token_hash = ?", (token_hash,))
    return _token(rows[0] if rows else None)


async def by_id(db: Database, token_id: str) -> ApiToken | None:
    rows = await db.small(f"SELECT {_COLUMNS} FROM api_tokens WHERE id = ?", (token_id,))
    return _token(rows[0] if rows else None)


async def for_user(db: Database, user_id: str) -> list[ApiToken]:
    async with db.read() as conn:
        return [_token(r) for r in await fetch_all(
            conn,
                f"SELECT {_COLUMNS} FROM api_tokens WHERE user_id = ? AND revoked_at IS NULL "
                "ORDER BY created_at DESC", (user_id,))]


async def get_owned(conn: aiosqlite.Connection, token_id: str, user_id: str) -> ApiToken | None:
    return _token(await fetch_one(
            conn,
            f"SELECT {_COLUMNS} FROM api_tokens WHERE id = ? AND user_id = ?", (token_id, user_id)))


async def revoke(conn: aiosqlite.Connection, token_id: str) -> None:
    await conn.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                       (now_iso(), token_id))


async def revoke_for_user(conn: aiosqlite.Connection, user_id: str) -> list[str]:
    hashes = [r[0] for r in await fetch_all(
            conn,
            "SELECT token_hash FROM api_tokens WHERE user_id = ? AND revoked_at IS NULL", (user_id,))]
    await conn.execute("UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
                       (now_iso(), user_id))
    return hashes


async def touch(db: Database, used: dict[str, str]) -> None:
    """Record last-used times in one transaction (token id -> time)."""
    if not used:
        return
    async with db.write() as conn:
        await conn.executemany("UPDATE api_tokens SET last_used_at = ? WHERE id = ?",
                               [(at, token_id) for token_id, at in used.items()])
