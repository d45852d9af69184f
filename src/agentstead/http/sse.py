"""Server-sent events for scripts: GET /api/runs/{id}/stream and /api/threads/{id}/stream.

Same semantics as a WebSocket subscription: `Last-Event-ID` (or none) is the
cursor; missed events come from the log, then live ones, with no gap or duplicate.
Each event's `id:` is its seq. A run's stream ends once the run has finished,
with or without a cursor (a finished run sends nothing more). A stream ends, too,
when the caller's session or token does (the identity service tells it at once),
and when the client goes away, which is the normal end of a stream, not an error.
"""

from __future__ import annotations

import asyncio
import re
from typing import Awaitable, Callable

from aiohttp import web

from ..auth.access import requires
from ..bus.bus import Delivery
from ..errors import Refused
from ..keys import BUS, IDENTITY, RUNS, SETTINGS, THREADS
from ..store.runs import FINISHED
from .authn import principal_of

_END = {"run.succeeded", "run.failed", "run.cancelled"}
KEEPALIVE = 15.0
PAGE = 500
# A seq: ASCII digits, at most 18 of them (below 2^63, what SQLite holds); openapi.yaml says the same.
LAST_EVENT_ID = re.compile(r"[0-9]{1,18}")


def _frame(d: Delivery) -> bytes:
    return f"id: {d.seq}\nevent: {d.type}\ndata: {d.wire}\n\n".encode()


def cursor(request: web.Request) -> int | None:
    """The Last-Event-ID header as a seq, None when absent; a 400 for anything else."""
    raw = request.headers.get("Last-Event-ID")
    if raw is None:
        return None
    if not LAST_EVENT_ID.fullmatch(raw):
        raise Refused(400, "bad_request", "Last-Event-ID must be a seq: 1 to 18 digits 0-9")
    return int(raw)


async def _stream(request: web.Request, topic: str,
                  finished: Callable[[], Awaitable[bool]] | None = None) -> web.StreamResponse:
    after = cursor(request)
    bus = request.app[BUS]
    if after is not None and after < await bus.floor():
        raise Refused(410, "cursor_expired", "events after that id were deleted by retention; fetch the state over REST")
    queue: asyncio.Queue[Delivery | None] = asyncio.Queue(maxsize=request.app[SETTINGS].ws_send_queue)
    overflow = asyncio.Event()

    def deliver(d: Delivery | None) -> None:
        try:
            queue.put_nowait(d)
        except asyncio.QueueFull:
            overflow.set()

    principals, principal = request.app[IDENTITY].principals, principal_of(request)
    sub = bus.subscribe(topic, deliver)  # live first, then the log: nothing falls between
    unwatch = principals.watch(principal.user_id, lambda: deliver(None))   # None: re-check the caller
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       "X-Accel-Buffering": "no"})
    try:
        await resp.prepare(request)
        last = after if after is not None else await bus.head()

        async def replay() -> bool:
            """Send the log after `last`; True when it held the run's end."""
            nonlocal last
            while True:
                page = await bus.replay(topic, last, limit=PAGE)
                for d in page:
                    last = d.seq
                    await resp.write(_frame(d))
                    if finished is not None and d.type in _END:
                        return True
                if len(page) < PAGE:
                    return False

        if after is not None and await replay():
            return resp
        if finished is not None and await finished():
            await replay()   # what was appended before the run ended, after the cursor; then done
            return resp
        while not overflow.is_set():
            try:
                async with asyncio.timeout(KEEPALIVE):
                    d = await queue.get()
            except TimeoutError:
                await resp.write(b": keep-alive\n\n")
                continue
            if d is None:
                try:
                    await principals.current(principal)
                except Refused:
                    break   # signed out, revoked or disabled: the stream ends with the session
                continue
            if d.seq <= last:
                continue
            last = d.seq
            await resp.write(_frame(d))
            if finished is not None and d.type in _END:
                break
    except ConnectionResetError:
        pass   # the client left: how an event stream usually ends
    finally:
        bus.unsubscribe(sub)
        unwatch()
    return resp


@requires("read")
async def run_stream(request: web.Request) -> web.StreamResponse:
    runs, principal = request.app[RUNS], principal_of(request)
    run = await runs.get(principal, request.match_info["id"])

    async def finished() -> bool:
        try:
            return (await runs.get(principal, run.id)).status in FINISHED
        except Refused:
            return True   # deleted with its thread meanwhile: nothing more will come

    return await _stream(request, f"runs/{run.id}", finished)


@requires("read")
async def thread_stream(request: web.Request) -> web.StreamResponse:
    thread = await request.app[THREADS].get(principal_of(request), request.match_info["id"])
    return await _stream(request, f"threads/{thread.id}")
