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
from .http.first_page import FirstPage
from .http.middleware import middlewares
from .http.tracing import server_spans
from .auth.ratelimit import RateLimiter
from .bus.bus import Bus
from .bus.nats_bus import NatsBus
from .bus.retention import retention
from .bus.topics import Authorizer
from .logs import AccessLog
from .agents.mcp_tools import McpTools
from .keys import (ACCESS_LOG, AGENTS, BUILD, BUS, CONVERSATION, DB, FIRST_PAGE, IDEMPOTENCY, IDEMPOTENCY_IN_FLIGHT,
                   IDENTITY, LANGGRAPH, MCP, MCP_ENDPOINT, METRICS, OPENAI, OPENAPI, OPENAPI_COMPAT, RATE_API,
                   RATE_AUTH, RUNNER, RUNS, SEARCH, SETTINGS, STARTED_AT, SYSTEM, THREADS, TOPICS, TRACING,
                   WEBSOCKETS, WORKFLOWS)
from .runner.runner import Runner
from .services.agent_tools import AgentTools
from .services.agents import AgentService
from .services.compat_langgraph import LangGraphService
from .services.compat_openai import OpenAIService
from .services.mcp_endpoint import McpEndpoint
from .services.idempotency import IdempotencyKeys
from .services.identity import Identity
from .services.runs import RunService
from .services.system import SystemService
from .services.conversation import ConversationService
from .services.search import SearchService
from .services.threads import ThreadService
from .services.workflows import WorkflowService
from .metrics import Metrics
from .observe import watching
from .settings import Settings
from .store.db import Database
from .store.migrate import migrate
from .tracing import Tracing

log = logging.getLogger("agentstead")


@functools.lru_cache(maxsize=2)
def _openapi_text(name: str = "openapi.yaml") -> str:
    return resources.files("agentstead.contracts").joinpath(name).read_text(encoding="utf-8")


def load_openapi(name: str = "openapi.yaml") -> dict:
    """The OpenAPI document (parsed with libyaml when available; the file is read once);
    `openapi-compat.yaml` is the protocol adapters' (/v1, /lg)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return contracts.bundle(yaml.load(_openapi_text(name), Loader=loader))  # workflow.schema.json inlined


async def _database(app: web.Application) -> AsyncIterator[None]:
    """Migrate (idempotent; a newer schema is refused), then open the connections."""
    settings = app[SETTINGS]
    report = await asyncio.to_thread(migrate, settings.db_file,
                                     snapshots_kept=settings.migration_snapshots)
    if report.applied:
        log.info("migrated database", extra={"from_version": report.before, "to_version": report.after,
                                             "snapshot": str(report.snapshot or "")})
    db = Database(settings.db_file, readers=settings.db_readers,
                  busy_timeout_ms=settings.db_busy_timeout_ms, health_window=settings.readyz_write_window,
                  shared=settings.instances > 1)   # several writer processes take turns (store/write_gate.py)
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
    app[MCP] = mcp = McpTools(settings.mcp_servers, settings.mcp_refresh_seconds)
    runner = Runner(app[BUS], settings, mcp, tracer=app[TRACING].tracer)
    app[RUNNER] = runner
    app[AGENTS] = AgentService(db, settings, mcp)
    app[THREADS] = threads = ThreadService(db, runner)
    app[RUNS] = runs = RunService(db, runner)
    app[SEARCH] = SearchService(db)
    app[CONVERSATION] = ConversationService(runner)
    app[WORKFLOWS] = WorkflowService(db, runner)
    app[OPENAI] = OpenAIService(app[BUS], runner)
    app[LANGGRAPH] = LangGraphService(app[BUS], runner, threads, runs)
    app[MCP_ENDPOINT] = endpoint = McpEndpoint(AgentTools(db, app[BUS], app[AGENTS], threads, runs,
                                                          settings.run_timeout_seconds))
    # Owners only, as the REST routes: no pattern (runs/*, threads/*) for anyone, admins included.
    app[TOPICS].register("runs", runs.readable, pattern=lambda p: False)
    app[TOPICS].register("threads", threads.readable, pattern=lambda p: False)
    await mcp.start()
    await runner.start()
    yield
    await endpoint.stop()
    await runner.stop()
    await mcp.stop()


async def _tracing(app: web.Application) -> AsyncIterator[None]:
    """The span exporter (tracing on only); first in, last out: the runner's last spans are sent."""
    tracing = app[TRACING]
    tracing.start()
    yield
    await tracing.stop()


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
    build = buildinfo.load()
    tracing = Tracing(settings, build.version)   # off (no provider, no thread) unless an endpoint is set
    traced = server_spans(tracing.tracer) if tracing.enabled else None
    app = web.Application(middlewares=middlewares(traced), client_max_size=settings.max_body_size)
    app[SETTINGS] = settings
    app[TRACING] = tracing
    app[METRICS] = Metrics()
    app[ACCESS_LOG] = AccessLog(settings.log_format, enabled=settings.log_level in ("debug", "info"))
    app.on_cleanup.append(lambda app: _flush(app[ACCESS_LOG]))
    app[BUILD] = build
    app[STARTED_AT] = time.monotonic()
    app[OPENAPI] = load_openapi()
    app[OPENAPI_COMPAT] = load_openapi("openapi-compat.yaml")
    if settings.frontend_dir:
        app[FIRST_PAGE] = FirstPage(settings.frontend_dir)
    app[WEBSOCKETS] = weakref.WeakSet()
    app[IDEMPOTENCY_IN_FLIGHT] = set()
    app[TOPICS] = Authorizer()
    # Per instance, the limit divided among the instances: Caddy spreads a client's requests
    # evenly (round robin), so the host as a whole allows the configured rate (docs/scale-out.md).
    share = settings.instances
    app[RATE_AUTH] = RateLimiter(max(1.0, settings.rate_limit_auth_per_minute / share), per=60)
    app[RATE_API] = RateLimiter(max(1.0, settings.rate_limit_api_per_minute / share), per=60)
    app.cleanup_ctx.append(_tracing)
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
