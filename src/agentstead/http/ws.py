"""GET /ws: the WebSocket protocol (contracts/asyncapi.yaml is its source of truth).

Client: subscribe {topic, after?}, unsubscribe {topic}, ping.
Server: event {topic, seq, type, data, at}, subscribed {topic, seq}, unsubscribed {topic},
        error {code, message}, pong. Every client message may carry an `id`, echoed back.

Replay without gap or duplicate: on subscribe the live subscription is made
first and its events are held; the log is read after the cursor; then the held
events newer than the last replayed one are sent, and live delivery begins.
A socket whose send queue overflows is closed with 4008 and resumes from its
cursor on reconnect; it never slows the publisher or other sockets.

Re-authorisation (the caller as they are now, 4001 and 4003): http/ws_auth.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import struct
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from ..auth.access import Principal, public
from ..bus.bus import Bus, Delivery, Subscription
from ..bus.topics import Authorizer, TopicError, hidden_from
from ..errors import Refused
from ..keys import BUS, IDENTITY, METRICS, PRINCIPAL, SETTINGS, TOPICS, WEBSOCKETS
from ..monitoring_metrics import MonitoringMetrics, Tally
from ..settings import Settings
from . import storable
from .authn import allowed_origin
from .ws_auth import Reauthorizing

log = logging.getLogger("agentstead.ws")

CLOSE_SLOW_CONSUMER = 4008   # resume with subscribe {after: last seq}
REPLAY_PAGE = 500
DIRECT_WRITE_LIMIT = 64 * 1024   # aiohttp's own high-water mark
REPLAY_STALL = 10.0


class _Topic:
    """One subscription of one socket."""

    def __init__(self, conn: "Connection", topic: str):
        self.conn = conn
        self.topic = topic
        self.hidden = hidden_from(conn.principal, topic)   # event types this reader does not get
        self.replaying = True
        self.held: list[Delivery] = []
        self.last_seq = 0
        self.sub: Subscription | None = None

    def deliver(self, delivery: Delivery) -> None:
        if self.replaying or self.conn.holding:
            self.held.append(delivery)
            if len(self.held) > self.conn.settings.ws_send_queue:
                self.conn.too_slow()
        elif delivery.seq > self.last_seq:
            self.last_seq = delivery.seq
            if not delivery.type.startswith(self.hidden):
                self.conn.send_event(delivery)


class Connection(Reauthorizing):
    """One socket: its subscriptions, its send queue, and (Reauthorizing) the caller behind it."""

    def __init__(self, ws: web.WebSocketResponse, principal: Principal, bus: Bus, authorizer: Authorizer,
                 settings: Settings, identity, transport: asyncio.Transport | None = None,
                 metrics: MonitoringMetrics | None = None):
        self.ws = ws
        self.metrics = metrics   # why the server closed the socket, for /metrics
        self.sent = metrics.websocket_events if metrics is not None else Tally()   # events sent (a plain int)
        self.transport = transport
        self.principal = principal
        self.bus = bus
        self.authorizer = authorizer
        self.settings = settings
        self.identity = identity
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=settings.ws_send_queue)
        self.topics: dict[str, _Topic] = {}
        self.errors = 0
        self.close_code: int | None = None
        self.close_reason = ""
        self.closer: asyncio.Task | None = None
        self.watch: Subscription | None = None
        self._init_reauth()

    # ---- sending -----------------------------------------------------------

    def send_event(self, delivery: Delivery) -> None:
        """Live events take a fast path: with nothing queued before them and room in the
        socket's buffer, the prebuilt frame goes straight to the transport (one write, no
        queue, no task switch). Measured: fan-out p99 at 50,000 deliveries/s fell from
        238 ms to 15 ms (bench/RESULTS.md). Otherwise the queue keeps order and backpressure."""
        self.sent.n += 1
        transport = self.transport
        if (self.close_code is None and self.queue.empty() and transport is not None
                and not transport.is_closing() and transport.get_write_buffer_size() < DIRECT_WRITE_LIMIT):
            transport.write(delivery.frame)
            return
        self.send_text(delivery.wire)

    def send_text(self, text: str) -> None:
        if self.close_code is not None:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.too_slow()

    async def send_replayed(self, text: str) -> None:
        """Replay waits for room in the queue (the log is not going anywhere),
        but a client that reads nothing for REPLAY_STALL seconds is a slow consumer."""
        if self.close_code is not None:
            return
        self.sent.n += 1
        try:
            async with asyncio.timeout(REPLAY_STALL):
                await self.queue.put(text)
        except TimeoutError:
            self.too_slow()

    def send(self, message: dict[str, Any]) -> None:
        self.send_text(json.dumps(message, separators=(",", ":")))

    def too_slow(self) -> None:
        self.close_soon(CLOSE_SLOW_CONSUMER, "slow consumer: reconnect and resume with your last seq")

    def close_soon(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
            self.checked.set()   # whoever waits for a re-check sees the close instead
            if self.metrics is not None:
                self.metrics.websocket_closed(code)
            self.closer = asyncio.get_running_loop().create_task(self._close())

    async def _close(self) -> None:
        if self.close_code != CLOSE_SLOW_CONSUMER:
            # Let queued replies (the error that explains the close) reach the client first.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1):
                    await self._drain()
        try:
            async with asyncio.timeout(2):
                await self.ws.close(code=self.close_code, message=self.close_reason.encode())
        except (TimeoutError, ConnectionError):
            # The peer stopped reading: its TCP window is full, so no close frame fits.
            # Reset the connection (linger 0) so the kernel drops the unsent buffer too.
            transport = self.ws._req.transport if self.ws._req is not None else None  # noqa: SLF001
            if transport is not None:
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                transport.abort()

    async def _drain(self) -> None:
        while not self.queue.empty():
            await asyncio.sleep(0.005)

    async def writer(self) -> None:
        while True:
            text = await self.queue.get()
            await self.ws.send_str(text)

    # ---- lifetime ------------------------------------------------------------

    def stop(self) -> None:
        for state in self.topics.values():
            if state.sub is not None:
                self.bus.unsubscribe(state.sub)
        self.topics.clear()
        if self.watch is not None:
            self.bus.unsubscribe(self.watch)
        self._stop_reauth()

    # ---- client messages ---------------------------------------------------

    def error(self, code: str, message: str, ref: Any = None, *, count: bool = True, **extra: Any) -> None:
        reply: dict[str, Any] = {"op": "error", "code": code, "message": message, **extra}
        if ref is not None:
            reply["id"] = ref
        self.send(reply)
        if count:
            self.errors += 1
            if self.errors >= self.settings.ws_max_errors:
                self.close_soon(WSCloseCode.POLICY_VIOLATION, "too many invalid messages")

    async def handle(self, text: str) -> None:
        try:
            message = storable.loads(text)
        except json.JSONDecodeError as exc:
            self.error("invalid_json", f"not JSON: {exc.msg} at column {exc.colno}")
            return
        except storable.Unstorable as exc:
            self.error("invalid_message", f"{exc.pointer or 'the message'} {exc.message}")
            return
        if not isinstance(message, dict):
            self.error("invalid_message", "a message is a JSON object with an op")
            return
        ref = message.get("id")
        if ref is not None and (not isinstance(ref, (str, int)) or isinstance(ref, bool) or len(str(ref)) > 64):
            self.error("invalid_message", "id must be a string or integer (at most 64 characters)")
            return
        op = message.get("op")
        if op == "ping":
            self.send({"op": "pong", **({"id": ref} if ref is not None else {})})
        elif op == "subscribe":
            await self.subscribe(message, ref)
        elif op == "unsubscribe":
            self.unsubscribe(message, ref)
        else:
            self.error("unknown_op", f"unknown op {op!r}; use subscribe, unsubscribe or ping", ref)

    async def subscribe(self, message: dict, ref: Any) -> None:
        topic, after = message.get("topic"), message.get("after")
        if after is not None and (isinstance(after, bool) or not isinstance(after, int)
                                  or not 0 <= after <= storable.INT64_MAX):
            self.error("invalid_message", "after must be an integer from 0 to 2^63-1 (a seq you received)", ref)
            return
        async with self.auth_lock:   # the caller as they are now, not as they were at connect
            if not await self.recheck():
                return
            try:
                await self.authorizer.check(self.principal, topic)
            except TopicError as exc:
                self.error(exc.code, exc.message, ref)
                return
            if topic in self.topics:
                self.error("already_subscribed", f"already subscribed to {topic}", ref, count=False)
                return
            if len(self.topics) >= self.settings.ws_max_subscriptions:
                self.error("too_many_subscriptions",
                           f"at most {self.settings.ws_max_subscriptions} subscriptions per socket", ref)
                return
            state = self.topics[topic] = _Topic(self, topic)
            state.sub = self.bus.subscribe(topic, state.deliver)   # live first: nothing can fall between
        try:
            if after is None:
                state.last_seq = await self.bus.head()
            else:
                floor = await self.bus.floor()
                if after < floor:
                    self._drop(topic)
                    self.error("cursor_expired", "events after that seq were deleted by retention; "
                               "fetch the current state over REST, then subscribe with after = floor "
                               "(or without after)", ref, count=False, floor=floor)
                    return
                state.last_seq = after
                while self.close_code is None:
                    page = await self.bus.replay(topic, state.last_seq, limit=REPLAY_PAGE)
                    await self.checked.wait()   # a pending re-check decides first
                    if self.close_code is not None:
                        break
                    for delivery in page:
                        state.last_seq = delivery.seq
                        if not delivery.type.startswith(state.hidden):
                            await self.send_replayed(delivery.wire)
                    if len(page) < REPLAY_PAGE:
                        break
        except Exception:
            self._drop(topic)
            raise
        if topic not in self.topics:
            return  # unsubscribed meanwhile
        held, state.held, state.replaying = state.held, [], False
        for delivery in held:
            state.deliver(delivery)    # only those newer than the replay reach the client (held
                                       # again while a re-check is pending)
        self.send({"op": "subscribed", "topic": topic, "seq": state.last_seq,
                   **({"id": ref} if ref is not None else {})})

    def _drop(self, topic: str) -> None:
        state = self.topics.pop(topic, None)
        if state is not None and state.sub is not None:
            self.bus.unsubscribe(state.sub)

    def unsubscribe(self, message: dict, ref: Any) -> None:
        topic = message.get("topic")
        if not isinstance(topic, str) or topic not in self.topics:
            self.error("not_subscribed", f"not subscribed to {topic!r}", ref, count=False)
            return
        self._drop(topic)
        self.send({"op": "unsubscribed", "topic": topic, **({"id": ref} if ref is not None else {})})


async def _principal(request: web.Request) -> Principal:
    settings = request.app[SETTINGS]
    origin = request.headers.get("Origin")
    if origin is not None and not allowed_origin(request, origin):
        # Cross-site WebSocket hijacking: a foreign page cannot use the visitor's cookie.
        raise Refused(403, "forbidden_origin", "WebSocket connections from this Origin are refused")
    ticket = request.query.get("ticket")
    if ticket:
        principal = await request.app[IDENTITY].tickets.redeem(ticket)
        if principal is None:
            raise Refused(401, "unauthorized", "the ticket is unknown, used or expired; get one from /auth/ws-ticket")
        return principal
    principal = request.get(PRINCIPAL)
    if principal is None:
        raise Refused(401, "unauthorized", "sign in, or connect with ?ticket= from POST /auth/ws-ticket")
    if principal.via == "session" and origin is None:
        raise Refused(403, "forbidden_origin", "a cookie-authenticated WebSocket needs an allowed Origin")
    del settings
    return principal


@public  # authenticates itself: cookie, Bearer header or a single-use ticket, plus the Origin check
async def websocket(request: web.Request) -> web.WebSocketResponse:
    principal = await _principal(request)
    settings = request.app[SETTINGS]
    ws = web.WebSocketResponse(heartbeat=settings.ws_heartbeat_seconds, max_msg_size=settings.ws_max_message_size,
                               receive_timeout=settings.ws_idle_timeout_seconds, timeout=5.0, compress=False)
    await ws.prepare(request)
    conn = Connection(ws, principal, request.app[BUS], request.app[TOPICS], settings,
                      request.app[IDENTITY].principals, request.transport, request.app[METRICS].monitoring)
    request.app[WEBSOCKETS].add(ws)
    conn.metrics.websockets_open.inc()
    writer = asyncio.create_task(conn.writer())
    try:
        await conn.start()
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await conn.handle(msg.data)
            elif msg.type == WSMsgType.BINARY:
                conn.error("invalid_message", "binary messages are not supported; send JSON text")
            if conn.close_code is not None:
                break
    except asyncio.TimeoutError:
        conn.close_soon(WSCloseCode.GOING_AWAY, "idle timeout")
    finally:
        if conn.close_code is None:
            conn.metrics.websocket_closed(None)   # the client left (or the server is shutting down)
        conn.stop()
        if conn.closer is not None:
            with contextlib.suppress(Exception):
                await conn.closer
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, Exception):
            await writer
        if not ws.closed:
            await ws.close()
        conn.metrics.websockets_open.dec()
    return ws
