"""Replication state and the last drill: for /readyz, /metrics and `backup status`.

Cheap by construction: two requests to Litestream's local control socket
(`/info`, `/list`) and one small file read; no request to the storage. The
app calls app_report(), which runs that in a thread and caches it for a second,
so neither /readyz nor a Prometheus scrape can block the event loop or hammer
Litestream.

Replication lag is the time since Litestream last brought the replica level
with everything it had read from the WAL (`last_sync_at` on the control
socket). Litestream records that after each upload round, and on idle ticks
when nothing is pending (about every two sync intervals), so a healthy replica
shows at most about 2 s at the default interval; while the storage is down and
writes are pending it grows with the outage.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import time
from pathlib import Path

from ..settings import Settings
from .config import databases, paths, replica_location
from .litestream import LitestreamDown, control

_TTL = 1.0
_cache: dict[tuple[str, str], tuple[float, "Report"]] = {}


@dataclasses.dataclass(frozen=True)
class LitestreamState:
    running: bool
    error: str = ""
    status: str = ""                       # replicating, open, stopped; "" when not listed
    started_at: dt.datetime | None = None
    last_sync_at: dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class Report:
    """What /readyz shows as its `backup` check and /metrics exports."""

    ok: bool
    check: dict
    lag_seconds: float | None
    litestream_up: bool
    drill_ok: bool | None
    drill_timestamp: float | None


def parse_time(text: str | None) -> dt.datetime | None:
    """RFC 3339 (Go's nanoseconds included) -> aware datetime."""
    if not text:
        return None
    text = text.strip().replace("Z", "+00:00")
    head, dot, rest = text.partition(".")
    if dot:  # Python takes at most 6 fractional digits
        digits = rest[:len(rest) - len(rest.lstrip("0123456789"))]
        text = f"{head}.{digits[:6]}{rest[len(digits):]}"
    return dt.datetime.fromisoformat(text)


def iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z") \
        if moment else None


def litestream_state(settings: Settings) -> LitestreamState:
    """Ask the running Litestream (blocking, about a millisecond)."""
    try:
        info = control(settings, "GET", "/info", timeout=1.0)
        listing = control(settings, "GET", "/list", timeout=1.0)
    except LitestreamDown as exc:
        return LitestreamState(running=False, error=str(exc))
    except Exception as exc:  # an odd answer is a finding, not a crash of /readyz
        return LitestreamState(running=False, error=f"litestream control socket: {exc}")
    db = str(databases(settings)[0])
    entry = next((d for d in listing.get("databases", []) if d.get("path") == db), None)
    if entry is None:
        return LitestreamState(running=True, started_at=parse_time(info.get("started_at")),
                               error=f"litestream is running but does not replicate {db} "
                                     "(started with another configuration?)")
    return LitestreamState(running=True, status=entry.get("status", ""),
                           started_at=parse_time(info.get("started_at")),
                           last_sync_at=parse_time(entry.get("last_sync_at")))


def read_drill(settings: Settings) -> dict | None:
    try:
        return json.loads(paths(settings).drill.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return {"ok": False, "at": None, "reason": f"cannot read {paths(settings).drill}: {exc}"}


def lag_seconds(state: LitestreamState, now: dt.datetime) -> float | None:
    """Seconds since the replica was last level with Litestream; None when unknown."""
    if not state.running or state.error:
        return None
    since = state.last_sync_at or state.started_at  # no sync yet: count from its start
    return max(0.0, (now - since).total_seconds()) if since else None


def evaluate(settings: Settings, state: LitestreamState, drill: dict | None, now: dt.datetime) -> Report:
    """The backup check, from facts already gathered. Pure."""
    problems: list[str] = []
    lag = lag_seconds(state, now)
    if state.error:
        problems.append(state.error)
    elif state.status != "replicating":
        problems.append(f"litestream reports {databases(settings)[0]} as {state.status or 'unknown'}, "
                        "not replicating")
    elif lag is not None and lag > settings.backup_max_lag:
        synced = iso(state.last_sync_at) or "never since it started"
        problems.append(f"replication lag {lag:.0f}s exceeds {settings.backup_max_lag:g}s "
                        f"(last successful sync: {synced}); is the replica storage reachable?")
    drill_at = parse_time(drill.get("at")) if drill else None
    if drill and not drill.get("ok"):
        problems.append(f"the last restore drill failed ({drill.get('at')}): {drill.get('reason')}")
    elif drill_at and (now - drill_at).total_seconds() > settings.backup_drill_max_age:
        problems.append(f"the last restore drill ran {drill.get('at')}, more than "
                        f"{settings.backup_drill_max_age / 3600:g}h ago; is agentstead-backup-drill.timer active?")
    elif drill is None and state.started_at and \
            (now - state.started_at).total_seconds() > settings.backup_drill_max_age:
        problems.append("no restore drill has run yet; run `agentstead backup drill` "
                        "or enable agentstead-backup-drill.timer")
    check = {
        "ok": not problems,
        "replica": replica_location(settings),
        "litestream": state.status or ("not running" if not state.running else "not replicating"),
        "lag_seconds": None if lag is None else round(lag, 3),
        "max_lag_seconds": settings.backup_max_lag,
        "last_sync_at": iso(state.last_sync_at),
        "last_drill": _drill_summary(drill),
    }
    if problems:
        check["error"] = "; ".join(problems)
    return Report(ok=not problems, check=check, lag_seconds=lag, litestream_up=state.running,
                  drill_ok=None if drill is None else bool(drill.get("ok")),
                  drill_timestamp=drill_at.timestamp() if drill_at else None)


def _drill_summary(drill: dict | None) -> dict | None:
    if drill is None:
        return None
    keys = ("ok", "at", "position", "lag_seconds", "duration_seconds", "reason")
    return {k: drill.get(k) for k in keys if k in drill}


def collect(settings: Settings) -> Report:
    """Gather and evaluate (blocking)."""
    return evaluate(settings, litestream_state(settings), read_drill(settings),
                    dt.datetime.now(dt.timezone.utc))


async def app_report(settings: Settings) -> Report:
    """collect() off the event loop, cached for a second per database."""
    key = (str(Path(settings.state_dir).resolve()), str(databases(settings)[0]))
    hit = _cache.get(key)
    if hit and hit[0] > time.monotonic():
        return hit[1]
    report = await asyncio.to_thread(collect, settings)
    _cache[key] = (time.monotonic() + _TTL, report)
    return report
