"""SQL for browser sessions: families and their rotating refresh tokens."""

from __future__ import annotations

import dataclasses

import aiosqlite

from ..timeutil import now_iso
from .db import Database, fetch_all, fetch_one


@dataclasses.dataclass(frozen=True)
class Family:
    id: str
    user_id: str
    created_at: str
    expires_at: str
    last_used_at: str
    revoked_at: str | None
    revoked_reason: str | None
    ip: str
    user_agent: str

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.expires_at > now_iso()


@dataclasses.dataclass(frozen=True)
class RefreshToken:
    token_hash: str
    family_id: str
    issued_at: str
    rotated_at: str | None


_FAMILY = "id, user_id, created_at, expires_at, last_used_at, revoked_at, revoked_reason, ip, user_agent"


async def create_family(conn: aiosqlite.Connection, family_id: str, user_id: str, expires_at: str,
                        ip: str, user_agent: str) -> None:
    now = now_iso()
    await conn.execute(
        f"INSERT INTO session_families ({_FAMILY}) VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, ?)",
        (family_id, user_id, now, expires_at, now, ip, user_agent[:512]))


async def add_refresh(conn: aiosqlite.Connection, token_hash: str, family_id: str) -> None:
    await conn.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, issued_at, rotated_at) VALUES (?, ?, ?, NULL)",
        (token_hash, family_id, now_iso()))


async def find_refresh(conn: aiosqlite.Connection, token_hash: str) -> tuple[RefreshToken, Family] | None:
    row = await fetch_one(
            conn,
            "SELECT token_hash, family_id, issued_at, rotated_at FROM refresh_tokens WHERE token_hash = ?",
            (token_hash,))
    if row is None:
        return None
    family = await get_family_in(conn, row["family_id"])
    assert family is not None
    return RefreshToken(*row), family


async def mark_rotated(conn: aiosqlite.Connection, token_hash: str) -> None:
    now = now_iso()
    await conn.execute("UPDATE refresh_tokens SET rotated_at = ? WHERE token_hash = ?", (now, token_hash))
    await conn.execute(
        "UPDATE session_families SET last_used_at = ? WHERE id = "
        "(SELECT family_id FROM refresh_tokens WHERE token_hash = ?)", (now, token_hash))


async def get_family_in(conn: aiosqlite.Connection, family_id: str) -> Family | None:
    row = await fetch_one(conn, f"SELECT {_FAMILY} FROM session_families WHERE id = ?", (family_id,))
    return Family(*row) if row else None


async def get_family(db: Database, family_id: str) -> Family | None:
    async with db.read() as conn:
        return await get_family_in(conn, family_id)


async def revoke_family(conn: aiosqlite.Connection, family_id: str, reason: str) -> None:
    await conn.execute(
        "UPDATE session_families SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL",
        (now_iso(), reason, family_id))


async def revoke_user_families(conn: aiosqlite.Connection, user_id: str, reason: str) -> list[str]:
    ids = [r[0] for r in await fetch_all(
            conn,
            "SELECT id FROM session_families WHERE user_id = ? AND revoked_at IS NULL", (user_id,))]
    await conn.execute(
        "UPDATE session_families SET revoked_at = ?, revoked_reason = ? WHERE user_id = ? AND revoked_at IS NULL",
        (now_iso(), reason, user_id))
    return ids


async def active_for_user(db: Database, user_id: str) -> list[Family]:
    async with db.read() as conn:
        return [Family(*r) for r in await fetch_all(
            conn,
                f"SELECT {_FAMILY} FROM session_families WHERE user_id = ? AND revoked_at IS NULL "
                "AND expires_at > ? ORDER BY last_used_at DESC", (user_id, now_iso()))]
