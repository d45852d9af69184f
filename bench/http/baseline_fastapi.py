"""The baseline: what a user would otherwise pick — FastAPI on uvicorn.

Serves the same two endpoints as Agentstead with the same SQLite work, so
`bench/http/run.py` can measure both in one run and report ratios:

  GET /healthz            {"status", "version", "commit", "build_time", "python", "uptime_seconds"}
  GET /api/system/schema  {"version", "latest", "migrations": [...]}

Matching Agentstead (src/agentstead/store/db.py, store/health.py, http/meta.py):
  * a pool of N (default 4, = AGENTSTEAD_DB_READERS) read-only aiosqlite
    connections (`file:...?mode=ro`, isolation_level=None, sqlite3.Row rows,
    the same pragmas: busy_timeout, synchronous=FULL, foreign_keys=ON),
    handed out through an asyncio.Queue;
  * per request: `async with conn.execute(SQL) as cur: rows = await cur.fetchall()`
    — the same three aiosqlite thread round trips (execute, fetchall, cursor close)
    and the same SQL, against a copy of the same migrated database file;
  * the response is built from dataclasses, as Agentstead does.
What it does the way a typical FastAPI user would instead:
  * `latest` (the newest migration shipped) is computed once at startup;
  * the handlers return dicts and FastAPI serialises them (jsonable_encoder + JSONResponse);
  * uvicorn's own access log is ON (one text line per request on stdout),
    no request id, no Prometheus metrics, no error-shaping middleware.

Run:  python bench/http/baseline_fastapi.py --port 8001 --db /tmp/copy.db [--readers 4]
                                          [--migrations-dir DIR] [--no-access-log]
uvicorn: loop=uvloop, http=httptools, 1 worker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import platform
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import aiosqlite
import uvicorn
from fastapi import FastAPI

SCHEMA_SQL = "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version"
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "src" / "agentstead" / "store" / "migrations"
try:
    from importlib.metadata import version as _version
    VERSION = _version("agentstead")
except Exception:  # not installed: the field is informational only
    VERSION = "0.0.0+unknown"


@dataclasses.dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str
    applied_at: str


def latest_migration(directory: Path = MIGRATIONS_DIR) -> int:
    versions = [int(m.group(1)) for p in Path(directory).glob("*.sql")
                if (m := re.match(r"^(\d{4})_", p.name))]
    return max(versions, default=0)


def git_commit() -> tuple[str, str]:
    try:
        out = subprocess.run(["git", "-C", str(MIGRATIONS_DIR), "log", "-1", "--format=%H %cI"],
                             capture_output=True, text=True, timeout=5, check=True).stdout.split()
        return out[0], out[1]
    except Exception:
        return "unknown", "unknown"


class ReadPool:
    """N read-only aiosqlite connections, like agentstead.store.db.Database readers."""

    def __init__(self, path: str, size: int, busy_timeout_ms: int = 5000):
        self.path, self.size, self.busy_timeout_ms = path, size, busy_timeout_ms
        self._queue: asyncio.Queue[aiosqlite.Connection] = asyncio.Queue()
        self._all: list[aiosqlite.Connection] = []

    async def open(self) -> None:
        for _ in range(self.size):
            conn = await aiosqlite.connect(f"file:{self.path}?mode=ro", uri=True,
                                           isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            for statement in (f"PRAGMA busy_timeout = {self.busy_timeout_ms}",
                              "PRAGMA synchronous = FULL", "PRAGMA foreign_keys = ON"):
                await conn.execute(statement)
            self._all.append(conn)
            self._queue.put_nowait(conn)

    async def close(self) -> None:
        for conn in self._all:
            await conn.close()

    @contextlib.asynccontextmanager
    async def read(self):
        conn = await self._queue.get()
        try:
            yield conn
        finally:
            self._queue.put_nowait(conn)


def create_app(db_path: str, readers: int, migrations_dir: Path = MIGRATIONS_DIR) -> FastAPI:
    pool = ReadPool(db_path, readers)
    started = time.monotonic()
    commit, build_time = git_commit()
    latest = latest_migration(migrations_dir)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await pool.open()
        yield
        await pool.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", "version": VERSION, "commit": commit, "build_time": build_time,
                "python": platform.python_version(),
                "uptime_seconds": round(time.monotonic() - started, 3)}

    @app.get("/api/system/schema")
    async def schema():
        async with pool.read() as conn:
            async with conn.execute(SCHEMA_SQL) as cur:
                rows = await cur.fetchall()
        applied = [AppliedMigration(*row) for row in rows]
        return {"version": applied[-1].version if applied else 0, "latest": latest,
                "migrations": [dataclasses.asdict(m) for m in applied]}

    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--db", required=True, help="a migrated Agentstead database file (a copy)")
    p.add_argument("--readers", type=int, default=4, help="read-only connections in the pool")
    p.add_argument("--migrations-dir", type=Path, default=MIGRATIONS_DIR,
                   help="Agentstead's migrations, for `latest` (default: this checkout's)")
    p.add_argument("--no-access-log", action="store_true", help="turn uvicorn's access log off")
    args = p.parse_args()
    app = create_app(args.db, args.readers, args.migrations_dir)
    uvicorn.run(app, host=args.host, port=args.port, loop="uvloop", http="httptools",
                workers=1, access_log=not args.no_access_log, log_level="info",
                server_header=True, date_header=True)


if __name__ == "__main__":
    main()
