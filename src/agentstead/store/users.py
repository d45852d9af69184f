"""SQL for users and their identities at providers."""

from __future__ import annotations

import dataclasses
import uuid

import sqlite3

from ..timeutil import now_iso
from .connection import inline


@dataclasses.dataclass(frozen=True)
class User:
    id: str
    email: str
    name: str
    role: str
    disabled: bool
    created_at: str
    updated_at: str


_COLUMNS = "id, email, name, role, disabled, created_at, updated_at"


def _user(row) -> User | None:
    if row is None:
        return None
    return User(row["id"], row["email"], row["name"], row["role"], bool(row["disabled"]),
                row["created_at"], row["updated_at"])


def create(conn: sqlite3.Connection, email: str, *, name: str = "", role: str = "member") -> User:
    """Inside a write transaction."""
    now = now_iso()
    user = User(str(uuid.uuid4()), email.strip(), name, role, False, now, now)
    conn.execute(
        f"INSERT INTO users ({_COLUMNS}) VALUES (?, ?, ?, ?, 0, ?, ?)",
        (user.id, user.email, user.name, user.role, now, now))
    return user


@inline
def get(conn: sqlite3.Connection, user_id: str) -> User | None:
    return _user(conn.execute(f"SELECT {_COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone())


def by_email(conn: sqlite3.Connection, email: str) -> User | None:
    return _user(conn.execute(f"SELECT {_COLUMNS} FROM users WHERE email = ?", (email.strip(),)).fetchone())


def by_identity(conn: sqlite3.Connection, provider: str, subject: str) -> User | None:
    return _user(conn.execute(
            f"SELECT {', '.join('u.' + c.strip() for c in _COLUMNS.split(','))} FROM identities i "
            "JOIN users u ON u.id = i.user_id WHERE i.provider = ? AND i.subject = ?",
            (provider, subject)).fetchone())


def has_identity(conn: sqlite3.Connection, user_id: str, provider: str) -> bool:
    """Whether the user already signs in with some subject at this provider."""
    return conn.execute("SELECT 1 FROM identities WHERE user_id = ? AND provider = ? LIMIT 1",
                        (user_id, provider)).fetchone() is not None


@dataclasses.dataclass(frozen=True)
class Identity:
    """A subject at an identity provider that signs in to a user's account."""
    provider: str
    subject: str
    email: str
    created_at: str
    last_login_at: str


@inline
def identities_of(conn: sqlite3.Connection, user_id: str) -> list[Identity]:
    rows = conn.execute("SELECT provider, subject, email, created_at, last_login_at FROM identities "
                          "WHERE user_id = ? ORDER BY provider, created_at", (user_id,)).fetchall()
    return [Identity(*r) for r in rows]


def unlink_identity(conn: sqlite3.Connection, user_id: str, provider: str, subject: str) -> bool:
    """Remove one of the user's identities; False when the user has no such identity."""
    cur = conn.execute("DELETE FROM identities WHERE user_id = ? AND provider = ? AND subject = ?",
                             (user_id, provider, subject))
    return cur.rowcount > 0


def link_identity(conn: sqlite3.Connection, provider: str, subject: str, user_id: str,
                        email: str) -> None:
    now = now_iso()
    conn.execute(
        "INSERT INTO identities (provider, subject, user_id, email, created_at, last_login_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (provider, subject) DO UPDATE SET "
        "email = excluded.email, last_login_at = excluded.last_login_at",
        (provider, subject, user_id, email, now, now))


def update(conn: sqlite3.Connection, user_id: str, *, role: str | None = None,
                 disabled: bool | None = None, name: str | None = None) -> User | None:
    sets, args = [], []
    for column, value in (("role", role), ("disabled", None if disabled is None else int(disabled)),
                          ("name", name)):
        if value is not None:
            sets.append(f"{column} = ?")
            args.append(value)
    if sets:
        conn.execute(f"UPDATE users SET {', '.join(sets)}, updated_at = ? WHERE id = ?",
                           (*args, now_iso(), user_id))
    return get(conn, user_id)


def count_admins(conn: sqlite3.Connection) -> int:
    return conn.execute("SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0").fetchone()[0]


def page(conn: sqlite3.Connection, *, limit: int, after: str | None = None, query: str = "") -> list[User]:
    """Users ordered by email; `after` is the last email of the previous page."""
    where, args = [], []
    if after:
        where.append("email > ?")
        args.append(after)
    if query:
        where.append("(email LIKE ? ESCAPE '\\' OR name LIKE ? ESCAPE '\\')")
        pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        args += [pattern, pattern]
    sql = f"SELECT {_COLUMNS} FROM users" + (f" WHERE {' AND '.join(where)}" if where else "")
    return [_user(r) for r in conn.execute(sql + " ORDER BY email LIMIT ?", (*args, limit))]
