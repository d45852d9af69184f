"""The bus: events reach subscribers here, after the write that carries them commits.

One interface: `publish`, `subscribe`, `unsubscribe`, `replay`, `head`, `floor`,
and `committed`, which the database's writer calls after every commit that
appended events (store/writer.py). Events are written by `Database.write(fn,
events=…)` in the transaction of the change they announce; `publish` is that
write with no change. Subscribers see an event only once it is durable and has
its sequence number.

Storage: an event published on several topics (a run's status on users/{id},
runs/{id} and threads/{id}) is stored once, with one seq, linked to each topic
(store/events.py); subscribers of each topic receive it under that topic.

Several processes (issue "Scale out"): `nats_bus.py: NatsBus` keeps these methods;
its `committed` also publishes to NATS, its NATS subscription feeds the same
`_fanout` through a sequencer that fills gaps in `seq` from the log. Nothing
outside bus/ knows which bus it is (app.py chooses).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
from typing import Callable

from ..store import events as store
from ..store.db import Database
from ..store.writer import Committed
from .events import Event

log = logging.getLogger("agentstead.bus")


@dataclasses.dataclass(frozen=True)
class Delivery:
    """An event as subscribers receive it."""
    seq: int
    topic: str
    type: str
    data: dict
    at: str

    @functools.cached_property
    def wire(self) -> str:
        """The WebSocket/SSE message, serialised once for every subscriber."""
        return json.dumps({"op": "event", "topic": self.topic, "seq": self.seq, "type": self.type,
                           "data": self.data, "at": self.at}, separators=(",", ":"))

    @functools.cached_property
    def frame(self) -> bytes:
        """The same message as a complete WebSocket text frame (server frames are not
        masked), built once and written as is to every subscribed socket."""
        payload = self.wire.encode()
        n = len(payload)
        if n < 126:
            head = bytes((0x81, n))
        elif n < 65536:
            head = bytes((0x81, 126)) + n.to_bytes(2, "big")
        else:
            head = bytes((0x81, 127)) + n.to_bytes(8, "big")
        return head + payload

    @classmethod
    def from_stored(cls, ev: store.StoredEvent) -> "Delivery":
        return cls(ev.seq, ev.topic, ev.type, ev.data, ev.at)


class Subscription:
    def __init__(self, topic: str, deliver: Callable[[Delivery], None]):
        self.topic = topic
        self.deliver = deliver
        self.pattern_kind = topic[:-2] if topic.endswith("/*") else None


class Bus:
    def __init__(self, db: Database):
        self.db = db
        self._exact: dict[str, set[Subscription]] = {}
        self._patterns: dict[str, set[Subscription]] = {}
        db.on_commit(self.committed)

    async def start(self) -> None:
        """Nothing to start in one process (the NATS bus connects here)."""

    async def stop(self) -> None:
        """Nothing to stop in one process."""

    def check(self) -> dict | None:
        """The bus's part of /readyz: None in one process (nothing to fail)."""
        return None

    @property
    def appended(self) -> int:
        """Events committed to the log by this process (for /metrics)."""
        return self.db.appended

    # ---- publishing --------------------------------------------------------

    def publish(self, topic: str | tuple[str, ...], event: Event) -> asyncio.Future:
        """An event on a topic, or on several (stored once, one seq, delivered on each), with
        no change of its own. Queued at once, in call order with every write; the future
        resolves to the event as committed (`.seq`) once it is durable and delivered (a
        fire-and-forget caller may drop it)."""
        return self.db.write(None, events=((topic, event),))

    def committed(self, events: list[Committed]) -> None:
        """After a commit, on the event loop: hand each durable event to its subscribers."""
        for c in events:
            for topic in c.topics:
                self._fanout(Delivery(c.seq, topic, c.type, c.data, c.at))

    # ---- subscribing -------------------------------------------------------

    def subscribe(self, topic: str, deliver: Callable[[Delivery], None]) -> Subscription:
        """`deliver` is called synchronously for each event; it must not block."""
        sub = Subscription(topic, deliver)
        index = self._patterns if sub.pattern_kind else self._exact
        index.setdefault(sub.pattern_kind or topic, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        index = self._patterns if sub.pattern_kind else self._exact
        key = sub.pattern_kind or sub.topic
        subs = index.get(key)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del index[key]

    def _fanout(self, delivery: Delivery) -> None:
        targets = list(self._exact.get(delivery.topic, ()))
        if self._patterns:
            kind = delivery.topic.split("/", 1)[0]
            targets += self._patterns.get(kind, ())
        for sub in targets:
            try:
                sub.deliver(delivery)
            except Exception:  # one bad subscriber never affects the others
                log.exception("subscriber failed", extra={"topic": delivery.topic})

    # ---- reading the log ---------------------------------------------------

    async def replay(self, topic: str, after: int, *, limit: int) -> list[Delivery]:
        """The log's events on `topic` (or a pattern, `kind/*`) after a seq, oldest first."""
        if topic.endswith("/*"):
            rows = await self.db.read(store.after_prefix, topic[:-1], after, limit=limit)
        else:
            rows = await self.db.read(store.after, [topic], after, limit=limit)
        return [Delivery.from_stored(r) for r in rows]

    async def floor(self) -> int:
        """Cursors below this seq may have lost events to retention."""
        return await self.db.read(store.floor)

    async def head(self) -> int:
        """The newest seq in the log."""
        return await self.db.read(store.head)

