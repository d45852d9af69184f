"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import shutil
import time

from aiohttp import web

from ..keys import BUILD, DB, METRICS, SETTINGS, STARTED_AT
from ..store import health as store
from ..store.migrate import latest_version
from ..auth.access import local_or_admin, public

PROBE_TIMEOUT = 5.0


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
    db, metrics = app[DB], app[METRICS]
    token = secrets.token_hex(8)
    start = time.perf_counter()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            await store.write_probe(db, token)
            seen = await store.read_probe(db)
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


async def _check_schema(app: web.Application) -> dict:
    expected = latest_version()
    try:
        found = await store.schema_version(app[DB])
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


@public
async def readyz(request: web.Request) -> web.Response:
    """Readiness: a real write+read of the database, the schema, free disk."""
    app = request.app
    checks = {
        "database": await _check_database(app),
        "schema": await _check_schema(app),
        "disk": _check_disk(app),
    }
    failing = sorted(name for name, check in checks.items() if not check["ok"])
    body = {"status": "fail" if failing else "ok", "failing": failing, "checks": checks}
    return web.json_response(body, status=503 if failing else 200)


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
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
