"""Following one topic from a cursor: the log after it, then live events, no gap and no
duplicate (the same order as a WebSocket subscription: subscribe first, then replay).

Used by the protocol adapters (http/compat_*.py), which answer one request with what a run
does: they take the head before they start or resume the run and follow its topic from there.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

from .bus import Bus, Delivery

PAGE = 500
RUN_END = frozenset({"run.succeeded", "run.failed", "run.cancelled", "run.interrupted", "run.waiting"})


async def follow(bus: Bus, topic: str, after: int, *, until: frozenset[str] = RUN_END,
                 idle: float = 15.0) -> AsyncIterator[Delivery | None]:
    """Events on `topic` after seq `after`, ending after one whose type is in `until`.
    Yields None after `idle` seconds without an event (the caller's chance to look at its
    client or to send a keep-alive)."""
    queue: asyncio.Queue[Delivery] = asyncio.Queue()
    sub = bus.subscribe(topic, queue.put_nowait)   # live first, then the log: nothing falls between
    last = after
    try:
        while True:
            page = await bus.replay(topic, last, limit=PAGE)
            for d in page:
                last = d.seq
                yield d
                if d.type in until:
                    return
            if len(page) < PAGE:
                break
        while True:
            try:
                async with asyncio.timeout(idle):
                    d = await queue.get()
            except TimeoutError:
                yield None
                continue
            if d.seq <= last:
                continue
            last = d.seq
            yield d
            if d.type in until:
                return
    finally:
        bus.unsubscribe(sub)
