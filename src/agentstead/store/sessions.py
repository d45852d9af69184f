"""SQL for browser sessions: families and their rotating refresh tokens."""

from __future__ import annotations

import dataclasses

import sqlite3

from ..timeutil import now_iso
from .connection import inline


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


def create_family(conn: sqlite3.Connection, family_id: str, user_id: str, expires_at: str,
                  ip: str, user_agent: str) -> None:
    now = now_iso()
    conn.execute(f"INSERT INTO session_families ({_FAMILY}) VALUES (?, ?, ?, ?, ?, NULL, NULL, ?, ?)",
                 (family_id, user_id, now, expires_at, now, ip, user_agent[:512]))


def add_refresh(conn: sqlite3.Connection, token_hash: str, family_id: str) -> None:
    conn.execute("INSERT INTO refresh_tokens (token_hash, family_id, issued_at, rotated_at) VALUES (?, ?, ?, NULL)",
                 (token_hash, family_id, now_iso()))


def find_refresh(conn: sqlite3.Connection, token_hash: str) -> tuple[RefreshToken, Family] | None:
    row = conn.execute("SELECT token_hash, family_id, issued_at, rotated_at FROM refresh_tokens WHERE token_hash = ?",
                       (token_hash,)).fetchone()
    if row is None:
        return None
    family = get_family(conn, row["family_id"])
    assert family is not None
    return RefreshToken(*row), family


def mark_rotated(conn: sqlite3.Connection, token_hash: str) -> None:
    now = now_iso()
    conn.execute("UPDATE refresh_tokens SET rotated_at = ? WHERE token_hash = ?", (now, token_hash))
    conn.execute("UPDATE session_families SET last_used_at = ? WHERE id = "
                 "(SELECT family_id FROM refresh_tokens WHERE token_hash = ?)", (now, token_hash))


@inline
def get_family(conn: sqlite3.Connection, family_id: str) -> Family | None:
    row = conn.execute(f"SELECT {_FAMILY} FROM session_families WHERE id = ?", (family_id,)).fetchone()
    return Family(**dict(zip(row.keys(), row))) if row else None


def revoke_family(conn: sqlite3.Connection, family_id: str, reason: str) -> None:
    conn.execute("UPDATE session_families SET revoked_at = ?, revoked_reason = ? WHERE id = ? AND revoked_at IS NULL",
                 (now_iso(), reason, family_id))


def revoke_user_families(conn: sqlite3.Connection, user_id: str, reason: str) -> list[str]:
    ids = [r[0] for r in conn.execute("SELECT id FROM session_families WHERE user_id = ? AND revoked_at IS NULL",
                                      (user_id,))]
    conn.execute("UPDATE session_families SET revoked_at = ?, revoked_reason = ? WHERE user_id = ? "
                 "AND revoked_at IS NULL", (now_iso(), reason, user_id))
    return ids


def active_for_user(conn: sqlite3.Connection, user_id: str) -> list[Family]:
    return [Family(**dict(zip(r.keys(), r))) for r in conn.execute(
        f"SELECT {_FAMILY} FROM session_families WHERE user_id = ? AND revoked_at IS NULL "
        "AND expires_at > ? ORDER BY last_used_at DESC", (user_id, now_iso()))]
