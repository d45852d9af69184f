"""The application factory."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import weakref
from importlib import resources
from typing import AsyncIterator

import aiohttp
import yaml
from aiohttp import WSCloseCode, web

from . import buildinfo, contracts, routes
from .http import cors
from .http.idempotency import forget_expired
from .http.middleware import middlewares
from .auth.ratelimit import RateLimiter
from .bus.bus import Bus
from .bus.nats_bus import NatsBus
from .bus.retention import retention
from .bus.topics import Authorizer
from .logs import AccessLog
from .keys import (ACCESS_LOG, AGENTS, BUILD, BUS, DB, IDEMPOTENCY, IDEMPOTENCY_IN_FLIGHT, IDENTITY, METRICS,
                   OPENAPI, RATE_API, RATE_AUTH, RUNNER, RUNS, SETTINGS, STARTED_AT, SYSTEM, THREADS, TOPICS,
                   WEBSOCKETS, WORKFLOWS)
from .runner.runner import Runner
from .services.agents import AgentService
from .services.idempotency import IdempotencyKeys
from .services.identity import Identity
from .services.runs import RunService
from .services.system import SystemService
from .services.threads import ThreadService
from .services.workflows import WorkflowService
from .metrics import Metrics
from .observe import watching
from .settings import Settings
from .store.db import Database
from .store.migrate import migrate

log = logging.getLogger("agentstead")


@functools.lru_cache(maxsize=1)
def _openapi_text() -> str:
    return resources.files("agentstead.contracts").joinpath("openapi.yaml").read_text(encoding="utf-8")


def load_openapi() -> dict:
    """The OpenAPI document (parsed with libyaml when available; the file is read once)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return contracts.bundle(yaml.load(_openapi_text(), Loader=loader))  # workflow.schema.json inlined


async def _database(app: web.Application) -> AsyncIterator[None]:
    """Migrate (idempotent; a newer schema is refused), then open the connections."""
    settings = app[SETTINGS]
    report = await asyncio.to_thread(migrate, settings.db_file,
                                     snapshots_kept=settings.migration_snapshots)
    if report.applied:
        log.info("migrated database", extra={"from_version": report.before, "to_version": report.after,
                                             "snapshot": str(report.snapshot or "")})
    db = Database(settings.db_file, readers=settings.db_readers,
                  busy_timeout_ms=settings.db_busy_timeout_ms, health_window=settings.readyz_write_window)
    await db.open()
    app[DB] = db
    app[SYSTEM] = SystemService(db)
    app[IDEMPOTENCY] = IdempotencyKeys(db, settings.idempotency_key_ttl)
    yield
    await db.close()   # everything queued is committed first


async def _bus(app: web.Application) -> AsyncIterator[None]:
    """The event bus (fan-out after each commit) and the event log's retention."""
    settings = app[SETTINGS]
    # Several instances share the log and hear each other's commits over NATS (docs/scale-out.md).
    bus = NatsBus(app[DB], settings.nats_url, settings.nats_subject) if settings.nats_url else Bus(app[DB])
    app[BUS] = bus
    await bus.start()
    task = asyncio.create_task(retention(bus, settings))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await bus.stop()


async def _identity(app: web.Application) -> AsyncIterator[None]:
    """The outbound HTTP session (OIDC), identity and its maintenance task."""
    settings = app[SETTINGS]
    async with aiohttp.ClientSession(headers={"User-Agent": f"agentstead/{app[BUILD].version}"}) as http:
        identity = Identity(app[DB], settings, http, bus=app[BUS])
        app[IDENTITY] = identity
        if settings.initial_admin_email and await identity.users.ensure_initial_admin(settings.initial_admin_email):
            log.info("created the initial administrator", extra={"email": settings.initial_admin_email})
        task = asyncio.create_task(identity.maintenance())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await identity.tokens.flush_use()
        identity.close()


async def _runs(app: web.Application) -> AsyncIterator[None]:
    """The runner (supervised run tasks) and the services over it; topics runs/ and threads/
    are readable by their owners, the same check the REST routes make."""
    db, settings = app[DB], app[SETTINGS]
    runner = Runner(app[BUS], settings)
    app[RUNNER] = runner
    app[AGENTS] = AgentService(db, settings)
    app[THREADS] = threads = ThreadService(db, runner)
    app[RUNS] = runs = RunService(db, runner)
    app[WORKFLOWS] = WorkflowService(db, runner)
    # Owners only, as the REST routes: no pattern (runs/*, threads/*) for anyone, admins included.
    app[TOPICS].register("runs", runs.readable, pattern=lambda p: False)
    app[TOPICS].register("threads", threads.readable, pattern=lambda p: False)
    await runner.start()
    yield
    await runner.stop()


async def _idempotency_keys(app: web.Application) -> AsyncIterator[None]:
    """Expired Idempotency-Keys are forgotten in the background."""
    task = asyncio.create_task(forget_expired(app))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close_websockets(app: web.Application) -> None:
    """On shutdown, open WebSockets are told the server is going away (1001)."""
    for ws in list(app[WEBSOCKETS]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")


async def _flush(access_log: AccessLog) -> None:
    access_log.flush()


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=middlewares(), client_max_size=settings.max_body_size)
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[ACCESS_LOG] = AccessLog(settings.log_format, enabled=settings.log_level in ("debug", "info"))
    app.on_cleanup.append(lambda app: _flush(app[ACCESS_LOG]))
    app[BUILD] = buildinfo.load()
    app[STARTED_AT] = time.monotonic()
    app[OPENAPI] = load_openapi()
    app[WEBSOCKETS] = weakref.WeakSet()
    app[IDEMPOTENCY_IN_FLIGHT] = set()
    app[TOPICS] = Authorizer()
    # Per instance, the limit divided among the instances: Caddy spreads a client's requests
    # evenly (round robin), so the host as a whole allows the configured rate (docs/scale-out.md).
    share = settings.instances
    app[RATE_AUTH] = RateLimiter(max(1.0, settings.rate_limit_auth_per_minute / share), per=60)
    app[RATE_API] = RateLimiter(max(1.0, settings.rate_limit_api_per_minute / share), per=60)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_bus)
    app.cleanup_ctx.append(watching)   # event loop lag, runs counted as they end (before the runner starts)
    app.cleanup_ctx.append(_identity)
    app.cleanup_ctx.append(_runs)
    app.cleanup_ctx.append(_idempotency_keys)
    app.on_shutdown.append(_close_websockets)
    routes.setup(app)
    cors.setup(app, settings)
    return app
