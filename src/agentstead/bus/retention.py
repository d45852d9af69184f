"""Event log retention, run in the background."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from ..settings import Settings
from ..store import events as store
from ..timeutil import iso, now
from .bus import Bus

log = logging.getLogger("agentstead.bus")


async def purge_once(bus: Bus, settings: Settings) -> int:
    cutoff = iso(now() - dt.timedelta(days=settings.event_retention_days))
    return await bus.db.write(store.purge, cutoff, settings.event_retention_max)


async def retention(bus: Bus, settings: Settings, interval: float = 600.0, first_after: float = 60.0) -> None:
    await asyncio.sleep(first_after)  # not during startup, when the app has better things to do
    while True:
        try:
            deleted = await purge_once(bus, settings)
            if deleted:
                log.info("event log retention", extra={"deleted": deleted})
        except Exception:
            log.exception("event log retention failed")
        await asyncio.sleep(interval)
