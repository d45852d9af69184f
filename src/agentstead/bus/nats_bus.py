"""The bus across several app processes: commits travel over NATS, the log stays the truth.

Chosen when AGENTSTEAD_NATS_URL is set (several instances on one host; docs/scale-out.md).
The interface is the embedded bus's (bus.py); only `committed` differs:

    this instance's COMMIT ─▶ Sequencer (at once) ─▶ local fan-out
                          └▶ NATS publish (one message per commit) ─▶ other instances' Sequencer

`Sequencer` (sequence.py) delivers in seq order, drops repeats and fills holes
from the event log, so a NATS message lost, late or never sent (NATS down) costs
latency, never an event. While NATS is unreachable the instance keeps serving:
its own commits are delivered at once, the others' are read from the log every
`POLL_DOWN` seconds; when NATS is back, delivery returns to the fast path.

NATS is core NATS (no JetStream): at-most-once delivery is enough because the log
backs every message. `no_echo` keeps an instance from hearing its own commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time

import nats
from nats.aio.client import Client as NATS

from ..store import events as store
from ..store.db import Database
from ..store.writer import Committed
from .bus import Bus, Delivery
from .sequence import Sequencer

log = logging.getLogger("agentstead.bus")
POLL_UP = 1.0      # seconds between looks at the log's head while NATS carries events
POLL_DOWN = 0.05   # ... while it does not (every event then comes from the log)
CHUNK = 100        # events per NATS message at most


def _encode(events: list[Committed]) -> bytes:
    return json.dumps([[c.seq, c.topics, c.type, c.data, c.at] for c in events],
                      separators=(",", ":")).encode()


def _decode(payload: bytes) -> list[Committed]:
    return [Committed(seq, tuple(topics), type_, data, at) for seq, topics, type_, data, at in json.loads(payload)]


def _read_between(conn, first: int, last: int) -> list[Committed]:
    return [Committed(*row) for row in store.between(conn, first, last)]


class NatsBus(Bus):
    """The bus of one of several instances (see the module's docstring)."""

    def __init__(self, db: Database, url: str, subject: str):
        super().__init__(db)
        self.url = url
        self.subject = subject
        self.nc: NATS | None = None
        self.sequencer: Sequencer | None = None
        self.published = 0            # messages sent over NATS (each one or more commits)
        self.heard = 0                # events heard over NATS
        self.publish_failures = 0
        self.down_since: float | None = time.monotonic()   # not connected yet
        self._tasks: list[asyncio.Task] = []
        self._outbox: list[Committed] = []      # committed here, not yet handed to the NATS client
        self._pending = asyncio.Event()

    async def start(self) -> None:
        """The log's head is where delivery starts; NATS is connected in the background
        (an instance starts, and serves, while NATS is down)."""
        head = await self.db.read(store.head)
        self.sequencer = Sequencer(self._deliver, self._fill, start=head)
        self._tasks = [asyncio.create_task(self._connect(), name="nats-connect"),
                       asyncio.create_task(self._poll(), name="bus-log-poll"),
                       asyncio.create_task(self._publish_forever(), name="nats-publish")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        # The last commits (a stopping runner's endings: runs handed over) go out now,
        # not a poll later; NATS down: the others read them from the log.
        events, self._outbox = self._outbox, []
        if events and self.connected:
            with contextlib.suppress(Exception):
                for i in range(0, len(events), CHUNK):
                    await self.nc.publish(self.subject, _encode(events[i:i + CHUNK]))
        if self.sequencer is not None:
            self.sequencer.close()
        if self.nc is not None:
            # What was published is sent before the connection closes; NATS down (or slow)
            # never holds the shutdown: the others read the rest from the log.
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await (self.nc.drain() if self.nc.is_connected else self.nc.close())
            self.nc = None

    @property
    def connected(self) -> bool:
        return self.nc is not None and self.nc.is_connected

    # ---- committed here: deliver, and tell the others ------------------------------

    def committed(self, events: list[Committed]) -> None:
        if self.sequencer is None:   # before start (nothing subscribes yet): the log has them
            return
        self.sequencer.offer(events)
        if self.connected:   # else the others read them from the log
            self._outbox.extend(events)
            self._pending.set()

    async def _publish_forever(self) -> None:
        """One task sends what the commits since its last turn appended, as one message: no
        await on the commit path, and one encoding per turn of the loop under load."""
        while True:
            await self._pending.wait()
            self._pending.clear()
            events, self._outbox = self._outbox, []
            nc = self.nc
            if not events or nc is None or not nc.is_connected:
                continue
            try:
                # Buffered; the client flushes. In slices, under NATS's 1 MiB message limit
                # (a message over it is refused: the others would read its events from the log).
                for i in range(0, len(events), CHUNK):
                    await nc.publish(self.subject, _encode(events[i:i + CHUNK]))
                    self.published += 1
            except Exception as exc:   # the others read them from the log
                self.publish_failures += 1
                log.warning("publishing to NATS failed", extra={"error": f"{type(exc).__name__}: {exc}"})

    def _deliver(self, c: Committed) -> None:
        for topic in c.topics:
            self._fanout(Delivery(c.seq, topic, c.type, c.data, c.at))

    async def _fill(self, first: int, last: int) -> list[Committed]:
        return await self.db.read(_read_between, first, last)

    # ---- NATS ------------------------------------------------------------------------

    async def _heard(self, msg) -> None:
        try:
            events = _decode(msg.data)
        except Exception:
            log.warning("a NATS message that is not a list of events was ignored", extra={"subject": msg.subject})
            return
        self.heard += len(events)
        self.sequencer.offer(events)

    async def _connect(self) -> None:
        async def disconnected() -> None:
            self.down_since = self.down_since or time.monotonic()
            log.warning("NATS disconnected: events from other instances come from the log")

        async def reconnected() -> None:
            self.down_since = None
            log.info("NATS reconnected")

        async def error(exc: Exception) -> None:
            log.debug("NATS client error", extra={"error": f"{type(exc).__name__}: {exc}"})

        while True:
            try:
                nc = await nats.connect(self.url, name="agentstead", no_echo=True, allow_reconnect=True,
                                        max_reconnect_attempts=-1, reconnect_time_wait=0.5, connect_timeout=2,
                                        disconnected_cb=disconnected, reconnected_cb=reconnected,
                                        error_cb=error)
                await nc.subscribe(self.subject, cb=self._heard)
                await nc.flush()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("NATS unreachable; retrying", extra={"error": f"{type(exc).__name__}: {exc}",
                                                                 "url": self.url})
                await asyncio.sleep(1.0)
                continue
            self.nc = nc
            self.down_since = None
            log.info("NATS connected", extra={"url": self.url})
            return

    async def _poll(self) -> None:
        """What no NATS message announced (NATS down, a message lost with nothing after it)
        is read from the log. With NATS up, only a head seen one poll ago and still not
        delivered is fetched (events in flight on NATS are not read twice)."""
        seen = 0
        while True:
            up = self.connected
            await asyncio.sleep(POLL_UP if up else POLL_DOWN)
            try:
                head = await self.db.read(store.head)
            except Exception:
                continue
            if not self.connected:
                self.sequencer.catch_up(head)
            elif seen > self.sequencer.delivered:
                self.sequencer.catch_up(seen)
            seen = head

    def check(self) -> dict:
        """For /readyz (degrade only) and /metrics."""
        seq = self.sequencer
        result = {"ok": self.connected, "kind": "nats", "delivered_seq": seq.delivered if seq else 0,
                  "filled_from_log": seq.filled if seq else 0, "published": self.published, "heard": self.heard}
        if not self.connected:
            down = time.monotonic() - self.down_since if self.down_since else 0.0
            result["error"] = (f"NATS at {self.url} unreachable for {down:.0f} s: events from other "
                               "instances are read from the log")
        return result
