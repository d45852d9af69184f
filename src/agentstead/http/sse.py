"""Server-sent events for scripts: GET /api/runs/{id}/stream and /api/threads/{id}/stream.

Same semantics as a WebSocket subscription: `Last-Event-ID` (or none) is the
cursor; missed events come from the log, then live ones, with no gap or duplicate.
Each event's `id:` is its seq. The stream ends after a run finishes.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..auth.access import requires
from ..bus.bus import Delivery
from ..keys import BUS, CHAT, SETTINGS
from ..services.chat import ChatError
from .authn import principal_of
from .errors import ApiError

_END = {"run.succeeded", "run.failed", "run.cancelled"}
KEEPALIVE = 15.0


def _frame(d: Delivery) -> bytes:
    return f"id: {d.seq}\nevent: {d.type}\ndata: {d.wire}\n\n".encode()


async def _stream(request: web.Request, topic: str, *, ends_with_run: bool) -> web.StreamResponse:
    raw = request.headers.get("Last-Event-ID", "").strip()
    if raw and not raw.isdigit():
        raise ApiError(400, "bad_request", "Last-Event-ID must be a seq number")
    bus = request.app[BUS]
    after = int(raw) if raw else None
    if after is not None and after < await bus.floor():
        raise ApiError(410, "cursor_expired", "events after that id were deleted by retention; fetch the state over REST")
    queue: asyncio.Queue[Delivery] = asyncio.Queue(maxsize=request.app[SETTINGS].ws_send_queue)
    overflow = asyncio.Event()

    def deliver(d: Delivery) -> None:
        try:
            queue.put_nowait(d)
        except asyncio.QueueFull:
            overflow.set()

    sub = bus.subscribe(topic, deliver)  # live first, then the log: nothing falls between
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                       "X-Accel-Buffering": "no"})
    try:
        await resp.prepare(request)
        last = after if after is not None else await bus.head()
        if after is not None:
            while True:
                page = await bus.replay(topic, last, limit=500)
                for d in page:
                    last = d.seq
                    await resp.write(_frame(d))
                    if ends_with_run and d.type in _END:
                        return resp
                if len(page) < 500:
                    break
        while not overflow.is_set():
            try:
                async with asyncio.timeout(KEEPALIVE):
                    d = await queue.get()
            except TimeoutError:
                await resp.write(b": keep-alive\n\n")
                continue
            if d.seq <= last:
                continue
            last = d.seq
            await resp.write(_frame(d))
            if ends_with_run and d.type in _END:
                break
    finally:
        bus.unsubscribe(sub)
    return resp


@requires("read")
async def run_stream(request: web.Request) -> web.StreamResponse:
    try:
        run = await request.app[CHAT].get_run(principal_of(request), request.match_info["id"])
    except ChatError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    return await _stream(request, f"runs/{run.id}", ends_with_run=True)


@requires("read")
async def thread_stream(request: web.Request) -> web.StreamResponse:
    try:
        thread = await request.app[CHAT].get_thread(principal_of(request), request.match_info["id"])
    except ChatError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    return await _stream(request, f"threads/{thread.id}", ends_with_run=False)
