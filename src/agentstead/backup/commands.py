"""`agentstead backup config | replicate | status | drill | restore`."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from urllib.parse import quote

from ..settings import Settings
from ..settings import load as load_settings
from . import BackupError
from .config import databases, paths, render, replica_location
from .litestream import control, exec_replicate
from .status import collect, iso

EXIT_FAILURE = 1


def load() -> Settings:
    """The settings, ignoring AGENTSTEAD_ENV: the backup tools never use the app's
    secret key, so the production checks (which demand it) do not apply here and
    the backup units need no access to it."""
    return load_settings({k: v for k, v in os.environ.items() if k != "AGENTSTEAD_ENV"})


def cmd_config(args: argparse.Namespace) -> int:
    try:
        print(render(load()), end="")
    except ValueError as exc:
        raise BackupError(str(exc)) from None
    return 0


def cmd_replicate(args: argparse.Namespace) -> int:
    exec_replicate(load())  # does not return
    return 0


def _status(settings: Settings) -> dict:
    from .restore import replica_files

    report = collect(settings)
    db = databases(settings)[0]
    out = {"ok": report.ok, "database": str(db), "replica": replica_location(settings),
           "backup": report.check, "local_position": None, "replica_reachable": False,
           "replica_position": None, "replica_written_at": None, "replica_files": None, "replica_error": None}
    try:
        out["local_position"] = f"{int(control(settings, 'GET', f'/txid?path={quote(str(db))}')['txid']):016x}"
    except BackupError:
        pass  # Litestream is not running: the backup check says so
    try:
        files = replica_files(settings, timeout=30)
        newest = max(files, key=lambda f: (f.get("max_txid", ""), f.get("timestamp", "")), default=None)
        out["replica_reachable"] = True
        out["replica_position"] = newest["max_txid"] if newest else None
        out["replica_written_at"] = newest.get("timestamp") if newest else None
        out["replica_files"] = len(files)
    except BackupError as exc:
        out["replica_reachable"] = False
        out["replica_error"] = str(exc)
        out["ok"] = False
    return out


def cmd_status(args: argparse.Namespace) -> int:
    status = _status(load())
    if args.json:
        print(json.dumps(status, indent=2))
        return 0 if status["ok"] else EXIT_FAILURE
    check = status["backup"]
    lag = "unknown" if check["lag_seconds"] is None else f"{check['lag_seconds']:.1f}s"
    lines = [
        f"database          {status['database']}",
        f"replica           {status['replica']}",
        "reachable         " + ("yes" if status["replica_reachable"] else f"NO: {status.get('replica_error')}"),
        f"replica position  {status.get('replica_position') or '-'}"
        + (f" (written {status['replica_written_at']})" if status.get("replica_written_at") else ""),
        f"local position    {status.get('local_position') or '-'}",
        f"litestream        {check['litestream']}",
        f"lag               {lag} (alert above {check['max_lag_seconds']:g}s)",
    ]
    drill = check.get("last_drill")
    if drill:
        verdict = "ok" if drill.get("ok") else f"FAILED: {drill.get('reason')}"
        lines.append(f"last drill        {drill.get('at')} position {drill.get('position', '-')}: {verdict}")
    else:
        lines.append("last drill        none yet (agentstead backup drill)")
    lines.append("status            " + ("ok" if status["ok"] else f"PROBLEM: {check.get('error') or status.get('replica_error')}"))
    print("\n".join(lines))
    return 0 if status["ok"] else EXIT_FAILURE


def cmd_drill(args: argparse.Namespace) -> int:
    from .drill import run_drill

    result = run_drill(load())
    if args.json:
        print(json.dumps(result, indent=2))
    elif result["ok"]:
        tables = ", ".join(f"{k} {v}" for k, v in result.get("tables", {}).items())
        print(f"drill ok: restored position {result['position']} in {result['restore_seconds']:.1f}s, "
              f"integrity ok, row counts match ({tables}); recorded in {paths(load()).drill}")
    else:
        print(f"drill FAILED: {result['reason']}")
    return 0 if result["ok"] else EXIT_FAILURE


def cmd_restore(args: argparse.Namespace) -> int:
    from .restore import parse_timestamp, restore, restore_if_missing

    settings = load()
    if args.if_missing:
        if args.output or args.timestamp:
            raise BackupError("--if-missing restores the newest state into the database path; "
                              "it takes neither --output nor --timestamp")
        print(restore_if_missing(settings))
        return 0
    timestamp = parse_timestamp(args.timestamp) if args.timestamp else None
    done = restore(settings, output=Path(args.output) if args.output else None, timestamp=timestamp)
    live = databases(settings)[0]
    what = f"state at {iso(timestamp)}" if timestamp else "newest state"
    print(f"restored the {what} of {replica_location(settings)} (position {done.position}, "
          f"{done.size} bytes, {done.seconds:.1f}s) to {done.output}")
    print("integrity_check ok; rows: " + (", ".join(f"{k} {v}" for k, v in done.tables.items()) or "none"))
    for aside in done.moved_aside:
        print(f"moved aside: {aside}")
    if done.output != live:
        again = f"--timestamp {args.timestamp} " if args.timestamp else ""
        print(f"\nInspect it (e.g. sqlite3 -readonly {done.output}). To put this state in place of {live}:\n"
              "  systemctl stop agentstead.service agentstead-litestream.service\n"
              f"  agentstead backup restore {again}--output {live}\n"
              "  systemctl start agentstead-litestream.service agentstead.service\n"
              "(the old database and its -wal/-shm are moved aside, not deleted).")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `backup` and its actions to the top-level parser."""
    backup = sub.add_parser("backup", help="Litestream replication, restore and drills")
    actions = backup.add_subparsers(dest="backup_command", required=True, metavar="ACTION")
    actions.add_parser("config", help="print the Litestream configuration (no secrets in it)").set_defaults(
        func=cmd_config)
    actions.add_parser("replicate", help="run Litestream with that configuration (its unit runs this)"
                       ).set_defaults(func=cmd_replicate)
    status = actions.add_parser("status", help="replica reachable, positions, lag, last drill; exit 1 on a problem")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)
    drill = actions.add_parser("drill", help="restore the replica to a temp dir and check it; exit 1 on failure")
    drill.add_argument("--json", action="store_true", help="print the recorded result as JSON")
    drill.set_defaults(func=cmd_drill)
    restore = actions.add_parser(
        "restore", help="restore from the replica to a new file to inspect (or --output PATH)",
        description="Restore the newest state, or the state at --timestamp, from the replica. By default "
                    "into a new file under <state_dir>/restore to inspect; --output the database path "
                    "(with the app and Litestream stopped) puts it in place, moving the old one aside.")
    restore.add_argument("--timestamp", metavar="RFC3339",
                         help="restore the state at this time, e.g. 2026-03-01T14:30:00Z")
    restore.add_argument("--output", metavar="PATH", help="where to write the restored database")
    restore.add_argument("--if-missing", action="store_true",
                         help="first boot: restore into the database path only when it does not exist "
                              "(agentstead-restore.service runs this)")
    restore.set_defaults(func=cmd_restore)
