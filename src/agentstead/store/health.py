"""SQL for the readiness probe and the schema report."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3

from .connection import inline


@dataclasses.dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str
    applied_at: str


def write_probe(conn: sqlite3.Connection, token: str) -> None:
    """One row, rewritten (proves the writer can commit)."""
    conn.execute("INSERT INTO health_probe (id, token, written_at) VALUES (1, ?, ?) "
                 "ON CONFLICT (id) DO UPDATE SET token = excluded.token, written_at = excluded.written_at",
                 (token, dt.datetime.now(dt.timezone.utc).isoformat()))


def read_probe(conn: sqlite3.Connection) -> str | None:
    """The probe row, read back through a reader connection."""
    row = conn.execute("SELECT token FROM health_probe WHERE id = 1").fetchone()
    return row["token"] if row else None


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


@inline
def applied_migrations(conn: sqlite3.Connection) -> list[AppliedMigration]:
    rows = conn.execute("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
    return [AppliedMigration(*row) for row in rows]
