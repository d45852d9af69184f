"""What the app watches for /metrics besides requests: the event loop's lag, how runs
end (from the run.* events on the bus), and the state read when /metrics is scraped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from typing import AsyncIterator

from aiohttp import web

from .keys import BUS, METRICS, SETTINGS, SYSTEM
from .monitoring_metrics import LOOP_TICK

_RUN_TOPICS = "runs/*"   # every run event is published on runs/{id} (once; threads/{id} repeats it)


async def _watch_loop(metrics) -> None:
    """Sleep LOOP_TICK, note how much later than asked the loop woke up, again."""
    loop = asyncio.get_running_loop()
    while True:
        start = loop.time()
        await asyncio.sleep(LOOP_TICK)
        metrics.loop_lag.observe(max(0.0, loop.time() - start - LOOP_TICK))


async def watching(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context (after the bus): the loop lag sampler and the run-end counter."""
    metrics = app[METRICS].monitoring
    bus = app[BUS]
    sub = bus.subscribe(_RUN_TOPICS, lambda d: metrics.run_ended(d.type, d.data))
    task = asyncio.create_task(_watch_loop(metrics), name="event-loop-lag")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    bus.unsubscribe(sub)


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


async def refresh(app: web.Application) -> None:
    """Read what /metrics reports as it is now: a stat or two and one indexed read."""
    settings, state = app[SETTINGS], app[METRICS].monitoring.state
    db_file = str(settings.db_file)
    try:
        state.disk_free = shutil.disk_usage(settings.db_file.parent).free
    except OSError:
        state.disk_free = None   # no series: the "metrics missing" case, not a full disk
    state.disk_min_free = settings.min_free_disk
    state.db_bytes, state.wal_bytes = _size(db_file), _size(db_file + "-wal")
    state.events_appended = app[BUS].appended
    state.bus = app[BUS].check()
    state.runs_active, state.usage = await app[SYSTEM].run_stats()
