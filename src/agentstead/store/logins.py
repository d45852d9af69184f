"""SQL for sign-ins in progress (OIDC state) and single-use sign-in links."""

from __future__ import annotations

import dataclasses

import sqlite3

from ..timeutil import now_iso


@dataclasses.dataclass(frozen=True)
class LoginState:
    provider: str
    nonce: str
    code_verifier: str
    next_path: str
    expires_at: str


def put_state(conn: sqlite3.Connection, state_hash: str, state: LoginState) -> None:
    conn.execute("DELETE FROM login_states WHERE expires_at < ?", (now_iso(),))
    conn.execute(
        "INSERT INTO login_states (state_hash, provider, nonce, code_verifier, next_path, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (state_hash, state.provider, state.nonce, state.code_verifier, state.next_path, state.expires_at))


def take_state(conn: sqlite3.Connection, state_hash: str) -> LoginState | None:
    """Single use: the row is deleted whether or not it is still valid."""
    row = conn.execute("DELETE FROM login_states WHERE state_hash = ? "
                       "RETURNING provider, nonce, code_verifier, next_path, expires_at", (state_hash,)).fetchone()
    if row is None:
        return None
    state = LoginState(*row)
    return state if state.expires_at > now_iso() else None


def put_link(conn: sqlite3.Connection, token_hash: str, user_id: str, expires_at: str) -> None:
    conn.execute(
        "INSERT INTO login_links (token_hash, user_id, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, NULL)",
        (token_hash, user_id, now_iso(), expires_at))


def use_link(conn: sqlite3.Connection, token_hash: str) -> str | None:
    """The user id of a valid, unused link, marking it used; None otherwise."""
    now = now_iso()
    row = conn.execute("UPDATE login_links SET used_at = ? WHERE token_hash = ? AND used_at IS NULL "
                       "AND expires_at > ? RETURNING user_id", (now, token_hash, now)).fetchone()
    return row[0] if row else None
