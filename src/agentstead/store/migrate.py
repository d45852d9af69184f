"""Schema migrations: append-only SQL files, each in its own transaction.

The version lives in `PRAGMA user_version`, set inside the migration's own
transaction so a failed migration leaves no trace. Before a non-empty database
is migrated, a consistent copy is taken with VACUUM INTO beside it.
Synchronous on purpose: it runs before the server starts (or in a thread).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import functools
import hashlib
import re
import sqlite3
from importlib import resources
from pathlib import Path

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    """The database cannot be brought to this code's schema; the message says why."""


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class MigrationReport:
    before: int
    after: int
    applied: tuple[int, ...]
    snapshot: Path | None


def available(directory: Path | None = None) -> list[Migration]:
    """The migrations shipped with the package (read once), or those in `directory`, in order."""
    return list(_shipped()) if directory is None else _load(directory)


@functools.lru_cache(maxsize=1)
def _shipped() -> tuple[Migration, ...]:
    return tuple(_load(None))


def _load(directory: Path | None) -> list[Migration]:
    if directory is None:
        files = [(f.name, f.read_text(encoding="utf-8"))
                 for f in resources.files("agentstead.store").joinpath("migrations").iterdir()
                 if f.name.endswith(".sql")]
    else:
        files = [(f.name, f.read_text(encoding="utf-8")) for f in Path(directory).glob("*.sql")]
    out = []
    for name, sql in sorted(files):
        match = _NAME.match(name)
        if not match:
            raise MigrationError(f"migration file {name!r} is not named NNNN_name.sql")
        out.append(Migration(int(match.group(1)), match.group(2), sql))
    for expected, migration in enumerate(out, start=1):
        if migration.version != expected:
            raise MigrationError(f"migration {expected:04d} is missing (found {migration.version:04d})")
    return out


def latest_version(migrations: list[Migration] | None = None) -> int:
    migrations = available() if migrations is None else migrations
    return migrations[-1].version if migrations else 0


def current_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def _has_data(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").fetchone()
    return row[0] > 0


def _snapshot(conn: sqlite3.Connection, db_path: Path, version: int, keep: int) -> Path | None:
    if keep <= 0:
        return None
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    target = db_path.with_name(f"{db_path.name}.pre-migration-v{version}-{stamp}")
    conn.execute("VACUUM INTO ?", (str(target),))
    snapshots = sorted(db_path.parent.glob(f"{db_path.name}.pre-migration-v*"),
                       key=lambda p: p.name.rsplit("-", 1)[-1])
    for old in snapshots[:-keep]:
        old.unlink(missing_ok=True)
    return target


def migrate(db_path: Path, *, snapshots_kept: int = 3,
            migrations: list[Migration] | None = None) -> MigrationReport:
    """Bring the database at db_path to the latest schema. Creates it when missing."""
    migrations = available() if migrations is None else migrations
    latest = latest_version(migrations)
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    # Several instances start at once on one file (docs/scale-out.md): one migrates, the
    # others wait here and then find nothing pending.
    with open(db_path.with_name(db_path.name + ".migrate-lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _migrate(db_path, snapshots_kept, migrations, latest)


def _migrate(db_path: Path, snapshots_kept: int, migrations: list[Migration], latest: int) -> MigrationReport:
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            before = current_version(conn)
        except sqlite3.DatabaseError as exc:
            raise MigrationError(f"{db_path} is not a usable SQLite database: {exc}") from None
        if before > latest:
            raise MigrationError(
                f"{db_path} has schema version {before}, newer than this Agentstead knows "
                f"({latest}); run a newer Agentstead or restore a backup taken before the upgrade")
        _check_applied(conn, migrations, before)
        pending = [m for m in migrations if m.version > before]
        snapshot = None
        if pending and _has_data(conn):
            snapshot = _snapshot(conn, db_path, before, snapshots_kept)
        for migration in pending:
            _apply(conn, migration)
        return MigrationReport(before, current_version(conn),
                               tuple(m.version for m in pending), snapshot)
    finally:
        conn.close()


def _check_applied(conn: sqlite3.Connection, migrations: list[Migration], version: int) -> None:
    """Refuse a database whose applied migrations differ from the shipped files."""
    if version == 0:
        return
    rows = dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())
    for migration in migrations[:version]:
        if rows.get(migration.version) != migration.checksum:
            raise MigrationError(
                f"migration {migration.version:04d}_{migration.name} was changed after it was "
                "applied; migrations are append-only: add a new one instead")


def _apply(conn: sqlite3.Connection, migration: Migration) -> None:
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    # executescript runs the whole file; BEGIN IMMEDIATE inside it makes the
    # file, its bookkeeping row and the new user_version one transaction.
    script = (
        "BEGIN IMMEDIATE;\n"
        f"{migration.sql}\n;\n"
        "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES "
        f"({migration.version}, '{migration.name}', '{migration.checksum}', '{now}');\n"
        f"PRAGMA user_version = {migration.version};\n"
        "COMMIT;"
    )
    try:
        conn.executescript(script)
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise MigrationError(
            f"migration {migration.version:04d}_{migration.name} failed and was rolled back: {exc}"
        ) from None
