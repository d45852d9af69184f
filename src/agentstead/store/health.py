"""SQL for the readiness probe and the schema report."""

from __future__ import annotations

import dataclasses
import datetime as dt

from .db import Database, fetch_one


@dataclasses.dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str
    applied_at: str


async def write_probe(db: Database, token: str) -> None:
    """Write one row in its own transaction (proves the writer can commit)."""
    now = dt.datetime.now(dt.timezone.utc).isoformat()
    async with db.write() as conn:
        await conn.execute(
            "INSERT INTO health_probe (id, token, written_at) VALUES (1, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET token = excluded.token, written_at = excluded.written_at",
            (token, now))


async def read_probe(db: Database) -> str | None:
    """Read the probe row back through a reader connection."""
    async with db.read() as conn:
        row = await fetch_one(conn, "SELECT token FROM health_probe WHERE id = 1")
    return row["token"] if row else None


async def schema_version(db: Database) -> int:
    async with db.read() as conn:
        row = await fetch_one(conn, "PRAGMA user_version")
    return row[0]


async def applied_migrations(db: Database) -> list[AppliedMigration]:
    rows = await db.small("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
    return [AppliedMigration(*row) for row in rows]
