"""Running the app: listen, tell systemd, stop gracefully on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal

from aiohttp import web

from . import sdnotify
from .app import create_app
from .settings import Settings

log = logging.getLogger("agentstead.server")


async def _watchdog(interval: float) -> None:
    # The ping comes from the event loop itself: a blocked loop misses it
    # and systemd restarts the service.
    while True:
        sdnotify.notify("WATCHDOG=1")
        await asyncio.sleep(interval)


def settle_heap(thresholds: tuple[int, ...]) -> None:
    """Once started: collect, freeze what start-up built (modules, the app, LangChain's and
    pydantic's classes; hundreds of thousands of objects), then set the thresholds. A
    full collection walked all of them: 129–237 ms pauses with 50 chats streaming
    (bench/RESULTS.md, Chat, "50 concurrent chats"); frozen, no collection looks at them
    again, and the young generation is collected less often (settings: gc_thresholds;
    none: the collector is left as Python set it)."""
    if not thresholds:
        return
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)


async def serve(settings: Settings, *, unix_socket: str | None = None) -> None:
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           shutdown_timeout=settings.shutdown_grace_seconds)
    await runner.setup()
    path = unix_socket or settings.unix_socket
    site: web.BaseSite
    if path:
        site = web.UnixSite(runner, path)
    else:
        site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise SystemExit(f"cannot listen on {path or f'{settings.host}:{settings.port}'}: {exc.strerror}")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    settle_heap(settings.gc_thresholds)
    log.info("listening", extra={"address": path or f"http://{settings.host}:{settings.port}"})
    sdnotify.notify("READY=1\nSTATUS=serving")
    interval = sdnotify.watchdog_interval()
    pinger = asyncio.create_task(_watchdog(interval)) if interval else None
    try:
        await stop.wait()
    finally:
        log.info("stopping", extra={"grace_seconds": settings.shutdown_grace_seconds})
        sdnotify.notify("STOPPING=1\nSTATUS=draining requests")
        # cleanup(): stop listening, close WebSockets (1001), wait for in-flight
        # handlers up to the grace period, then close the database.
        await runner.cleanup()
        if pinger:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
        log.info("stopped")


def run(settings: Settings, *, unix_socket: str | None = None) -> None:
    """On asyncio's own event loop, not uvloop. libuv (under uvloop) calls abort() on errors
    asyncio reports and survives: a failed write to its wakeup descriptor (which every
    thread handing a result back does: aiosqlite's, the writer's), an epoll_ctl on a
    closed descriptor (uvloop issues #100, #311, #317, #438). An abort drops every
    WebSocket and interrupts every run at once. With libfiu failing 30 % of write()
    calls, a thread waking the loop 20,000 times killed a uvloop process with SIGABRT;
    asyncio's loop (its wakeup is a send() whose failure it ignores) ran to the end.
    systemd would restart it and nothing acknowledged would be lost, but a loop that
    stays up is better than one that restarts. uvloop bought nothing measurable here
    (bench/RESULTS.md, Event loop: database endpoint 0.98x, healthz 1.21x for asyncio,
    CPU per request within 7 us), so the process keeps the loop that survives."""
    asyncio.run(serve(settings, unix_socket=unix_socket))
