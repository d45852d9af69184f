"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import shutil
import time

from aiohttp import web

from .. import observe
from ..backup import status as backup_status
from ..keys import BUILD, BUS, DB, MCP, METRICS, SETTINGS, STARTED_AT, SYSTEM
from ..store.migrate import latest_version
from ..auth.access import local_or_admin, public, requires

PROBE_TIMEOUT = 5.0
log = logging.getLogger("agentstead.health")


@public
async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers. Touches no database."""
    build = request.app[BUILD]
    return web.json_response({
        "status": "ok", "version": build.version, "commit": build.commit,
        "build_time": build.build_time, "python": build.python,
        "uptime_seconds": round(time.monotonic() - request.app[STARTED_AT], 3),
    })


async def _check_database(app: web.Application) -> dict:
    system, metrics = app[SYSTEM], app[METRICS]
    token = secrets.token_hex(8)
    start = time.perf_counter()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            seen = await system.probe(token)
    except TimeoutError:
        metrics.db_probe_ok.set(0)
        return {"ok": False, "error": f"write+read probe took longer than {PROBE_TIMEOUT:g}s"}
    except Exception as exc:  # any database failure is a failed check, not a 500
        metrics.db_probe_ok.set(0)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    elapsed = time.perf_counter() - start
    metrics.db_probe.observe(elapsed)
    if seen != token:
        metrics.db_probe_ok.set(0)
        return {"ok": False, "error": "probe row read back differs from the one written",
                "latency_ms": round(elapsed * 1000, 3)}
    metrics.db_probe_ok.set(1)
    return {"ok": True, "latency_ms": round(elapsed * 1000, 3)}


def _check_writes(app: web.Application) -> dict:
    """Recent write transactions (all of them, not only the probe's): failing while the
    newest failed or 3+ of the window's did (10 % or more), degraded (still ready) while any did;
    it clears by itself once writes go through again and the failures leave the window."""
    health = app[DB].health
    app[METRICS].set_writes(health)
    report = health.report()
    result = {"ok": report.state == "ok", "state": report.state, "writes": report.writes,
              "failures": report.failures, "window_seconds": report.window}
    if report.failures:
        result["error"] = (f"{report.failures} of {report.writes} database writes failed in the last "
                           f"{report.window:g} s" + (", the newest among them" if report.last_failed else "")
                           + f"; last error: {report.last_error}")
    return result


async def _check_schema(app: web.Application) -> dict:
    expected = latest_version()
    try:
        found = await app[SYSTEM].schema_version()
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "expected": expected}
    result = {"ok": found == expected, "version": found, "expected": expected}
    if found != expected:
        result["error"] = f"schema version {found}, expected {expected}; run `agentstead migrate`"
    return result


def _check_disk(app: web.Application) -> dict:
    settings = app[SETTINGS]
    try:
        free = shutil.disk_usage(settings.db_file.parent).free
    except OSError as exc:
        return {"ok": False, "error": f"cannot stat the state directory: {exc.strerror}"}
    result = {"ok": free >= settings.min_free_disk, "free_bytes": free,
              "min_free_bytes": settings.min_free_disk}
    if not result["ok"]:
        result["error"] = f"only {free} bytes free in {settings.db_file.parent}"
    return result


# Checks that report a problem without failing readiness: when the replica
# storage is down the app must keep serving (a 503 would make a proxy's health
# check take the site down). They show as status "degraded", still 200.
DEGRADE_ONLY = frozenset({"backup", "bus", "mcp"})   # bus: NATS down, events come from the log


async def _backup_report(app: web.Application):
    """The backup report (cached ~1 s, gathered off the loop), also exported to /metrics."""
    report = await backup_status.app_report(app[SETTINGS])
    app[METRICS].set_backup(report)
    return report


async def _check_backup(app: web.Application) -> dict | None:
    """Replication lag and the last restore drill; None when backups are off."""
    if not app[SETTINGS].backup_enabled:
        return None
    try:
        return (await _backup_report(app)).check
    except Exception as exc:  # a broken status source is a finding, not a 500
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


async def readiness(app: web.Application) -> dict:
    """The readiness report: a real write+read of the database, the schema, free disk;
    backups (degrade only). Served by /readyz and, for the admin page, /api/admin/health."""
    checks = {
        "database": await _check_database(app),
        "writes": _check_writes(app),   # after the probe: its outcome counts too
        "schema": await _check_schema(app),
        "disk": _check_disk(app),
    }
    bus = app[BUS].check()   # None with one instance (no NATS)
    if bus is not None:
        checks["bus"] = bus
    backup = await _check_backup(app)
    if backup is not None:
        checks["backup"] = backup
    mcp = app[MCP].check()   # an MCP server that is down fails its tool calls, never the app
    if mcp is not None:
        checks["mcp"] = mcp
    failing = sorted(name for name, check in checks.items() if not check["ok"] and name not in DEGRADE_ONLY
                     and check.get("state") != "degraded")
    degraded = sorted(name for name, check in checks.items() if not check["ok"] and name not in failing)
    status = "fail" if failing else "degraded" if degraded else "ok"
    return {"status": status, "failing": failing, "degraded": degraded, "checks": checks}


@public
async def readyz(request: web.Request) -> web.Response:
    """Readiness for probes and proxies: 503 when a check in `failing` fails."""
    body = await readiness(request.app)
    return web.json_response(body, status=503 if body["failing"] else 200)


@requires("admin")
async def admin_health(request: web.Request) -> web.Response:
    """The same report for administrators through /api (Caddy keeps /readyz private);
    always 200: the body's status says whether the app is ready."""
    return web.json_response(await readiness(request.app))


def is_local(request: web.Request) -> bool:
    """A direct loopback (or Unix socket) client, not a request relayed by a proxy."""
    if any(h in request.headers for h in ("Forwarded", "X-Forwarded-For", "X-Real-IP")):
        return False
    remote = request.remote
    if remote is None:
        return False
    if remote == "" or remote.startswith("/"):
        return True  # Unix socket peer: only local processes can connect
    try:
        return ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False


@local_or_admin
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format; loopback clients (not relayed by a proxy) and admins."""
    if request.app[SETTINGS].backup_enabled:
        try:
            await _backup_report(request.app)  # refreshes the agentstead_backup_* gauges
        except Exception:
            log.exception("backup status for /metrics failed")
    request.app[METRICS].set_writes(request.app[DB].health)
    try:
        await observe.refresh(request.app)   # disk, database files, active runs, usage by model
    except Exception:  # a scrape still gets every counter; the log says what failed
        log.exception("state for /metrics failed")
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
