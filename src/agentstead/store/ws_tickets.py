"""SQL for single-use WebSocket tickets (services/identity/tickets.py)."""

from __future__ import annotations

import dataclasses
import sqlite3


@dataclasses.dataclass(frozen=True)
class Ticket:
    user_id: str
    via: str
    session_id: str | None
    token_id: str | None
    expires_at: float


def issue(conn: sqlite3.Connection, digest: str, ticket: Ticket, now: float) -> None:
    """Store a ticket; tickets past their time go (a few at a time: each lives seconds)."""
    conn.execute("DELETE FROM ws_tickets WHERE digest IN "
                 "(SELECT digest FROM ws_tickets WHERE expires_at < ? LIMIT 100)", (now,))
    conn.execute("INSERT INTO ws_tickets (digest, user_id, via, session_id, token_id, expires_at) "
                 "VALUES (?, ?, ?, ?, ?, ?)", (digest, ticket.user_id, ticket.via, ticket.session_id,
                                               ticket.token_id, ticket.expires_at))


def take(conn: sqlite3.Connection, digest: str) -> Ticket | None:
    """The ticket, deleted as it is read (single use), or None."""
    row = conn.execute("DELETE FROM ws_tickets WHERE digest = ? "
                       "RETURNING user_id, via, session_id, token_id, expires_at", (digest,)).fetchone()
    return Ticket(*row) if row else None


def forget_user(conn: sqlite3.Connection, user_id: str) -> None:
    conn.execute("DELETE FROM ws_tickets WHERE user_id = ?", (user_id,))
