"""SQL for users and their identities at providers."""

from __future__ import annotations

import dataclasses
import uuid

import aiosqlite

from ..timeutil import now_iso
from .db import Database, fetch_all, fetch_one


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


async def create(conn: aiosqlite.Connection, email: str, *, name: str = "", role: str = "member") -> User:
    """Inside a write transaction."""
    now = now_iso()
    user = User(str(uuid.uuid4()), email.strip(), name, role, False, now, now)
    await conn.execute(
        f"INSERT INTO users ({_COLUMNS}) VALUES (?, ?, ?, ?, 0, ?, ?)",
        (user.id, user.email, user.name, user.role, now, now))
    return user


async def get(db: Database, user_id: str) -> User | None:
    rows = await db.small(f"SELECT {_COLUMNS} FROM users WHERE id = ?", (user_id,))
    return _user(rows[0] if rows else None)


async def get_in(conn: aiosqlite.Connection, user_id: str) -> User | None:
    return _user(await fetch_one(conn, f"SELECT {_COLUMNS} FROM users WHERE id = ?", (user_id,)))


async def by_email(conn: aiosqlite.Connection, email: str) -> User | None:
    return _user(await fetch_one(conn, f"SELECT {_COLUMNS} FROM users WHERE email = ?", (email.strip(),)))


async def by_identity(conn: aiosqlite.Connection, provider: str, subject: str) -> User | None:
    return _user(await fetch_one(
            conn,
            f"SELECT {', '.join('u.' + c.strip() for c in _COLUMNS.split(','))} FROM identities i "
            "JOIN users u ON u.id = i.user_id WHERE i.provider = ? AND i.subject = ?",
            (provider, subject)))


async def has_identity(conn: aiosqlite.Connection, user_id: str, provider: str) -> bool:
    """Whether the user already signs in with some subject at this provider."""
    return await fetch_one(conn, "SELECT 1 FROM identities WHERE user_id = ? AND provider = ? LIMIT 1",
                           (user_id, provider)) is not None


@dataclasses.dataclass(frozen=True)
class Identity:
    """A subject at an identity provider that signs in to a user's account."""
    provider: str
    subject: str
    email: str
    created_at: str
    last_login_at: str


async def identities_of(db: Database, user_id: str) -> list[Identity]:
    rows = await db.small("SELECT provider, subject, email, created_at, last_login_at FROM identities "
                          "WHERE user_id = ? ORDER BY provider, created_at", (user_id,))
    return [Identity(*r) for r in rows]


async def unlink_identity(conn: aiosqlite.Connection, user_id: str, provider: str, subject: str) -> bool:
    """Remove one of the user's identities; False when the user has no such identity."""
    cur = await conn.execute("DELETE FROM identities WHERE user_id = ? AND provider = ? AND subject = ?",
                             (user_id, provider, subject))
    return cur.rowcount > 0


async def link_identity(conn: aiosqlite.Connection, provider: str, subject: str, user_id: str,
                        email: str) -> None:
    now = now_iso()
    await conn.execute(
        "INSERT INTO identities (provider, subject, user_id, email, created_at, last_login_at) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (provider, subject) DO UPDATE SET "
        "email = excluded.email, last_login_at = excluded.last_login_at",
        (provider, subject, user_id, email, now, now))


async def update(conn: aiosqlite.Connection, user_id: str, *, role: str | None = None,
                 disabled: bool | None = None, name: str | None = None) -> User | None:
    sets, args = [], []
    for column, value in (("role", role), ("disabled", None if disabled is None else int(disabled)),
                          ("name", name)):
        if value is not None:
            sets.append(f"{column} = ?")
            args.append(value)
    if sets:
        await conn.execute(f"UPDATE users SET {', '.join(sets)}, updated_at = ? WHERE id = ?",
                           (*args, now_iso(), user_id))
    return await get_in(conn, user_id)


async def count_admins(conn: aiosqlite.Connection) -> int:
    return (await fetch_one(conn, "SELECT count(*) FROM users WHERE role = 'admin' AND disabled = 0"))[0]


async def page(db: Database, *, limit: int, after: str | None = None, query: str = "") -> list[User]:
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
    async with db.read() as conn:
        return [_user(r) for r in await fetch_all(conn, sql + " ORDER BY email LIMIT ?", (*args, limit))]
