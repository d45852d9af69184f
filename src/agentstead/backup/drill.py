"""The restore drill: proof that the replica restores, run daily by a timer.

1. Pin a position. Take the write lock on the live database for a few
   milliseconds (BEGIN IMMEDIATE: the app's writers wait, none fails), open a
   read snapshot on a second connection, and ask Litestream (control socket,
   POST /sync without waiting) to turn the WAL into its next transaction id.
   With nobody able to commit, that id is exactly the snapshot. Release the lock.
2. Count the rows of every table in that snapshot, at leisure.
3. Ask Litestream to upload up to that id (POST /sync, wait) and restore
   exactly that id from the replica into a temporary directory.
4. PRAGMA integrity_check on the copy, and compare per-table row counts.
5. Record the result (time, position, lag, duration, ok or the reason) in
   <state_dir>/backup/last-drill.json, which /readyz and /metrics read.

The live database is only read and locked, never written (the lock ends in
ROLLBACK). Litestream's own bookkeeping tables (_litestream_*) are not compared.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

from ..settings import Settings
from ..store import files
from ..store.files import row_counts, user_tables  # noqa: F401 (the drill's counts, as before)
from . import BackupError
from .config import databases, paths, replica_location
from .litestream import config_args, control, last_error_line, run
from .status import iso, lag_seconds, litestream_state

# The write lock is held only around a local WAL-to-LTX step; this bounds it
# well below the app's busy timeout (5 s by default), so no app write fails.
_PIN_TIMEOUT = 2.0
_PIN_ATTEMPTS = 3


class DrillFailed(Exception):
    """The drill found a problem; str() is the reason recorded."""


def compare_counts(live: dict[str, int], restored: dict[str, int]) -> str:
    """'' when equal, else a short description of the first differences."""
    diffs = []
    for name in sorted(set(live) | set(restored)):
        if name not in restored:
            diffs.append(f"table {name} missing from the restored copy")
        elif name not in live:
            diffs.append(f"table {name} only in the restored copy")
        elif live[name] != restored[name]:
            diffs.append(f"{name}: {restored[name]} rows restored, {live[name]} live")
    return "; ".join(diffs[:5]) + (f" (and {len(diffs) - 5} more)" if len(diffs) > 5 else "")


def pin(settings: Settings, db: Path) -> tuple[int, dict[str, int]]:
    """Litestream's transaction id for the live database's current state, and its row counts."""
    last: Exception | None = None
    for attempt in range(_PIN_ATTEMPTS):
        if attempt:
            time.sleep(1.0)
        writer = files.connect(db, settings.db_busy_timeout_ms, readonly=False)
        reader = files.connect(db, settings.db_busy_timeout_ms, readonly=True)
        try:
            with files.writes_held(writer, reader):   # nobody commits; the reader's snapshot is this state
                control(settings, "POST", "/sync", {"path": str(db)}, timeout=_PIN_TIMEOUT)
                txid = int(control(settings, "GET", f"/txid?path={quote(str(db))}",
                                   timeout=_PIN_TIMEOUT)["txid"])
            counts = row_counts(reader)
            files.end_snapshot(reader)
        except BackupError as exc:
            last = exc
            continue
        finally:
            reader.close()
            writer.close()
        if txid <= 0:
            raise DrillFailed("litestream has no position for the database yet")
        return txid, counts
    raise DrillFailed(f"could not pin a position with litestream: {last}")


def check_restored(path: Path) -> tuple[list[str], dict[str, int]]:
    """integrity_check messages (['ok'] when sound) and row counts of a restored copy."""
    return files.check(path)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError("another drill is running") from None
        yield


def record(settings: Settings, result: dict) -> None:
    """Write the result atomically where /readyz reads it."""
    target = paths(settings).drill
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, target)


def run_drill(settings: Settings, *, sync_timeout: float = 60.0, restore_timeout: float = 6 * 3600) -> dict:
    """Run one drill, record it, return the result (`ok` says whether it passed)."""
    db = databases(settings)[0]
    started = time.monotonic()
    now = dt.datetime.now(dt.timezone.utc)
    result: dict = {"ok": False, "at": iso(now), "database": str(db), "replica": replica_location(settings)}
    workdir: Path | None = None
    with _exclusive(paths(settings).dir / "drill.lock"):
        try:
            if not db.exists():
                raise DrillFailed(f"no live database at {db} to compare the restored copy with")
            state = litestream_state(settings)
            if not state.running or state.error:
                raise DrillFailed(f"{state.error}; the drill needs it to pin a position "
                                  "(start agentstead-litestream.service)")
            result["lag_seconds"] = round(lag_seconds(state, now) or 0.0, 3)
            txid, live = pin(settings, db)
            position = f"{txid:016x}"
            result["position"] = position
            t0 = time.monotonic()
            try:
                synced = control(settings, "POST", "/sync",
                                 {"path": str(db), "wait": True, "timeout": int(sync_timeout)},
                                 timeout=sync_timeout + 5)
            except BackupError as exc:
                raise DrillFailed(f"the replica did not take position {position}: {exc}") from None
            if int(synced.get("replicated_txid", 0)) < txid:
                raise DrillFailed(f"the replica is at {int(synced.get('replicated_txid', 0)):016x}, "
                                  f"behind position {position}")
            result["upload_seconds"] = round(time.monotonic() - t0, 3)
            paths(settings).dir.mkdir(parents=True, exist_ok=True)
            workdir = Path(tempfile.mkdtemp(prefix="drill-", dir=paths(settings).dir))
            copy = workdir / db.name
            t0 = time.monotonic()
            proc = run(settings, ["restore", *config_args(settings), "-txid", position, "-o", str(copy), str(db)],
                       timeout=restore_timeout, what="restoring the replica")
            if proc.returncode != 0 or not copy.exists():
                raise DrillFailed(f"restoring position {position} from {replica_location(settings)} failed: "
                                  f"{last_error_line(proc.stderr)}")
            result["restore_seconds"] = round(time.monotonic() - t0, 3)
            result["restored_bytes"] = copy.stat().st_size
            problems, restored = check_restored(copy)
            if problems != ["ok"]:
                raise DrillFailed("integrity_check of the restored copy: " + "; ".join(problems[:5]))
            diff = compare_counts(live, restored)
            if diff:
                raise DrillFailed(f"row counts at position {position} differ: {diff}")
            result["tables"] = restored
            result["ok"] = True
        except (DrillFailed, BackupError, sqlite3.Error, OSError) as exc:
            result["reason"] = str(exc) or type(exc).__name__
        finally:
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
            result["duration_seconds"] = round(time.monotonic() - started, 3)
            record(settings, result)
    return result
