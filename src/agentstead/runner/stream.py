"""Streamed text as `message.delta` events, coalesced.

The run's first piece goes out the moment the model emits it: time to first
token is what a reader feels most (issue 22; bench/runs/first_token.py). After
that a piece goes out at once when the run's previous delta went out at least
DELTA_GAP ago; otherwise it waits, joined with the pieces that arrive
meanwhile, and goes out when the gap has passed or with the run's next event
(`flush`). It does not wait for the previous delta to be durable: the writer
keeps their order and commits what is queued together, and a piece held until
then missed the commit that started meanwhile and waited for the one after it
(bench/RESULTS.md, Chat, "the last steps"). Tokens slower than one per DELTA_GAP go out one per delta with no
added latency; a provider that sends hundreds a second costs a delta per
DELTA_GAP, not hundreds of appends competing with the stream (measured:
bench/RESULTS.md, Runs).
"""

from __future__ import annotations

import asyncio
import dataclasses

from ..bus import events as ev
from ..bus.bus import Bus
from ..store.runs import Run

# Seconds: at most one streamed delta per run per 30 ms (33 a second). Under the 33 ms between
# tokens at 30 tokens/s, so that such a reply goes out a token per delta as it comes; at 50 ms,
# every gap a reader saw was 50 ms or more (bench/RESULTS.md, Chat, "50 concurrent chats").
DELTA_GAP = 0.03


@dataclasses.dataclass
class _Stream:
    run: Run
    sent_at: float = float("-inf")                 # loop time of the last delta (none yet: no wait)
    partial: list[str] = dataclasses.field(default_factory=list)   # everything streamed (kept on cancel)
    pending: list[str] = dataclasses.field(default_factory=list)   # waiting to go out as one delta
    timer: asyncio.TimerHandle | None = None       # a delta due when DELTA_GAP has passed


class Deltas:
    def __init__(self, bus: Bus):
        self.bus = bus
        self._streams: dict[str, _Stream] = {}

    def open(self, run: Run) -> None:
        self._streams[run.id] = _Stream(run)

    def close(self, run_id: str) -> None:
        stream = self._streams.pop(run_id, None)
        if stream is not None and stream.timer is not None:
            stream.timer.cancel()

    def text(self, run: Run, text: str) -> None:
        """A piece of the reply, streamed."""
        stream = self._streams[run.id]
        stream.partial.append(text)
        stream.pending.append(text)
        self._pump(stream)

    def stored(self, run: Run) -> None:
        """What was streamed is stored now (a finished message): not partial any more."""
        stream = self._streams.get(run.id)
        if stream is not None:
            stream.partial.clear()

    def partial(self, run_id: str) -> str:
        stream = self._streams.get(run_id)
        return "".join(stream.partial) if stream is not None else ""

    def flush(self, run: Run) -> None:
        """Streamed text always precedes the run's next event: send what waits now."""
        stream = self._streams.get(run.id)
        if stream is not None and stream.pending:
            self._send(stream)

    def _pump(self, stream: _Stream) -> None:
        if not stream.pending or stream.timer is not None or self._streams.get(stream.run.id) is not stream:
            return
        loop = asyncio.get_running_loop()
        wait = stream.sent_at + DELTA_GAP - loop.time()
        if wait > 0:
            stream.timer = loop.call_later(wait, self._tick, stream)
            return
        self._send(stream)

    def _tick(self, stream: _Stream) -> None:
        stream.timer = None
        self._pump(stream)

    def _send(self, stream: _Stream) -> None:
        """Deltas are not awaited: the writer keeps their order and batches them, and the
        run's next event is appended after them."""
        if stream.timer is not None:
            stream.timer.cancel()
            stream.timer = None
        run = stream.run
        event = ev.MessageDelta(run.id, run.thread_id, "".join(stream.pending))
        stream.pending.clear()
        stream.sent_at = asyncio.get_running_loop().time()
        self.bus.publish((f"runs/{run.id}", f"threads/{run.thread_id}"), event)
