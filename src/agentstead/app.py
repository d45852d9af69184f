"""The application factory."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from importlib import resources
from typing import AsyncIterator

import aiohttp
import yaml
from aiohttp import WSCloseCode, web

from . import buildinfo, routes
from .http import cors
from .http.middleware import middlewares
from .auth.ratelimit import RateLimiter
from .keys import BUILD, DB, IDENTITY, METRICS, OPENAPI, RATE_API, RATE_AUTH, SETTINGS, STARTED_AT, WEBSOCKETS
from .services.identity import IdentityService, maintenance
from .metrics import Metrics
from .settings import Settings
from .store.db import Database
from .store.migrate import migrate

log = logging.getLogger("agentstead")


def load_openapi() -> dict:
    text = resources.files("agentstead.contracts").joinpath("openapi.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


async def _database(app: web.Application) -> AsyncIterator[None]:
    """Migrate (idempotent; a newer schema is refused), then open the connections."""
    settings = app[SETTINGS]
    report = await asyncio.to_thread(migrate, settings.db_file,
                                     snapshots_kept=settings.migration_snapshots)
    if report.applied:
        log.info("migrated database", extra={"from_version": report.before, "to_version": report.after,
                                             "snapshot": str(report.snapshot or "")})
    db = Database(settings.db_file, readers=settings.db_readers,
                  busy_timeout_ms=settings.db_busy_timeout_ms)
    await db.open()
    app[DB] = db
    yield
    await db.close()


async def _identity(app: web.Application) -> AsyncIterator[None]:
    """The outbound HTTP session (OIDC), the identity service and its maintenance task."""
    settings = app[SETTINGS]
    async with aiohttp.ClientSession(headers={"User-Agent": f"agentstead/{app[BUILD].version}"}) as http:
        service = IdentityService(app[DB], settings, http)
        app[IDENTITY] = service
        task = asyncio.create_task(maintenance(service))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await service.flush_token_use()


async def _close_websockets(app: web.Application) -> None:
    """On shutdown, open WebSockets are told the server is going away (1001)."""
    for ws in list(app[WEBSOCKETS]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=middlewares(), client_max_size=settings.max_body_size)
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[BUILD] = buildinfo.load()
    app[STARTED_AT] = time.monotonic()
    app[OPENAPI] = load_openapi()
    app[WEBSOCKETS] = weakref.WeakSet()
    app[RATE_AUTH] = RateLimiter(settings.rate_limit_auth_per_minute, per=60)
    app[RATE_API] = RateLimiter(settings.rate_limit_api_per_minute, per=60)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_identity)
    app.on_shutdown.append(_close_websockets)
    routes.setup(app)
    cors.setup(app, settings)
    return app
