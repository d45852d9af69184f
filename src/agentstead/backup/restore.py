"""Restoring from the replica: to a path to inspect, in place, or on first boot.

A restore never overwrites a database a process holds open (the app,
Litestream, a sqlite3 shell): it names those processes and what to stop. It
restores into a hidden temporary file beside the target, checks it
(PRAGMA integrity_check), moves whatever was at the target aside (database,
-wal, -shm and Litestream's .<name>-litestream directory, suffixed
.before-restore-<time>) and renames the copy into place, so a failed restore
leaves the old state untouched and a stale WAL never meets a new database.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Iterable

from ..settings import Settings
from . import BackupError
from .config import databases, paths, replica_location
from .litestream import LitestreamDown, config_args, control, last_error_line, run

LIST_TIMEOUT = 60.0


@dataclasses.dataclass(frozen=True)
class Restored:
    output: Path
    position: str
    seconds: float
    size: int
    moved_aside: tuple[Path, ...]
    tables: dict[str, int]


def sidecars(db: Path) -> list[Path]:
    """A database file and everything that belongs to it on disk."""
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"),
            db.with_name(f".{db.name}-litestream")]


def holders(files: Iterable[Path]) -> list[tuple[int, str]]:
    """(pid, command line) of processes that have any of these files open (Linux /proc)."""
    targets = {os.path.realpath(f) for f in files}
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            fds = os.listdir(f"/proc/{entry.name}/fd")
        except OSError:
            continue  # gone, or another user's process we may not inspect
        for fd in fds:
            try:
                if os.readlink(f"/proc/{entry.name}/fd/{fd}") in targets:
                    break
            except OSError:
                continue
        else:
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            cmd = "?"
        found.append((int(entry.name), cmd))
    return sorted(found)


def parse_timestamp(text: str) -> dt.datetime:
    """An RFC 3339 time with a zone (Z or +hh:mm)."""
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BackupError(f"--timestamp {text!r} is not RFC 3339, e.g. 2026-03-01T14:30:00Z") from None
    if moment.tzinfo is None:
        raise BackupError(f"--timestamp {text!r} needs a zone, e.g. 2026-03-01T14:30:00Z or +01:00")
    return moment.astimezone(dt.timezone.utc)


def _go_time(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def replica_files(settings: Settings, timeout: float = LIST_TIMEOUT) -> list[dict]:
    """The replica's LTX files on every level; a BackupError when it cannot be read."""
    db = databases(settings)[0]
    proc = run(settings, ["ltx", *config_args(settings), "-level", "all", "-json", str(db)],
               timeout=timeout, what=f"reading the replica {replica_location(settings)}")
    if proc.returncode != 0:
        raise BackupError(f"cannot read the replica {replica_location(settings)}: {last_error_line(proc.stderr)}")
    try:
        return json.loads(proc.stdout or "[]") or []
    except ValueError:
        raise BackupError("litestream ltx printed something that is not JSON") from None


def _refuse_if_held(settings: Settings, target: Path) -> None:
    present = [p for p in sidecars(target) if p.exists()]
    if not present:
        return
    procs = holders(p for p in present if p.is_file())
    live = target == databases(settings)[0]
    litestream_up = False
    if live:
        try:
            control(settings, "GET", "/info", timeout=1.0)
            litestream_up = True
        except (LitestreamDown, BackupError):
            pass
    if not procs and not litestream_up:
        return
    who = "; ".join(f"pid {pid}: {cmd[:120]}" for pid, cmd in procs) or "litestream (control socket answers)"
    raise BackupError(
        f"{target} is in use ({who}). Stop what holds it first: under systemd "
        "`systemctl stop agentstead.service agentstead-litestream.service`, otherwise stop "
        "`agentstead serve` and `agentstead backup replicate` (or the processes above). "
        "Or restore elsewhere (the default, or --output PATH), inspect it, and swap it in later.")


def _move_aside(target: Path, stamp: str) -> tuple[Path, ...]:
    moved = []
    for path in sidecars(target):
        if path.exists():
            aside = path.with_name(f"{path.name}.before-restore-{stamp}")
            os.replace(path, aside)
            moved.append(aside)
    return tuple(moved)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_copy(path: Path) -> dict[str, int]:
    """integrity_check, then row counts; BackupError when the copy is damaged."""
    from .drill import check_restored  # the drill's check, shared

    try:
        problems, tables = check_restored(path)
    except sqlite3.Error as exc:
        raise BackupError(f"the restored copy cannot be opened: {exc}") from None
    if problems != ["ok"]:
        raise BackupError("the restored copy fails integrity_check: " + "; ".join(problems[:5]))
    return tables


def default_output(settings: Settings, timestamp: dt.datetime | None) -> Path:
    db = databases(settings)[0]
    label = timestamp.strftime("%Y%m%dT%H%M%SZ") if timestamp else "latest"
    made = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return paths(settings).restores / f"{db.stem}-{label}-restored-{made}{db.suffix}"


def restore(settings: Settings, *, output: Path | None = None, timestamp: dt.datetime | None = None,
            timeout: float = 6 * 3600) -> Restored:
    """Restore the newest state (or the state at `timestamp`) to `output` (default: a new file to inspect)."""
    db = databases(settings)[0]
    target = Path(os.path.abspath(output)) if output else default_output(settings, timestamp)
    _refuse_if_held(settings, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.restoring-{os.getpid()}")
    for leftover in sidecars(tmp)[:3]:
        leftover.unlink(missing_ok=True)
    args = ["restore", *config_args(settings), "-json", "-o", str(tmp)]
    if timestamp:
        args += ["-timestamp", _go_time(timestamp)]
    started = time.monotonic()
    try:
        proc = run(settings, [*args, str(db)], timeout=timeout, what="restoring from the replica")
        if proc.returncode != 0 or not tmp.exists():
            reason = last_error_line(proc.stderr)
            if "no matching backup" in reason or "not available" in reason:
                at = f" at or before {timestamp.isoformat()}" if timestamp else ""
                reason = f"the replica {replica_location(settings)} holds no backup{at} ({reason})"
            raise BackupError(f"restore failed: {reason}")
        try:
            position = json.loads(proc.stdout).get("txid", "")
        except ValueError:
            position = ""
        tables = check_copy(tmp)
        seconds = time.monotonic() - started
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        _refuse_if_held(settings, target)  # again: something may have started meanwhile
        moved = _move_aside(target, stamp)
        size = tmp.stat().st_size
        parent = target.parent.stat()
        if os.geteuid() == 0 and parent.st_uid != 0:
            # root restoring into the app's directory: hand the file to its owner
            os.chown(tmp, parent.st_uid, parent.st_gid)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        for leftover in sidecars(tmp)[:3]:
            leftover.unlink(missing_ok=True)
    return Restored(output=target, position=position, seconds=seconds, size=size, moved_aside=moved,
                    tables=tables)


def restore_if_missing(settings: Settings) -> str:
    """First boot: restore into the database path when it is missing and the replica has a backup.

    An unreachable replica is an error, never "start empty": an empty
    database would then be replicated over the real history.
    """
    db = databases(settings)[0]
    if db.exists():
        return f"{db} exists; nothing to restore"
    files = replica_files(settings)
    if not files:
        return (f"no backup in {replica_location(settings)}; Agentstead starts with a new, empty database")
    done = restore(settings, output=db)
    aside = f" (moved aside: {', '.join(str(p) for p in done.moved_aside)})" if done.moved_aside else ""
    return (f"restored {db} from {replica_location(settings)} at position {done.position} "
            f"({done.size} bytes in {done.seconds:.1f}s, integrity ok){aside}")
