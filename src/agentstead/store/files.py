"""A SQLite file looked at from outside the app (the backup drill, restore, `agentstead doctor`):
integrity, row counts, schema version, and the brief write lock the drill pins a position under.

These open their own short-lived connections on purpose: they run in the CLI and the backup
units, where the app's `Database` (and its writer) is not running, or runs in another process.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Iterator


def connect(db: Path, busy_timeout_ms: int, *, readonly: bool) -> sqlite3.Connection:
    """A connection that never creates the file; transactions are explicit."""
    mode = "ro" if readonly else "rw"
    conn = sqlite3.connect(f"file:{db}?mode={mode}", uri=True, isolation_level=None,
                           timeout=busy_timeout_ms / 1000, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    return conn


def user_tables(conn: sqlite3.Connection) -> list[str]:
    """Every table but SQLite's own and Litestream's bookkeeping (_litestream_*)."""
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                        "AND name NOT LIKE '\\_litestream\\_%' ESCAPE '\\' ORDER BY name").fetchall()
    return [r[0] for r in rows]


def row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows per table, in the connection's current snapshot."""
    return {name: conn.execute(f'SELECT count(*) FROM "{name.replace(chr(34), chr(34) * 2)}"').fetchone()[0]
            for name in user_tables(conn)}


def check(path: Path) -> tuple[list[str], dict[str, int]]:
    """integrity_check messages (['ok'] when sound) and row counts of a copy."""
    conn = connect(path, 5000, readonly=True)
    try:
        problems = [r[0] for r in conn.execute("PRAGMA integrity_check(20)").fetchall()]
        return problems, row_counts(conn) if problems == ["ok"] else {}
    except sqlite3.DatabaseError as exc:  # too damaged to even check
        return [str(exc)], {}
    finally:
        conn.close()


def facts(path: Path) -> tuple[int, str, str]:
    """(schema version, journal mode, quick_check's first line) of a live file, read-only."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)) as conn:
        return (conn.execute("PRAGMA user_version").fetchone()[0], conn.execute("PRAGMA journal_mode").fetchone()[0],
                conn.execute("PRAGMA quick_check").fetchone()[0])


@contextlib.contextmanager
def writes_held(writer: sqlite3.Connection, reader: sqlite3.Connection) -> Iterator[None]:
    """Nobody commits while inside (BEGIN IMMEDIATE on `writer`, ended by ROLLBACK: the file is
    never written), and `reader` holds a read snapshot from the start, kept after the block
    until the caller ends it with `end_snapshot`."""
    writer.execute("BEGIN IMMEDIATE")
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts here
        yield
    finally:
        writer.execute("ROLLBACK")


def end_snapshot(reader: sqlite3.Connection) -> None:
    reader.execute("COMMIT")
