"""The one Litestream configuration, rendered from Settings. Pure: no I/O.

The NixOS module, `scripts/run` and the tests all get it from here (through
`agentstead backup config` or `agentstead backup replicate`), so there is no
second copy to drift. Credentials never appear in it: Litestream reads them
from its environment, which `litestream.child_env()` fills from the secret
settings (files or systemd credentials).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import yaml

from ..settings import Settings

# sockaddr_un.sun_path is 108 bytes including the NUL.
_MAX_SOCKET_PATH = 107


@dataclasses.dataclass(frozen=True)
class Paths:
    """Where backup state lives, all under the state directory."""

    dir: Path        # <state_dir>/backup
    config: Path     # the rendered litestream.yml (no secrets)
    socket: Path     # Litestream's control socket (sync, txid, list)
    drill: Path      # the last drill's result, JSON
    restores: Path   # default output directory of `agentstead backup restore`


def paths(settings: Settings) -> Paths:
    state = Path(os.path.abspath(settings.state_dir))
    backup = state / "backup"
    return Paths(dir=backup, config=backup / "litestream.yml", socket=backup / "litestream.sock",
                 drill=backup / "last-drill.json", restores=state / "restore")


def databases(settings: Settings) -> list[Path]:
    """Every SQLite file Agentstead writes (a test fails when one is missing here).

    Pre-migration snapshots (VACUUM INTO copies) are not listed: they are
    frozen copies of a state the replica already holds.
    """
    return [Path(os.path.abspath(settings.db_file))]


def go_duration(seconds: float) -> str:
    """Seconds as a Go duration string, the form Litestream parses: 1s, 500ms, 24h."""
    ms = round(seconds * 1000)
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def is_s3(settings: Settings) -> bool:
    return bool(settings.backup_s3_bucket)


def _force_path_style(settings: Settings) -> bool:
    if settings.backup_s3_force_path_style == "auto":
        return bool(settings.backup_s3_endpoint)
    return settings.backup_s3_force_path_style == "true"


def replica_location(settings: Settings, db: Path | None = None) -> str:
    """Where a database's replica is, for people (never includes credentials)."""
    db = db or databases(settings)[0]
    if is_s3(settings):
        where = f"s3://{settings.backup_s3_bucket}/{settings.backup_s3_path.strip('/')}/{db.name}"
        return where + (f" at {settings.backup_s3_endpoint}" if settings.backup_s3_endpoint else "")
    return str(Path(os.path.abspath(settings.backup_local_path)) / db.name)


def _replica(settings: Settings, db: Path) -> dict:
    interval = go_duration(settings.backup_sync_interval)
    if not is_s3(settings):
        return {"type": "file", "path": str(Path(os.path.abspath(settings.backup_local_path)) / db.name),
                "sync-interval": interval}
    replica = {"type": "s3", "bucket": settings.backup_s3_bucket,
               "path": f"{settings.backup_s3_path.strip('/')}/{db.name}",
               "region": settings.backup_s3_region}
    if settings.backup_s3_endpoint:
        replica["endpoint"] = settings.backup_s3_endpoint
    replica["force-path-style"] = _force_path_style(settings)
    replica["sync-interval"] = interval
    return replica


def render(settings: Settings) -> str:
    """litestream.yml for these settings."""
    p = paths(settings)
    if len(str(p.socket).encode()) > _MAX_SOCKET_PATH:
        # Not a ConfigError: the state directory is valid, only too deep for a Unix socket.
        raise ValueError(f"the Litestream control socket path {p.socket} is longer than "
                         f"{_MAX_SOCKET_PATH} bytes; use a shorter AGENTSTEAD_STATE_DIR")
    interval = go_duration(settings.backup_sync_interval)
    document = {
        # The control socket: the drill pins a position through it, and the
        # app reads the last successful sync from it for /readyz and /metrics.
        "socket": {"enabled": True, "path": str(p.socket)},
        "snapshot": {"interval": go_duration(settings.backup_snapshot_interval),
                     "retention": go_duration(settings.backup_retention)},
        "dbs": [
            {"path": str(db),
             # Litestream cuts one LTX file per monitor tick with writes and
             # uploads each one: ticking at the sync interval makes the
             # interval bound the storage requests too, not only the lag.
             "monitor-interval": interval,
             "replica": _replica(settings, db)}
            for db in databases(settings)
        ],
    }
    header = (
        "# Litestream configuration for Agentstead, rendered from the AGENTSTEAD_* settings\n"
        "# by `agentstead backup config`. Do not edit: change the settings instead.\n"
        "# No credentials here: `agentstead backup replicate` gives them to Litestream in\n"
        "# its environment, read from the secret settings (files or systemd credentials).\n"
        "# Run Litestream without AWS_CA_BUNDLE in its environment: with a custom S3\n"
        "# endpoint, Litestream 0.5 refuses to start when it is set.\n")
    return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
